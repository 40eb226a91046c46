"""Filters of the contract and invoice lists: ``/api/contracts/?status=ACTIVE&cycle=MONTHLY,ANNUAL&organization=acme``
and ``/api/invoices/?status=OPEN,overdue&contract=<id>&issued_from=2026-03-01&issued_to=2026-03-31``.

``overdue`` is derived: an OPEN invoice whose due date is before today in its organization's time zone, so one list
across organizations in several zones holds each invoice to its own today.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from billing.models import Contract, ContractStatus, Cycle, Invoice, InvoiceStatus

M = TypeVar("M", bound=Model)
OVERDUE = "overdue"
INVOICE_STATUSES = (*InvoiceStatus.values, OVERDUE)
# ``?status=`` as the filter reads it, for the schema: statuses in any case, comma-separated, blanks ignored.
_ONE_STATUS = r"\s*(?:{})\s*".format(
    "|".join("".join(f"[{c.upper()}{c.lower()}]" for c in s) for s in INVOICE_STATUSES)
)
STATUS_LIST = rf"^(?:\s*,)*{_ONE_STATUS}(?:,(?:{_ONE_STATUS}|\s*))*$"


class ChoiceInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """A comma-separated list of choices: ``?status=DRAFT,ACTIVE``."""


def by_organization(queryset: QuerySet[M], value: str) -> QuerySet[M]:
    """An organization by id or slug (partner keys listing across their organizations)."""
    value = value.strip()
    try:
        return queryset.filter(organization_id=uuid.UUID(value))
    except ValueError:
        return queryset.filter(organization__slug=value)


def overdue(invoices: QuerySet[Invoice], now: datetime | None = None) -> Q:
    """OPEN invoices due before today in their organization's zone (one query for the zones in ``invoices``)."""
    now = now or timezone.now()
    zones = invoices.order_by().values_list("organization__timezone", flat=True).distinct()
    condition = Q(pk__in=[])
    for zone in zones:
        today = timezone.localdate(now, ZoneInfo(zone))
        condition |= Q(organization__timezone=zone, due_date__lt=today)
    return Q(status=InvoiceStatus.OPEN) & condition


class ContractFilter(django_filters.FilterSet):
    status = ChoiceInFilter(
        choices=ContractStatus.choices, help_text="One status or several, comma-separated: DRAFT,ACTIVE."
    )
    cycle = ChoiceInFilter(choices=Cycle.choices, help_text="One cycle or several, comma-separated: MONTHLY,ANNUAL.")
    organization = django_filters.CharFilter(
        method="filter_organization", help_text="An organization's slug or id (partner keys acting for several)."
    )

    class Meta:
        model = Contract
        fields: list[str] = []

    def filter_organization(self, queryset: QuerySet[Contract], name: str, value: str) -> QuerySet[Contract]:
        return by_organization(queryset, value)


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(
        method="filter_status",
        help_text=f"One status or several, comma-separated: {', '.join(INVOICE_STATUSES)}. "
        "overdue: OPEN and due before today in the organization's time zone.",
    )
    organization = django_filters.CharFilter(
        method="filter_organization", help_text="An organization's slug or id (partner keys acting for several)."
    )
    contract = django_filters.CharFilter(method="filter_contract", help_text="A contract's id.")
    issued_from = django_filters.DateFilter(
        field_name="issue_date", lookup_expr="gte", help_text="Issued on or after this day (YYYY-MM-DD)."
    )
    issued_to = django_filters.DateFilter(
        field_name="issue_date", lookup_expr="lte", help_text="Issued on or before this day (YYYY-MM-DD)."
    )

    class Meta:
        model = Invoice
        fields: list[str] = []

    @extend_schema_field({"type": "string", "pattern": STATUS_LIST})
    def filter_status(self, queryset: QuerySet[Invoice], name: str, value: str) -> QuerySet[Invoice]:
        wanted = {part.strip() for part in value.split(",") if part.strip()}
        statuses = {part.upper() for part in wanted if part.lower() != OVERDUE}
        unknown = sorted(status for status in statuses if status not in InvoiceStatus.values)
        if unknown or not wanted:
            raise ValidationError({"status": [f"Give one or more of {', '.join(INVOICE_STATUSES)}."]})
        condition = Q(status__in=statuses)
        if any(part.lower() == OVERDUE for part in wanted):
            condition |= overdue(queryset)
        return queryset.filter(condition)

    def filter_organization(self, queryset: QuerySet[Invoice], name: str, value: str) -> QuerySet[Invoice]:
        return by_organization(queryset, value)

    @extend_schema_field(OpenApiTypes.UUID)
    def filter_contract(self, queryset: QuerySet[Invoice], name: str, value: str) -> QuerySet[Invoice]:
        try:
            return queryset.filter(contract_id=uuid.UUID(value.strip()))
        except ValueError:
            raise ValidationError({"contract": ["A contract's id."]}) from None
