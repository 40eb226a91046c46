"""The staff revenue page, ``/admin/billing/revenue/``: ``billing.reports`` over every organization (or one) per
currency: the forecast of the months ahead as a table and a stacked bar chart, MRR, ARR, churned MRR and net revenue
retention with a line chart of the MRR of the past 12 months, and the ageing of receivables with the invoices in each
bucket, linked to their admin pages.

Guarded like the admin itself (``admin.site.admin_view``: signed in as active staff, with a verified one-time
password; otherwise the admin's sign-in page) and by the ``billing.view_invoice`` permission, since the page shows
every organization's billing in aggregate. The charts are plain SVG elements and attributes drawn here: no script,
no styles, nothing fetched from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from billing.forecast import MAX_MONTHS
from billing.metrics import AGEING_BUCKETS
from billing.models import Invoice
from billing.reports import CurrencyAgeing, CurrencyRevenue, receivables_ageing, revenue_report
from tenancy.models import Organization

TEMPLATE = "admin/billing/revenue.html"
DEFAULT_MONTHS = 12

# Chart geometry, in SVG user units (pixels).
AXIS_WIDTH = 80  # the amounts left of the plot
PLOT_WIDTH = 720
PLOT_HEIGHT = 220
TOP = 30  # room for the legend
BOTTOM = 34  # room for the month labels
RIGHT = 16
GRID_STEPS = 4
POINT_RADIUS = 3
CONTRACTS_FILL = "#417690"
SUBSCRIPTIONS_FILL = "#e0a030"
USAGE_FILL = "#79aec8"
MRR_STROKE = "#417690"


# -- the form ----------------------------------------------------------------------------------------------------------


class RevenueForm(forms.Form):
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.order_by("name").only("id", "name"),
        required=False,
        empty_label="All organizations",
    )
    months = forms.IntegerField(
        min_value=1,
        max_value=MAX_MONTHS,
        required=False,
        label="Months ahead",
        help_text=f"1 to {MAX_MONTHS}; {DEFAULT_MONTHS} when empty.",
    )


# -- the charts --------------------------------------------------------------------------------------------------------


def grid_step(maximum: Decimal, steps: int = GRID_STEPS) -> Decimal:
    """A round step (1, 2, 2.5 or 5 times a power of ten) so that ``steps`` steps reach at least ``maximum``."""
    if maximum <= 0:
        return Decimal(1)
    rough = maximum / steps
    unit = Decimal(1).scaleb(rough.adjusted())
    return next(unit * factor for factor in (1, 2, Decimal("2.5"), 5, 10) if unit * factor >= rough)


def amount_text(value: Decimal) -> str:
    """A grid label: whole amounts with thousands separators, fractions only where the step has them."""
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value.normalize():,f}"


@dataclass(frozen=True)
class GridLine:
    y: int
    label: str


@dataclass(frozen=True)
class Segment:
    y: int
    height: int
    fill: str


@dataclass(frozen=True)
class Column:
    x: int
    width: int
    segments: list[Segment]
    title: str
    label: str  # empty where months are too many to label each one
    label_x: int


@dataclass(frozen=True)
class Point:
    x: int
    y: int
    title: str
    label: str


@dataclass(frozen=True)
class LegendItem:
    x: int
    name: str
    fill: str

    @property
    def text_x(self) -> int:
        return self.x + 16


@dataclass(frozen=True)
class Chart:
    """A chart's frame: the plot from ``left`` to ``right`` and ``top`` to ``bottom``, grid lines, a legend."""

    ident: str
    title: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    grid: list[GridLine]
    legend: list[LegendItem]
    columns: list[Column]
    points: list[Point]

    stroke: str = MRR_STROKE
    point_radius: int = POINT_RADIUS

    @property
    def label_y(self) -> int:
        return self.bottom + 18

    @property
    def grid_label_x(self) -> int:
        return self.left - 6

    @property
    def polyline(self) -> str:
        return " ".join(f"{point.x},{point.y}" for point in self.points)


def _scale(values: list[Decimal]) -> tuple[Decimal, list[GridLine]]:
    """Units per amount, and the grid lines from 0 to the top of the scale."""
    step = grid_step(max(values, default=Decimal(0)))
    per_unit = Decimal(PLOT_HEIGHT) / (step * GRID_STEPS)
    grid = [GridLine(TOP + PLOT_HEIGHT - int(step * index * per_unit), amount_text(step * index)) for index in
            range(GRID_STEPS + 1)]  # fmt: skip
    return per_unit, grid


def _height(amount: Decimal, per_unit: Decimal) -> int:
    return int((amount * per_unit).to_integral_value())


