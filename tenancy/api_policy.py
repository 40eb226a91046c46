"""Classes named in REST_FRAMEWORK settings. They must not import rest_framework.views (DRF reads these settings
while that module loads)."""

from __future__ import annotations

from typing import Any

from django.core.paginator import InvalidPage
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework import exceptions, pagination, permissions
from rest_framework.request import Request
from rest_framework.response import Response

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


class CappedPaginator(DjangoPaginator):
    """A paginator that counts at most ``limit`` rows (``SELECT COUNT(*) FROM (… LIMIT limit + 1)``), so the count of a
    list with a million rows costs what a count of ``limit`` rows does. Past the limit ``count`` is ``limit`` and
    ``exact`` is False; there are always more pages then, as the limit reaches ``cap`` rows past the page asked for."""

    def __init__(self, object_list: Any, per_page: int, limit: int | None) -> None:
        super().__init__(object_list, per_page)
        self.limit = limit
        self.exact = True

    @cached_property
    def count(self) -> int:
        if self.limit is None or not isinstance(self.object_list, QuerySet):
            return int(super().count)
        counted = self.object_list.order_by()[: self.limit + 1].count()  # any limit + 1 rows: no need to sort them
        if counted > self.limit:
            self.exact = False
            return self.limit
        return counted


MAX_LIMIT = 2**62
PAGE_SCHEMA: dict[str, Any] = {
    "name": "page",
    "in": "query",
    "required": False,
    "description": "A page number within the paginated result set, or 'last'.",
    "schema": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["last"]}]},
}
PAGE_SIZE_SCHEMA: dict[str, Any] = {
    "name": "page_size",
    "in": "query",
    "required": False,
    "description": "Results per page (at most 200).",
    "schema": {"type": "integer", "minimum": 1, "maximum": 200},
}


class Pagination(pagination.PageNumberPagination):
    """``?page=`` and ``?page_size=`` (up to 200). ``count`` is exact up to ``count_cap`` rows past the start of the
    page asked for; beyond that it is a lower bound and ``count_exact`` is false (``?page=last`` counts them all)."""

    page_size_query_param = "page_size"
    max_page_size = 200
    count_cap = 10_000

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        self.request = request
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        asked = request.query_params.get(self.page_query_param) or "1"
        limit: int | None = None
        if asked not in self.last_page_strings:
            number = int(asked) if asked.isdecimal() else 1  # anything else is refused by the paginator below
            # Capped so that a page number far past any data stays a 404 rather than overflowing the database's
            # 64-bit LIMIT.
            limit = min(max(number - 1, 0) * page_size + self.count_cap, MAX_LIMIT)
        paginator = CappedPaginator(queryset, page_size, limit)
        page_number = paginator.num_pages if asked in self.last_page_strings else asked
        try:
            self.page = paginator.page(page_number)
        except InvalidPage as exc:
            raise exceptions.NotFound(self.invalid_page_message.format(page_number=asked, message=str(exc))) from None
        self.paginator = paginator
        return list(self.page)

    def get_page_size(self, request: Request) -> int | None:
        """``page_size`` when given must be a whole number from 1 to ``max_page_size``: anything else is a 400, not
        a silent fallback to the default. Empty counts as not given, as for every query parameter."""
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:
            return self.page_size
        if not (raw.isdecimal() and 1 <= int(raw) <= self.max_page_size):
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [PAGE_SCHEMA, PAGE_SIZE_SCHEMA]

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "count": self.paginator.count,
                "count_exact": self.paginator.exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        described = super().get_paginated_response_schema(schema)
        described["properties"] = {
            "count": {**described["properties"]["count"], "description": "Exact unless count_exact is false."},
            "count_exact": {"type": "boolean", "description": "False when count is a lower bound (a long list)."},
            **{name: value for name, value in described["properties"].items() if name != "count"},
        }
        return described
