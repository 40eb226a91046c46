"""The SLA report in the partner API: ``GET /api/tickets/sla-report/?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=``.

Who sees what is the ticket API's rule (``tickets.api.TicketAPIView``): the report covers exactly the tickets the
caller could list -- an organization key its organization's, a partner key those of the organization named in
``X-Organization`` or, without the header, of all its partner's organizations; a signed-in person those of the
portal's current organization. Keys need ``read`` + ``tickets:read``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from tickets.api import TicketAPIView
from tickets.reports import AGE_BUCKETS, GROUP_BY, MAX_REPORT_DAYS, SlaReport, report_period, sla_report

GROUP_BY_HELP = f"One of {', '.join(GROUP_BY)}; omit for the overall figures only."
BAD_REQUEST = OpenApiResponse(
    description="A date missing or invalid, to before from, a range too long or an unknown group_by: "
    '{"field": ["reason"]}.'
)


# -- the request ---------------------------------------------------------------------------------------------------


class SlaReportQuerySerializer(serializers.Serializer[Any]):
    """The query string. ``from`` is a Python keyword, hence fields built in ``get_fields``."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            "from": serializers.DateField(),
            "to": serializers.DateField(),
            "group_by": serializers.ChoiceField(
                choices=GROUP_BY,
                required=False,
                allow_blank=True,
                error_messages={"invalid_choice": f'"{{input}}" is not a grouping. {GROUP_BY_HELP}'},
            ),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # report_period raises a Django ValidationError naming "to"; DRF reports it under that field.
        return {"period": report_period(attrs["from"], attrs["to"]), "group_by": attrs.get("group_by") or None}


# -- the response --------------------------------------------------------------------------------------------------


class SlaReportClockSerializer(serializers.Serializer[Any]):
    met = serializers.IntegerField(help_text="Clocks that stopped within their target.")
    breached = serializers.IntegerField(
        help_text="Clocks that missed their target: stopped late, or still running past their due time."
    )
    compliance = serializers.DecimalField(
        max_digits=4,
        decimal_places=1,
        allow_null=True,
        help_text="met / (met + breached) in percent, one decimal; null when no clock was decided yet.",
    )
    median_seconds = serializers.IntegerField(
        allow_null=True, help_text="Median business time of the clocks that stopped, in seconds."
    )
    mean_seconds = serializers.IntegerField(
        allow_null=True, help_text="Mean business time of the clocks that stopped, in seconds."
    )


class SlaReportBacklogSerializer(serializers.Serializer[Any]):
    total = serializers.IntegerField(help_text="Open tickets now.")

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        for bucket in AGE_BUCKETS:
            fields[bucket.key] = serializers.IntegerField(help_text=f"Open tickets opened {bucket.label.lower()} ago.")
        return fields


class SlaReportFiguresSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(
        allow_null=True,
        help_text="The group: a priority (P1), an organization's slug or a technician's id; null for all tickets "
        "and for unassigned tickets.",
    )
    name = serializers.CharField(source="label", help_text="The group's name, for people.")
    tickets = serializers.IntegerField(help_text="Tickets opened in the period (merged duplicates excluded).")
    breached_tickets = serializers.IntegerField(help_text="Of those, tickets with either clock breached.")
    first_response = SlaReportClockSerializer()
    resolution = SlaReportClockSerializer()
    backlog = SlaReportBacklogSerializer(source="backlog_counts", help_text="Open tickets now, by age.")


class SlaReportSerializer(serializers.Serializer[SlaReport]):
    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            "from": serializers.DateField(source="first_day"),
            "to": serializers.DateField(source="last_day"),
            "start": serializers.DateTimeField(help_text="The period's first instant (UTC midnight of from)."),
            "end": serializers.DateTimeField(help_text="Exclusive: UTC midnight after to."),
            "group_by": serializers.CharField(allow_null=True),
            "generated_at": serializers.DateTimeField(help_text="When the backlog and running clocks were read."),
            "overall": SlaReportFiguresSerializer(),
            "groups": SlaReportFiguresSerializer(many=True),
        }


# -- the view ------------------------------------------------------------------------------------------------------


class TicketSlaReportView(TicketAPIView):
    """SLA compliance of the tickets opened from ``from`` to ``to`` (whole UTC days, both included, at most
    366): per clock (first response, resolution) met, breached, compliance and the median and mean business time of
    the clocks that stopped; tickets with a breach; and the backlog of open tickets now, by age. Overall, and per
    ``group_by`` group when given. A running clock counts once it is past its due time; paused clocks and clocks
    still in time count in neither met nor breached. Business time follows each ticket's SLA calendar and pauses."""

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="First day (UTC), YYYY-MM-DD."),
            OpenApiParameter(
                "to",
                OpenApiTypes.DATE,
                required=True,
                description=f"Last day (UTC), included; at most {MAX_REPORT_DAYS} days after from, counting both.",
            ),
            OpenApiParameter("group_by", OpenApiTypes.STR, enum=list(GROUP_BY), description=GROUP_BY_HELP),
        ],
        responses={
            200: SlaReportSerializer,
            400: BAD_REQUEST,
        },
    )
    def get(self, request: Request) -> Response:
        incoming = SlaReportQuerySerializer(data=request.query_params)
        incoming.is_valid(raise_exception=True)
        period = incoming.validated_data["period"]
        report = sla_report(
            tickets=self.tickets(), start=period.start, end=period.end, group_by=incoming.validated_data["group_by"]
        )
        return Response(SlaReportSerializer(report).data)


ticket_sla_report_view = TicketSlaReportView.as_view()