def forecast_chart(revenue: CurrencyRevenue) -> Chart:
    """The forecast as stacked bars, one per month: contracts, subscriptions, usage."""
    per_unit, grid = _scale([month.total for month in revenue.months])
    count = len(revenue.months)
    slot = PLOT_WIDTH // count
    width = max(2, slot * 3 // 4)
    label_every = -(-count // 12)  # at most twelve month labels
    series = [("Contracts", "contracts", CONTRACTS_FILL), ("Subscriptions", "subscriptions", SUBSCRIPTIONS_FILL),
              ("Usage", "usage", USAGE_FILL)]  # fmt: skip
    columns = []
    for index, month in enumerate(revenue.months):
        x = AXIS_WIDTH + index * slot + (slot - width) // 2
        base, segments = TOP + PLOT_HEIGHT, []
        for _, part, fill in series:
            height = _height(getattr(month, part), per_unit)
            if height:
                base -= height
                segments.append(Segment(base, height, fill))
        title = (
            f"{month.month:%B %Y}: {month.total:.2f} {revenue.currency} (contracts {month.contracts:.2f}, "
            f"subscriptions {month.subscriptions:.2f}, usage {month.usage:.2f})"
        )
        label = f"{month.month:%b %y}" if index % label_every == 0 else ""
        columns.append(Column(x, width, segments, title, label, x + width // 2))
    legend = [LegendItem(AXIS_WIDTH + index * 130, name, fill) for index, (name, _, fill) in enumerate(series)]
    title = f"Forecast revenue per month, {revenue.currency}"
    return _chart(f"forecast-chart-{revenue.currency.lower()}", title, grid, legend, columns=columns)


def mrr_chart(revenue: CurrencyRevenue) -> Chart:
    """The MRR on each of the last 12 month-ends (today for the last) as a line."""
    history = revenue.mrr_by_month
    per_unit, grid = _scale([month.figures.mrr for month in history])
    slot = PLOT_WIDTH // len(history)
    points = [
        Point(
            x=AXIS_WIDTH + index * slot + slot // 2,
            y=TOP + PLOT_HEIGHT - _height(month.figures.mrr, per_unit),
            title=f"{month.day:%-d %b %Y}: MRR {month.figures.mrr:.2f} {revenue.currency}",
            label=f"{month.day:%b %y}",
        )
        for index, month in enumerate(history)
    ]
    title = f"MRR over the last 12 months, {revenue.currency}"
    legend = [LegendItem(AXIS_WIDTH, "MRR", MRR_STROKE)]
    return _chart(f"mrr-chart-{revenue.currency.lower()}", title, grid, legend, points=points)


def _chart(ident: str, title: str, grid: list[Any], legend: list[LegendItem], *, columns: list[Any] | None = None,
           points: list[Point] | None = None) -> Chart:  # fmt: skip
    """A chart in the page's one frame size."""
    return Chart(
        ident=ident,
        title=title,
        width=AXIS_WIDTH + PLOT_WIDTH + RIGHT,
        height=TOP + PLOT_HEIGHT + BOTTOM,
        left=AXIS_WIDTH,
        right=AXIS_WIDTH + PLOT_WIDTH,
        top=TOP,
        bottom=TOP + PLOT_HEIGHT,
        grid=grid,
        legend=legend,
        columns=columns or [],
        points=points or [],
    )


# -- the ageing tables -------------------------------------------------------------------------------------------------


def change_url(invoice: Invoice) -> str:
    """The invoice's page in the admin."""
    return reverse("admin:billing_invoice_change", args=[invoice.pk])


def ageing_rows(part: CurrencyAgeing) -> list[dict[str, Any]]:
    """Per bucket, its total and its invoices (each with its admin link), for the template."""
    return [
        {
            "bucket": name,
            "amount": part.buckets[name],
            "invoices": [{"aged": aged, "url": change_url(aged.invoice)} for aged in part.invoices[name]],
        }
        for name in AGEING_BUCKETS
    ]


# -- the page ----------------------------------------------------------------------------------------------------------


@require_safe
def revenue_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("billing.view_invoice"):
        raise PermissionDenied("Viewing invoices is needed to read the revenue page.")
    form = RevenueForm(request.GET)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Revenue",
        "app_name": apps.get_app_config("billing").verbose_name,
        "form": form,
        "buckets": AGEING_BUCKETS,
    }
    if not form.is_valid():
        return render(request, TEMPLATE, context, status=400)
    organization = form.cleaned_data["organization"]
    # Staff see every organization: the scope is all of them, or the one chosen.
    organizations = Organization.objects.filter(pk=organization.pk) if organization else Organization.objects.all()
    report = revenue_report(organizations=organizations, months=form.cleaned_data["months"] or DEFAULT_MONTHS)
    receivables = receivables_ageing(organizations=organizations)
    context.update(
        report=report,
        organization=organization,
        currencies=[
            {"revenue": revenue, "charts": [forecast_chart(revenue), mrr_chart(revenue)]}
            for revenue in report.currencies
        ],
        ageing=[{"part": part, "rows": ageing_rows(part)} for part in receivables],
    )
    return render(request, TEMPLATE, context)


# The admin's own guard: active staff with a verified second factor, else its sign-in page.
revenue_page = admin.site.admin_view(revenue_view)
