"""The base of every organization-scoped API endpoint.

``TenantAccess`` answers, for one request: which organizations may the caller see, and which one does it act for?
- an organization key acts for its organization;
- a partner key acts for the organization named by ``X-Organization`` (slug or id), or, without the header, lists
  span all of its partner's organizations and writes are refused with a 400;
- a signed-in person (the portal's own calls) acts for ``X-Organization`` or their current portal organization.
Objects outside the visible organizations are 404. A suspended organization is 403 with the reason.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, Self

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, Q, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema_serializer
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from tenancy.api_policy import PAGE_SCHEMA, PAGE_SIZE_SCHEMA, OrganizationSuspended
from tenancy.auth_cache import AccessRead, organization_entry
from tenancy.errors import ConflictError
from tenancy.models import MANAGING_ROLES, ApiKey, Membership, Organization, OrgStatus, User

ORG_HEADER = "HTTP_X_ORGANIZATION"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


@dataclass
class TenantAccess:
    visible: Callable[[], QuerySet[Organization]]  # builds ``organizations`` when it is first read
    organization: Organization | None
    api_key: ApiKey | None
    role: str | None  # the person's membership role in ``organization`` (None for keys and partner admins)

    @cached_property
    def organizations(self) -> QuerySet[Organization]:
        """Every organization the caller may see (a lazy queryset)."""
        return self.visible()

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
    org = organizations.filter(**lookup).defer("brand_logo").first()  # the logo (up to 256 KB) is loaded only if read
    if org is None:
        raise exceptions.NotFound("No such organization.")
    return org


def _pick_for_key(
    request: Request, key: ApiKey, organizations: Callable[[], QuerySet[Organization]], header: str
) -> Organization:
    """The organization ``header`` names among the key's: cached with the key (``tenancy.auth_cache``)."""
    access: AccessRead | None = getattr(request, "keel_access", None)
    name = organization_entry(key.key_hash, header)
    chosen = access.entries.get(name) if access is not None else None
    if chosen is None:
        chosen = _pick(organizations(), header)
        if access is not None:
            access.store(name, chosen)
    return chosen


def resolve_access(request: Request) -> TenantAccess:
    header = (request.META.get(ORG_HEADER) or "").strip()
    key = request.auth if isinstance(request.auth, ApiKey) else None
    role: str | None = None
    visible: Callable[[], QuerySet[Organization]]
    if key is not None:
        if key.organization_id is not None:
            own = key.organization_id
            visible = partial(Organization.objects.filter, pk=own)
            chosen: Organization | None = key.organization
            if header:
                chosen = _pick_for_key(request, key, visible, header)
        else:
            visible = partial(Organization.objects.filter, partner_id=key.partner_id)
            chosen = _pick_for_key(request, key, visible, header) if header else None
    else:
        user = request.user
        visible = partial(Organization.objects.visible_to, user)
        organizations = visible()
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
    return TenantAccess(visible=visible, organization=chosen, api_key=key, role=role)


def refuse_nul_in_query(request: Request) -> None:
    """A query parameter holding a NUL is a 400: no filter can match it, and PostgreSQL refuses it in a query."""
    bad = sorted({name for name, values in request.query_params.lists() if any("\x00" in value for value in values)})
    if bad:
        raise exceptions.ValidationError({name: ["Contains a NUL character."] for name in bad})


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
        refuse_nul_in_query(request)
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
    OpenApiParameter("page", PAGE_SCHEMA["schema"], description=PAGE_SCHEMA["description"]),
    OpenApiParameter("page_size", PAGE_SIZE_SCHEMA["schema"], description=PAGE_SIZE_SCHEMA["description"]),
]


def represent_many(serializer: type[serializers.Serializer[Any]], items: list[Any], **context: Any) -> list[Any]:
    data: Any = serializer(instance=items, many=True, context=context).data  # a ReturnList
    return list(data)


