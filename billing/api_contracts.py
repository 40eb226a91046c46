"""Contracts in the partner API: list, create, read and change them, activate them, their lines and metered usage.
Also the access rules both billing APIs share (``BillingAPIView``; the invoice routes are in ``billing.api_invoices``).

Who may do what:
- **API keys** need ``read`` + ``billing:read`` to read and ``write`` + ``billing:write`` to write. A partner key
  without ``X-Organization`` lists across its organizations; a write needs the header (400 without it).
- **Staff** (signed-in ``is_staff``) may do everything in the organizations they may see.
- **Customers** (signed-in people who are not staff) may only read, and only as an owner, admin or manager of the
  organization (or its partner's admin): plain members get 403, and so does any write.

Every object is looked up within the organizations the caller may see: another organization's contract, line or
usage is 404 on every route, as is a malformed id. Each write is one service call, one transaction.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DataError
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, permissions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from billing.filters import ContractFilter
from billing.models import Contract, ContractLine, UsageRecord
from billing.serializers import (
    CONTRACT_ID,
    CONTRACT_NOT_FOUND,
    ENDED,
    FORBIDDEN,
    IDEMPOTENCY_KEY,
    LINE_CHANGE_RESULT,
    LINE_ID,
    ContractAdjustmentSerializer,
    ContractCreateSerializer,
    ContractLineChangeSerializer,
    ContractLineInputSerializer,
    ContractLineSerializer,
    ContractSerializer,
    ContractUpdateSerializer,
    UsageCreateSerializer,
    UsageRecordSerializer,
    check_line,
)
from billing.services.contract_updates import contract_line_add, contract_line_revise, contract_update
from billing.services.contracts import ContractTerms, contract_activate, contract_create, usage_record
from tenancy.api_base import (
    PAGE_PARAMETERS,
    Caller,
    TenantAPIView,
    organizations_with_role,
    refuse_unknown,
    represent_many,
    request_object,
)
from tenancy.models import Organization, Role, TenantQuerySet, User

READ_SCOPE = "billing:read"
WRITE_SCOPE = "billing:write"
BILLING_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MANAGER})


# -- who is calling ----------------------------------------------------------------------------------------------------


def billing_organizations(user: User) -> QuerySet[Organization]:
    """The organizations whose billing a customer may read: as owner, admin or manager, or as its partner's admin."""
    return organizations_with_role(user, BILLING_ROLES)


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise exceptions.NotFound(f"No such {what}.") from None


def parse_int(value: str, what: str) -> int:
    if not str(value).isdigit() or len(str(value)) > 18:
        raise exceptions.NotFound(f"No such {what}.")
    return int(value)


class BillingAPIView(TenantAPIView):
    """Scopes by method, the caller, and the billing rows it may see (``scoped``)."""

    # Checked in ``initial`` below, after the customer rules: a customer's write is 403 whatever the organization.
    writes_need_organization = False
    partner_wide_writes = False  # True: a write without X-Organization acts for every organization the caller sees
    caller: Caller

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return (READ_SCOPE,) if self.request.method in permissions.SAFE_METHODS else (WRITE_SCOPE,)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.caller = Caller.of(request)
        safe = request.method in permissions.SAFE_METHODS
        if self.caller.is_customer and self.caller.user is not None:
            if not safe:
                raise exceptions.PermissionDenied("Billing is read-only for customers; ask your provider to change it.")
            role = self.tenant.role  # None for a partner's admin, who may read the billing of its organizations
            if self.tenant.organization is not None:
                if role is not None and role not in BILLING_ROLES:
                    raise exceptions.PermissionDenied("Only owners, admins and managers see billing.")
            elif not billing_organizations(self.caller.user).exists():
                raise exceptions.PermissionDenied("Only owners, admins and managers see billing.")
        if not safe and not self.partner_wide_writes:
            self.tenant.require_organization()

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DataError):
            # What validation let through and the database refused (a number past a column's digits, a NUL in a
            # text): the service's transaction rolled back, so it is bad input, not a server error.
            exc = exceptions.ValidationError({"non_field_errors": ["A value is too large or malformed to store."]})
        return super().handle_exception(exc)

    def scoped(self, queryset: TenantQuerySet) -> TenantQuerySet:
        """Every billing lookup starts here: the chosen organization's rows, or all the caller may see."""
        if self.tenant.organization is not None:
            return queryset.for_org(self.tenant.organization)
        if self.caller.is_customer and self.caller.user is not None:
            return queryset.for_orgs(billing_organizations(self.caller.user))
        return queryset.for_orgs(self.tenant.organizations)

    def today(self, organization: Organization) -> date:
        return timezone.localdate(timezone.now(), ZoneInfo(organization.timezone))


