"""Classes named in REST_FRAMEWORK settings. They must not import rest_framework.views (DRF reads these settings
while that module loads)."""

from __future__ import annotations

from rest_framework import exceptions, pagination, permissions
from rest_framework.request import Request

from tenancy.models import ApiKey, Organization, OrgStatus


class OrganizationSuspended(exceptions.PermissionDenied):
    def __init__(self, organization: Organization) -> None:
        reason = f": {organization.suspended_reason}" if organization.suspended_reason else "."
        super().__init__(f"Organization {organization.slug} is suspended{reason} Contact your provider to reactivate.")


class HasTenantAccess(permissions.BasePermission):
    """Authenticated, and a key has the scope this request needs: ``read`` for safe methods, ``write`` otherwise,
    plus the view's ``required_scopes`` (areas later issues add)."""

    message = "This API key lacks the scope this request needs."

    def has_permission(self, request: Request, view: object) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        key = request.auth if isinstance(request.auth, ApiKey) else None
        if key is None:
            return True
        if key.organization_id is not None and key.organization and key.organization.status == OrgStatus.SUSPENDED:
            raise OrganizationSuspended(key.organization)
        needed = {"read" if request.method in permissions.SAFE_METHODS else "write"}
        needed |= set(getattr(view, "required_scopes", ()))
        missing = sorted(needed - set(key.scopes))
        if missing:
            self.message = f"This API key lacks the scope(s): {', '.join(missing)}."
            return False
        return True


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200