def request_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying so (a list or a string where an object is expected)."""
    if not isinstance(request.data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    return dict(request.data)


UNKNOWN_FIELDS_REFUSED = "x-unknown-fields-refused"
# For the request serializers of views that refuse fields they do not know (``refuse_unknown``): their request
# bodies are documented with ``additionalProperties: false`` (see ``document_error_responses``).
refuses_unknown_fields = extend_schema_serializer(extensions={UNKNOWN_FIELDS_REFUSED: True})


def refuse_unknown(data: dict[str, Any], allowed: set[str] | frozenset[str] | tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise serializers.ValidationError({name: ["This field cannot be set here."] for name in unknown})


# -- the error responses every operation may give, in the OpenAPI schema ---------------------------------------------

_DETAIL = {"$ref": "#/components/schemas/ErrorDetail"}
_FIELDS = {"$ref": "#/components/schemas/FieldErrors"}
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorDetail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
        "description": "Why the request was refused.",
    },
    "FieldErrors": {
        "type": "object",
        "additionalProperties": {},
        "description": 'Messages by field, as DRF writes them ({"field": ["message"]}), or {"detail": …}.',
    },
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}}
_GENERAL = {
    "400": ("Bad input: the fields at fault with their reasons.", _FIELDS),
    "401": ("No credentials, or an API key that is unknown, revoked or expired.", _DETAIL),
    "403": ("The API key lacks a scope this request needs, or the organization is suspended.", _DETAIL),
    "404": ("No such object among the organizations the caller may see (or X-Organization names none).", _DETAIL),
    "409": ("The request conflicts with the current state.", _FIELDS),
    "429": ("Too many requests: wait for the number of seconds in Retry-After.", _DETAIL),
}


# drf-spectacular's pattern for a DecimalField admits "", "-" and ".", which DRF refuses: at least one digit (or, for
# a field that may be null, "", which DRF reads as null).
_LOOSE_DECIMAL = re.compile(r"\^-\?\\d\{0,(\d+)\}\(\?:\\\.\\d\{0,(\d+)\}\)\?\$")


def _decimal_patterns(node: Any) -> None:
    if isinstance(node, dict):
        loose = _LOOSE_DECIMAL.fullmatch(node.get("pattern", "")) if node.get("format") == "decimal" else None
        if loose:
            whole, places = loose.groups()
            number = rf"-?(?:\d{{1,{whole}}}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})"
            node["pattern"] = rf"^(?:{number})?$" if node.get("nullable") else rf"^{number}$"
        for value in node.values():
            _decimal_patterns(value)
    elif isinstance(node, list):
        for value in node:
            _decimal_patterns(value)


# A character Python's str.strip() keeps, in a pattern that reads the same in JSON Schema's (ECMAScript) regular
# expressions and in Python's: \s alone differs between them (Python also counts \x1c-\x1f and \x85).
NON_BLANK = r"[^\s\x1c-\x1f\x85]"


def _non_blank_patterns(node: Any) -> None:
    """Request text that may not be blank (``minLength`` 1 or more) is trimmed before that check, as DRF's
    ``CharField`` does, so whitespace alone is refused: said as a pattern, "holds a character that is not
    whitespace", on each such string that has no pattern, format or choices of its own."""
    if isinstance(node, dict):
        if (
            node.get("type") == "string"
            and node.get("minLength", 0) >= 1
            and not {"pattern", "format", "enum"} & node.keys()
        ):
            node["pattern"] = NON_BLANK
        for value in node.values():
            _non_blank_patterns(value)
    elif isinstance(node, list):
        for value in node:
            _non_blank_patterns(value)


def _requires_properties(body: dict[str, Any], components: dict[str, Any]) -> bool:
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        if "$ref" in schema:
            schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
        if schema.get("required"):
            return True
    return False


def document_error_responses(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: adds the error responses the API conventions promise (400 bad input,
    401/403/404 for protected operations, 429 everywhere) where a view did not describe its own, and the JSON body
    of every error response, so the schema names each status an operation may answer with. Also states three input
    rules that hold everywhere: an empty optional query parameter counts as not given, decimals need a digit, and
    text that may not be blank may not be whitespace alone either."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.update(ERROR_SCHEMAS)
    for name, component in components.items():
        if component.pop(UNKNOWN_FIELDS_REFUSED, False) and name.endswith("Request"):
            component["additionalProperties"] = False
        if name.endswith("Request"):
            _non_blank_patterns(component)
    _decimal_patterns(result)
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
            body = operation.get("requestBody")
            if body is not None and "required" not in body and _requires_properties(body, components):
                body["required"] = True  # a body with required properties cannot be left out
            protected = any(requirement for requirement in operation.get("security", [{}]))
            takes_input = (
                method != "get"
                or "requestBody" in operation
                or any(parameter.get("in") == "query" for parameter in operation.get("parameters", []))
            )
            codes = {"429"} | ({"401", "403", "404"} if protected else set()) | ({"400"} if takes_input else set())
            responses = operation["responses"]
            for code in sorted(codes):
                responses.setdefault(code, {"description": _GENERAL[code][0]})
            for code, response in responses.items():
                if code in _GENERAL and "content" not in response:
                    response["content"] = {"application/json": {"schema": _GENERAL[code][1]}}
                if code == "429":
                    response.setdefault("headers", _RETRY_AFTER)
    return result
