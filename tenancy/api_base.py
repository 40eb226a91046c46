"""The base of every organization-scoped API endpoint.

``TenantAccess`` answers, for one request: which organizations may the caller see, and which one does it act for?
- an organization key acts for its organization;
- a partner key acts for the organization named by ``X-Organization`` (slug or id), or, without the header, lists
  span all of its partner's organizations and writes are refused with a 400;
- a signed-in person (the portal's own calls) acts for ``X-Organization`` or their current portal organization.
Objects outside the visible organizations are 404. A suspended organization is 403 with the reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Self

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from tenancy.api_policy import OrganizationSuspended
from tenancy.errors import ConflictError
from tenancy.models import MANAGING_ROLES, ApiKey, Membership, Organization, OrgStatus, User

ORG_HEADER = "HTTP_X_ORGANIZATION"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


@dataclass
class TenantAccess:
    organizations: QuerySet[Organization]
    organization: Organization | None
    api_key: ApiKey | None
    role: str | None  # the person's membership role in ``organization`` (None for keys and partner admins)

    @property
    def is_partner_wide(self) -> bool:
        return self.organization is None

    def require_organization(self) -> Organization:
        if self.organization is None:
            raise exceptions.ValidationError(
                {"X-Organization": ["Name the organization to act for with the X-Organization header (slug or id)."]}
            )
        return self.organization

    @property
    def can_manage(self) -> bool:
        """Owners/admins, partner admins, and keys with write scope may manage organization settings."""
        if self.api_key is not None:
            return True
        return self.role is None or self.role in MANAGING_ROLES


def _pick(organizations: QuerySet[Organization], ident: str) -> Organization:
    try:
        lookup: dict[str, object] = {"pk": uuid.UUID(ident)}
    except ValueError:
        lookup = {"slug": ident}
    org = organizations.filter(**lookup).first()
    if org is None:
        raise exceptions.NotFound("No such organization.")
    return org


def resolve_access(request: Request) -> TenantAccess:
    header = (request.META.get(ORG_HEADER) or "").strip()
    key = request.auth if isinstance(request.auth, ApiKey) else None
    role: str | None = None
    if key is not None:
        if key.organization_id is not None:
            organizations = Organization.objects.filter(pk=key.organization_id)
            chosen: Organization | None = key.organization
            if header:
                chosen = _pick(organizations, header)
        else:
            organizations = Organization.objects.filter(partner=key.partner)
            chosen = _pick(organizations, header) if header else None
    else:
        user = request.user
        organizations = Organization.objects.visible_to(user)
        if header:
            chosen = _pick(organizations, header)
        else:
            # The portal's current organization, if it is still visible; a lone organization otherwise.
            session_org = request.session.get("organization_id") if hasattr(request, "session") else None
            chosen = organizations.filter(pk=session_org).first() if session_org else None
            if chosen is None:
                candidates = list(organizations[:2])
                chosen = candidates[0] if len(candidates) == 1 else None
        if chosen is not None:
            role = (
                Membership.objects.filter(user_id=str(user.pk), organization=chosen)
                .values_list("role", flat=True)
                .first()
            )
    if chosen is not None and chosen.status == OrgStatus.SUSPENDED:
        raise OrganizationSuspended(chosen)
    return TenantAccess(organizations=organizations, organization=chosen, api_key=key, role=role)


@dataclass(frozen=True)
class Caller:
    """Who makes an API request: a signed-in person, or an API key (then ``user`` is None)."""

    user: User | None
    api_key: ApiKey | None

    @classmethod
    def of(cls, request: Request) -> Self:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        user = request.user if key is None and isinstance(request.user, User) else None
        return cls(user=user, api_key=key)

    @property
    def is_staff(self) -> bool:
        return self.user is not None and self.user.is_staff

    @property
    def is_partner_key(self) -> bool:
        return self.api_key is not None and self.api_key.partner_id is not None

    @property
    def is_customer(self) -> bool:
        """A signed-in person who is not staff (partner admins included)."""
        return self.api_key is None and not self.is_staff


class TenantAPIView(APIView):
    """Resolves ``request.tenant`` (a :class:`TenantAccess`) before the handler runs."""

    tenant: TenantAccess

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.tenant = resolve_access(request)
        if request.method not in permissions.SAFE_METHODS and getattr(self, "writes_need_organization", True):
            self.tenant.require_organization()


class TenantViewSet(TenantAPIView, viewsets.GenericViewSet):
    """A viewset over a tenant-owned model: every lookup is confined to the organizations the caller may see,
    narrowed to the chosen one when there is one."""

    org_field = "organization"

    def get_queryset(self) -> QuerySet[Any]:
        qs = super().get_queryset()
        if self.tenant.organization is not None:
            return qs.filter(**{self.org_field: self.tenant.organization})
        return qs.filter(**{f"{self.org_field}__in": self.tenant.organizations})

    def perform_create(self, serializer: Any) -> None:
        serializer.save(**{self.org_field: self.tenant.require_organization()})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: Django ValidationErrors from services are 400 by field; ConflictError is 409."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, ConflictError):
        exc = Conflict({exc.field: [exc.message]} if exc.field else exc.message)
    return drf_exception_handler(exc, context)


def get_tenant_object(queryset: QuerySet[Any], **lookup: Any) -> Model:
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise exceptions.NotFound()
    return obj


# -- helpers the apps' APIs share ----------------------------------------------------------------------------------


def organizations_with_role(user: User, roles: frozenset[str]) -> QuerySet[Organization]:
    """The organizations where ``user`` holds one of ``roles``, and those of the partners ``user`` administers."""
    held = Membership.objects.filter(user=user, role__in=roles).values("organization_id")
    return Organization.objects.filter(Q(pk__in=held) | Q(partner__admins__user=user))


PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="A page number within the paginated result set."),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="Results per page (at most 200)."),
]


def represent_many(serializer: type[serializers.Serializer[Any]], items: list[Any], **context: Any) -> list[Any]:
    data: Any = serializer(instance=items, many=True, context=context).data  # a ReturnList
    return list(data)


def request_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying so (a list or a string where an object is expected)."""
    if not isinstance(request.data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    return dict(request.data)


def refuse_unknown(data: dict[str, Any], allowed: set[str] | frozenset[str] | tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise serializers.ValidationError({name: ["This field cannot be set here."] for name in unknown})
