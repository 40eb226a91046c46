"""The staff SLA report page, ``/admin/tickets/sla-report/``: the report of ``tickets.reports.sla_report`` over every
organization (or one), as tables and server-drawn SVG bar charts -- compliance per group and the backlog by age.

Guarded like the admin itself (``admin.site.admin_view``: signed in as active staff, with a verified one-time
password; otherwise the admin's sign-in page) and by the ``tickets.view_ticket`` permission, since the page shows
every organization's tickets in aggregate. The charts are plain SVG elements and attributes: no script, no styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from tenancy.models import Organization
from tickets.models import Ticket
from tickets.reports import AGE_BUCKETS, REPORT_ZONE, SlaFigures, SlaReport, report_period, sla_report

TEMPLATE = "admin/tickets/sla_report.html"
DEFAULT_DAYS = 30
GROUP_CHOICES = [("", "Overall only"), ("priority", "Priority"), ("organization", "Organization"),
                 ("technician", "Technician")]  # fmt: skip

# Chart geometry, in SVG user units (pixels).
LABEL_WIDTH = 190
BAR_AREA = 380
VALUE_WIDTH = 70
BAR_HEIGHT = 14
ROW_GAP = 10
LEGEND_HEIGHT = 26
AXIS_HEIGHT = 22
LABEL_CHARS = 28
FIRST_RESPONSE_FILL = "#417690"
RESOLUTION_FILL = "#e0a030"
BACKLOG_FILL = "#ba2121"
GRID_STROKE = "#999999"


# -- the form -------------------------------------------------------------------------------------------------------


class SlaReportForm(forms.Form):
    group_by = forms.ChoiceField(choices=GROUP_CHOICES, required=False, label="Group by")
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.order_by("name"), required=False, empty_label="All organizations"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword: the date fields are added here, first.
        dates = {
            "from": forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"})),
            "to": forms.DateField(label="To (included)", widget=forms.DateInput(attrs={"type": "date"})),
        }
        self.fields = {**dates, **self.fields}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("from") and cleaned.get("to"):
            try:
                cleaned["period"] = report_period(cleaned["from"], cleaned["to"])
            except ValidationError as error:
                self.add_error(None, error)  # names "to"
        return cleaned


# -- the charts -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    y: int
    width: int
    fill: str
    text: str
    text_x: int
    title: str
    height: int = BAR_HEIGHT - 2  # a gap between the bars of one row

    @property
    def text_y(self) -> int:
        return self.y + self.height // 2


@dataclass(frozen=True)
class ChartRow:
    label: str
    label_y: int
    bars: list[Bar]


@dataclass(frozen=True)
class Tick:
    x: int
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
    """A horizontal bar chart: one row per category, one bar per series."""

    ident: str
    title: str
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    label_x: int
    bar_x: int
    rows: list[ChartRow]
    ticks: list[Tick]
    legend: list[LegendItem]

    @property
    def axis_label_y(self) -> int:
        return self.plot_bottom + AXIS_HEIGHT - 6


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 3] + "..."


def bar_chart(
    *,
    ident: str,
    title: str,
    categories: list[tuple[str, list[Decimal | int | None]]],
    series: list[tuple[str, str]],
    maximum: Decimal | int,
    ticks: list[Decimal | int],
    unit: str = "",
) -> Chart:
    """Lay out ``categories`` (a label and one value per ``series`` (name, fill) each; None draws no bar) on a scale
    from 0 to ``maximum``, with grid lines at ``ticks``."""
    scale = Decimal(BAR_AREA) / Decimal(maximum or 1)
    row_height = BAR_HEIGHT * len(series) + ROW_GAP
    rows: list[ChartRow] = []
    for index, (label, values) in enumerate(categories):
        top = LEGEND_HEIGHT + index * row_height + ROW_GAP // 2
        bars = []
        for position, ((name, fill), value) in enumerate(zip(series, values, strict=True)):
            width = 0 if value is None else int((Decimal(value) * scale).to_integral_value())
            text = "no data" if value is None else f"{value}{unit}"
            y = top + position * BAR_HEIGHT
            bars.append(Bar(y, width, fill, text, LABEL_WIDTH + width + 4, f"{label}, {name}: {text}"))
        rows.append(ChartRow(_short(label), top + (row_height - ROW_GAP) // 2, bars))
    plot_bottom = LEGEND_HEIGHT + len(categories) * row_height
    return Chart(
        ident=ident,
        title=title,
        width=LABEL_WIDTH + BAR_AREA + VALUE_WIDTH,
        height=plot_bottom + AXIS_HEIGHT,
        plot_top=LEGEND_HEIGHT,
        plot_bottom=plot_bottom,
        label_x=LABEL_WIDTH - 8,
        bar_x=LABEL_WIDTH,
        rows=rows,
        ticks=[Tick(LABEL_WIDTH + int((Decimal(tick) * scale).to_integral_value()), f"{tick}{unit}") for tick in ticks],
        legend=[LegendItem(LABEL_WIDTH + index * 160, name, fill) for index, (name, fill) in enumerate(series)],
    )


def compliance_chart(report: SlaReport) -> Chart:
    figures = report.groups or [report.overall]
    return bar_chart(
        ident="compliance-chart",
        title="SLA compliance" + (f" by {report.group_by}" if report.group_by else ""),
        categories=[(group.label, [group.first_response.compliance, group.resolution.compliance]) for group in figures],
        series=[("First response", FIRST_RESPONSE_FILL), ("Resolution", RESOLUTION_FILL)],
        maximum=100,
        ticks=[0, 25, 50, 75, 100],
        unit=" %",
    )


def backlog_chart(report: SlaReport) -> Chart:
    counts = report.overall.backlog
    top = max(counts, default=0)
    step = max(1, -(-top // 4))  # four grid steps, whole tickets
    return bar_chart(
        ident="backlog-chart",
        title="Open tickets by age",
        categories=[(bucket.label, [count]) for bucket, count in zip(AGE_BUCKETS, counts, strict=True)],
        series=[("Open tickets", BACKLOG_FILL)],
        maximum=step * 4,
        ticks=[step * index for index in range(5)],
    )


# -- the tables -----------------------------------------------------------------------------------------------------


def duration_text(seconds: int | None) -> str:
    """Business time for people: "45 min", "3 h 05 min"; "-" when nothing was measured."""
    if seconds is None:
        return "-"
    minutes = (seconds + 30) // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def percent_text(value: Decimal | None) -> str:
    return "-" if value is None else f"{value} %"


def table_row(figures: SlaFigures, *, total: bool = False) -> dict[str, Any]:
    first, resolution = figures.first_response, figures.resolution
    return {
        "label": figures.label,
        "total": total,
        "tickets": figures.tickets,
        "breached_tickets": figures.breached_tickets,
        "clocks": [
            (
                clock.met,
                clock.breached,
                percent_text(clock.compliance),
                duration_text(clock.median_seconds),
                duration_text(clock.mean_seconds),
            )
            for clock in (first, resolution)
        ],
        "backlog": [figures.backlog_total, *figures.backlog],
    }


# -- the page -------------------------------------------------------------------------------------------------------


@require_safe
def sla_report_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("tickets.view_ticket"):
        raise PermissionDenied("Viewing tickets is needed to read the SLA report.")
    today = timezone.now().astimezone(REPORT_ZONE).date()
    defaults = {"from": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), "to": today.isoformat()}
    form = SlaReportForm(request.GET or defaults)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "SLA report",
        "app_name": apps.get_app_config("tickets").verbose_name,
        "form": form,
        "buckets": AGE_BUCKETS,
    }
    if not form.is_valid():
        return render(request, TEMPLATE, context, status=400)
    organization = form.cleaned_data["organization"]
    # Staff see every organization: the scope is all of them, or the one chosen.
    tickets = (
        Ticket.objects.for_org(organization) if organization else Ticket.objects.for_orgs(Organization.objects.all())
    )
    period = form.cleaned_data["period"]
    report = sla_report(
        tickets=tickets, start=period.start, end=period.end, group_by=form.cleaned_data["group_by"] or None
    )
    context.update(
        report=report,
        organization=organization,
        # The groups, then everything.
        table=[*(table_row(group) for group in report.groups), table_row(report.overall, total=True)],
        charts=[compliance_chart(report), backlog_chart(report)],
    )
    return render(request, TEMPLATE, context)


# The admin's own guard: active staff with a verified second factor, else its sign-in page.
sla_report_page = admin.site.admin_view(sla_report_view)
