"""Revenue reports in the partner API: ``GET /api/billing/forecast?months=12`` (the revenue expected in each month
ahead and the recurring-revenue metrics of the past year) and ``GET /api/billing/ageing`` (what is owed on open
invoices, by days past due). The figures are ``billing.reports``'; money is strings with two decimals, one part per
currency (amounts in different currencies are never added).

Who sees what (``billing.api_contracts.BillingAPIView``: keys need ``read`` + ``billing:read``; customers read only
as an owner, admin or manager):
- **staff** see every organization, or one: ``?organization=<id or slug>`` (or the ``X-Organization`` header);
- an **organization key** sees its organization, a **partner key** the organization named in ``X-Organization`` or,
  without the header, all of its partner's organizations;
- a **customer** sees the organization the portal acts for (``X-Organization``, or their current one), or else all
  the organizations whose billing they may read.
``?organization=`` narrows that down to one organization; one the caller may not see is 404, like any other
organization's object.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api_contracts import BillingAPIView, billing_organizations
from billing.forecast import MAX_MONTHS
from billing.metrics import AGEING_BUCKETS
from billing.reports import CurrencyAgeing, receivables_ageing, revenue_report
from billing.serializers import MoneyField
from tenancy.api_base import ORG_HEADER
from tenancy.models import Organization

DEFAULT_MONTHS = 12
MONTHS_HELP = f"A whole number of months from 1 to {MAX_MONTHS}."
ORGANIZATION = OpenApiParameter(
    "organization",
    OpenApiTypes.STR,
    description="Only this organization (its id or slug): staff choose any, others one they may see (404 otherwise).",
)
FORBIDDEN = OpenApiResponse(
    description="The key lacks read or billing:read, or the person is a customer but not an owner, admin or manager."
)
NOT_FOUND = OpenApiResponse(description="No such organization among those the caller may see.")


# -- the request -------------------------------------------------------------------------------------------------------


class ReportQuerySerializer(serializers.Serializer[Any]):
    organization = serializers.CharField(required=False, allow_blank=True, max_length=100)


class ForecastQuerySerializer(ReportQuerySerializer):
    months = serializers.IntegerField(
        required=False,
        default=DEFAULT_MONTHS,
        min_value=1,
        max_value=MAX_MONTHS,
        error_messages={
            "invalid": f"A valid integer is required: {MONTHS_HELP}",
            "max_string_length": f"The value is too long: {MONTHS_HELP}",
            "min_value": f"Must be at least 1: {MONTHS_HELP}",
            "max_value": f"Must be at most {MAX_MONTHS}: {MONTHS_HELP}",
        },
    )


# -- the responses -----------------------------------------------------------------------------------------------------


class ForecastMonthSerializer(serializers.Serializer[Any]):
    month = serializers.DateField(help_text="The month's first day.")
    contracts = MoneyField(help_text="Contract periods invoiced in the month (prorated where cut short), before tax.")
    subscriptions = MoneyField(help_text="Stripe subscription charges in the month.")
    usage = MoneyField(help_text="Metered usage projected from the last three full months.")
    total = MoneyField(help_text="contracts + subscriptions + usage.")


class ForecastTotalsSerializer(serializers.Serializer[Any]):
    contracts = MoneyField()
    subscriptions = MoneyField()
    usage = MoneyField()
    total = MoneyField()


class MrrMonthSerializer(serializers.Serializer[Any]):
    date = serializers.DateField(source="day", help_text="The day the MRR is read on: a month's last day, or today.")
    mrr = MoneyField(
        source="figures.mrr",
        help_text="Contracts at the price invoiced for the period holding the day (today's price today), and paying "
        "subscriptions.",
    )
    new_mrr = MoneyField(source="figures.new_mrr", help_text="Of customers who had no MRR the month before.")
    expansion_mrr = MoneyField(source="figures.expansion_mrr", help_text="Increase of customers who had MRR.")
    contraction_mrr = MoneyField(source="figures.contraction_mrr", help_text="Decrease of customers who kept MRR.")
    churned_mrr = MoneyField(source="figures.churned_mrr", help_text="MRR the month before of customers who left.")


class MetricsSerializer(serializers.Serializer[Any]):
    mrr = MoneyField(source="metrics.mrr", help_text="Monthly recurring revenue today.")
    arr = MoneyField(source="metrics.arr", help_text="12 x mrr.")
    churned_mrr = MoneyField(source="metrics.churned_mrr", help_text="MRR lost to customers who left, in 12 months.")
    net_revenue_retention = serializers.DecimalField(
        source="metrics.net_revenue_retention",
        max_digits=12,
        decimal_places=1,
        allow_null=True,
        help_text="MRR today of the customers who had MRR 12 months ago, as a percentage of their MRR then; null when "
        "nobody had MRR then.",
    )
    by_month = MrrMonthSerializer(source="mrr_by_month", many=True, help_text="The last 12 months, oldest first.")


class CurrencyForecastSerializer(serializers.Serializer[Any]):
    currency = serializers.CharField()
    forecast = ForecastMonthSerializer(source="months", many=True, help_text="One entry per month, this one first.")
    totals = ForecastTotalsSerializer(help_text="The sums over the months.")
    metrics = MetricsSerializer(source="*")


class ForecastSerializer(serializers.Serializer[Any]):
    first_month = serializers.DateField(
        help_text="The current month's first day; it is counted from today on (the earliest today of the "
        "organizations' time zones)."
    )
    months = serializers.IntegerField()
    currencies = CurrencyForecastSerializer(many=True, help_text="One entry per currency, by code.")


class AgeingBucketSerializer(serializers.Serializer[Any]):
    bucket = serializers.ChoiceField(choices=AGEING_BUCKETS, help_text="Days past due: current is not due yet.")
    amount = MoneyField(help_text="The amounts due (total less payments and credit notes).")
    invoices = serializers.IntegerField(help_text="Invoices with something due in the bucket.")


class CurrencyAgeingSerializer(serializers.Serializer[Any]):
    currency = serializers.CharField()
    total = MoneyField(help_text="The sum of the buckets.")
    buckets = AgeingBucketSerializer(many=True, help_text="Every bucket, in order: current, 1-30, 31-60, 61-90, 90+.")


class AgeingSerializer(serializers.Serializer[Any]):
    currencies = CurrencyAgeingSerializer(many=True, help_text="One entry per currency, by code.")


def ageing_data(currencies: list[CurrencyAgeing]) -> dict[str, Any]:
    return {
        "currencies": [
            {
                "currency": part.currency,
                "total": part.total,
                "buckets": [
                    {"bucket": name, "amount": amount, "invoices": len(part.invoices[name])}
                    for name, amount in part.buckets.items()
                ],
            }
            for part in currencies
        ]
    }


# -- the views ---------------------------------------------------------------------------------------------------------


def _lookup(value: str) -> Q:
    try:
        return Q(pk=uuid.UUID(value))
    except ValueError:
        return Q(slug=value)


class BillingReportView(BillingAPIView):
    """The organizations a report covers (rules in the module docstring)."""

    def report_organizations(self, wanted: str = "") -> QuerySet[Organization]:
        organizations: QuerySet[Organization]
        if self.caller.is_staff and not self.request.META.get(ORG_HEADER):
            organizations = Organization.objects.all()
        elif self.tenant.organization is not None:
            organizations = Organization.objects.filter(pk=self.tenant.organization.pk)
        elif self.caller.is_customer and self.caller.user is not None:
            organizations = billing_organizations(self.caller.user)
        else:
            organizations = self.tenant.organizations
        wanted = wanted.strip()
        if not wanted:
            return organizations
        chosen = organizations.filter(_lookup(wanted)).order_by().values_list("pk", flat=True).first()
        if chosen is None:
            raise exceptions.NotFound("No such organization.")
        return Organization.objects.filter(pk=chosen)


class ForecastView(BillingReportView):
    """The revenue expected in each of the next ``months`` months (the current one first, counted from today on) from
    active contracts, active and trialing Stripe subscriptions and metered usage projected from the last three full
    months, before tax; and the recurring-revenue metrics of the past 12 months: MRR, ARR (12 x MRR), churned MRR and
    net revenue retention, with the MRR movements of each month. One entry per currency."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "months",
                {"type": "integer", "minimum": 1, "maximum": MAX_MONTHS},
                description=f"{MONTHS_HELP} Default {DEFAULT_MONTHS}.",
            ),
            ORGANIZATION,
        ],
        responses={
            200: ForecastSerializer,
            400: OpenApiResponse(description='months is not a whole number from 1 to 36: {"months": ["reason"]}.'),
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    def get(self, request: Request) -> Response:
        incoming = ForecastQuerySerializer(data=request.query_params)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        organizations = self.report_organizations(values.get("organization", ""))
        return Response(ForecastSerializer(revenue_report(organizations=organizations, months=values["months"])).data)


class AgeingView(BillingReportView):
    """What is owed on open and uncollectible invoices (their total less payments and credit notes), by days past
    their due date on the organization's today: current (not due yet, or due today), 1-30, 31-60, 61-90 and 90+.
    One entry per currency."""

    @extend_schema(
        parameters=[ORGANIZATION],
        responses={200: AgeingSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        incoming = ReportQuerySerializer(data=request.query_params)
        incoming.is_valid(raise_exception=True)
        organizations = self.report_organizations(incoming.validated_data.get("organization", ""))
        return Response(AgeingSerializer(ageing_data(receivables_ageing(organizations=organizations))).data)


forecast_view = ForecastView.as_view()
ageing_view = AgeingView.as_view()