class ContractAPIView(BillingAPIView):
    def contracts(self) -> QuerySet[Contract]:
        lines = ContractLine.objects.order_by("position", "id")
        return (
            self.scoped(Contract.objects.all())
            .select_related("organization")
            .prefetch_related(Prefetch("lines", queryset=lines))
            .order_by("name", "id")
        )

    def get_contract(self, pk: str) -> Contract:
        contract = self.contracts().filter(pk=parse_uuid(pk, "contract")).first()
        if contract is None:
            raise exceptions.NotFound("No such contract.")
        return contract

    def get_line(self, contract: Contract, line_id: str) -> ContractLine:
        line = (
            ContractLine.objects.for_org(contract.organization_id)
            .filter(contract=contract, pk=parse_int(line_id, "contract line"))
            .first()
        )
        if line is None:
            raise exceptions.NotFound("No such contract line.")
        line.contract = contract
        return line

    def contract_data(self, pk: str) -> dict[str, Any]:
        return dict(ContractSerializer(self.get_contract(pk)).data)


# -- views -------------------------------------------------------------------------------------------------------------


class ContractViewSet(ContractAPIView, viewsets.GenericViewSet):
    """Contracts, with their lines. List (filters ``status``, ``cycle``, ``organization``), create, read and change.

    Creating takes the terms and the lines at once (all valid, or nothing is written) and leaves a draft unless
    ``activate`` is true. A change (PATCH) may touch only ``name``, ``payment_terms_days``, ``tax_label``,
    ``tax_rate``, ``end_date``, ``auto_renew`` and ``renewal_term_months``; new terms apply to invoices not yet
    issued. An ended contract cannot change (409).
    """

    serializer_class = ContractSerializer
    filterset_class = ContractFilter
    queryset = Contract.objects.none()  # the real queryset depends on the caller: see get_queryset

    def get_queryset(self) -> QuerySet[Contract]:
        if getattr(self, "swagger_fake_view", False):
            return Contract.objects.none()
        return self.contracts()

    @extend_schema(parameters=PAGE_PARAMETERS, responses=ContractSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset())) or []
        return self.get_paginated_response(represent_many(ContractSerializer, page))

    @extend_schema(request=ContractCreateSerializer, responses={201: ContractSerializer, 403: FORBIDDEN})
    def create(self, request: Request) -> Response:
        organization = self.tenant.require_organization()
        incoming = ContractCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = dict(incoming.validated_data)
        lines, activate = values.pop("lines"), values.pop("activate")
        contract = contract_create(
            organization=organization,
            terms=ContractTerms(**values),
            lines=lines,
            activate=activate,
            actor=self.caller.user,
        )
        return Response(self.contract_data(str(contract.pk)), status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[CONTRACT_ID], responses={200: ContractSerializer, 404: CONTRACT_NOT_FOUND})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.contract_data(pk))

    @extend_schema(
        parameters=[CONTRACT_ID],
        request=ContractUpdateSerializer,
        responses={200: ContractSerializer, 403: FORBIDDEN, 404: CONTRACT_NOT_FOUND, 409: ENDED},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        contract = self.get_contract(pk)
        data = request_object(request)
        refuse_unknown(data, tuple(ContractUpdateSerializer().fields))
        incoming = ContractUpdateSerializer(data=data, partial=True)
        incoming.is_valid(raise_exception=True)
        if not incoming.validated_data:
            raise exceptions.ValidationError({"non_field_errors": ["Give at least one term to change."]})
        contract_update(contract=contract, changes=dict(incoming.validated_data), actor=self.caller.user)
        return Response(self.contract_data(pk))


class ContractActivateView(ContractAPIView):
    """Start invoicing a draft contract (from its start date), or resume a suspended one. Activating an active
    contract changes nothing; an ended one is 409."""

    @extend_schema(
        parameters=[CONTRACT_ID],
        request=None,
        responses={200: ContractSerializer, 403: FORBIDDEN, 404: CONTRACT_NOT_FOUND, 409: ENDED},
    )
    def post(self, request: Request, pk: str) -> Response:
        contract_activate(contract=self.get_contract(pk), actor=self.caller.user)
        return Response(self.contract_data(pk))


class ContractLinesView(ContractAPIView, generics.GenericAPIView[ContractLine]):
    """A contract's lines, in order; add one (priced from the next period not yet invoiced)."""

    serializer_class = ContractLineSerializer
    queryset = ContractLine.objects.none()  # see get()
    filter_backends: list[Any] = []

    @extend_schema(
        parameters=[CONTRACT_ID, *PAGE_PARAMETERS],
        responses={200: ContractLineSerializer(many=True), 404: CONTRACT_NOT_FOUND},
    )
    def get(self, request: Request, pk: str) -> Response:
        contract = self.get_contract(pk)
        lines = (
            ContractLine.objects.for_org(contract.organization_id).filter(contract=contract).order_by("position", "id")
        )
        page = self.paginate_queryset(lines) or []
        return self.get_paginated_response(represent_many(ContractLineSerializer, page))

    @extend_schema(
        parameters=[CONTRACT_ID],
        request=ContractLineInputSerializer,
        responses={201: ContractLineSerializer, 403: FORBIDDEN, 404: CONTRACT_NOT_FOUND, 409: ENDED},
    )
    def post(self, request: Request, pk: str) -> Response:
        contract = self.get_contract(pk)
        data = request_object(request)
        check_line(data, ContractLineInputSerializer)
        line = contract_line_add(contract=contract, data=data, actor=self.caller.user)
        return Response(ContractLineSerializer(line).data, status=status.HTTP_201_CREATED)


class ContractLineDetailView(ContractAPIView):
    """Change a line's quantity, unit price or amount from ``effective_on`` (default: today in the organization's
    time zone). When that day falls in a period already invoiced, the rest of the period is charged or credited on
    the next invoice: the adjustment is in the response."""

    @extend_schema(
        parameters=[CONTRACT_ID, LINE_ID],
        request=ContractLineChangeSerializer,
        responses={200: LINE_CHANGE_RESULT, 403: FORBIDDEN, 404: CONTRACT_NOT_FOUND, 409: ENDED},
    )
    def patch(self, request: Request, pk: str, line_id: str) -> Response:
        contract = self.get_contract(pk)
        line = self.get_line(contract, line_id)
        data = request_object(request)
        refuse_unknown(data, tuple(ContractLineChangeSerializer().fields))
        incoming = ContractLineChangeSerializer(data=data)
        incoming.is_valid(raise_exception=True)
        values = dict(incoming.validated_data)
        effective_on = values.pop("effective_on", None) or self.today(contract.organization)
        line, adjustment = contract_line_revise(line=line, effective_on=effective_on, actor=self.caller.user, **values)
        return Response(
            {
                "line": ContractLineSerializer(line).data,
                "adjustment": ContractAdjustmentSerializer(adjustment).data if adjustment is not None else None,
            }
        )


class ContractUsageView(ContractAPIView, generics.GenericAPIView[UsageRecord]):
    """Metered usage of a contract, latest first; record usage once per idempotency key (in the body or the
    ``Idempotency-Key`` header): 201 when recorded, 200 with the same record when the request is replayed, 409 when
    the key was used for different usage."""

    serializer_class = UsageRecordSerializer
    queryset = UsageRecord.objects.none()  # see get()
    filter_backends: list[Any] = []

    @extend_schema(
        parameters=[CONTRACT_ID, *PAGE_PARAMETERS],
        responses={200: UsageRecordSerializer(many=True), 404: CONTRACT_NOT_FOUND},
    )
    def get(self, request: Request, pk: str) -> Response:
        contract = self.get_contract(pk)
        records = (
            UsageRecord.objects.for_org(contract.organization_id)
            .filter(contract=contract)
            .order_by("-recorded_at", "-id")
        )
        page = self.paginate_queryset(records) or []
        return self.get_paginated_response(represent_many(UsageRecordSerializer, page))

    @extend_schema(
        parameters=[CONTRACT_ID, IDEMPOTENCY_KEY],
        request=UsageCreateSerializer,
        responses={
            200: OpenApiResponse(UsageRecordSerializer, description="A replay: the record the key made before."),
            201: UsageRecordSerializer,
            403: FORBIDDEN,
            404: CONTRACT_NOT_FOUND,
            409: OpenApiResponse(description="The idempotency key was used for different usage."),
        },
    )
    def post(self, request: Request, pk: str) -> Response:
        contract = self.get_contract(pk)
        incoming = UsageCreateSerializer(data=request_object(request))
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        header = (request.headers.get("Idempotency-Key") or "").strip()
        key = values.get("idempotency_key", "").strip()
        if header and key and header != key:
            raise exceptions.ValidationError(
                {"idempotency_key": ["The body and the Idempotency-Key header give different keys."]}
            )
        record, created = usage_record(
            contract=contract,
            metric=values["metric"],
            quantity=values["quantity"],
            idempotency_key=key or header,
            recorded_at=values.get("recorded_at"),
        )
        return Response(
            UsageRecordSerializer(record).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


contract_list_view = ContractViewSet.as_view({"get": "list", "post": "create"})
contract_detail_view = ContractViewSet.as_view({"get": "retrieve", "patch": "partial_update"})
contract_activate_view = ContractActivateView.as_view()
contract_lines_view = ContractLinesView.as_view()
contract_line_detail_view = ContractLineDetailView.as_view()
contract_usage_view = ContractUsageView.as_view()
