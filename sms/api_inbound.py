"""What contacts text to an organization's numbers, in the partner API: ``GET /api/sms/inbound/`` (newest first;
filters ``kind``, ``campaign``, ``contact``, ``since``) and ``GET /api/sms/inbound/{id}/``. Replies are also pushed
to webhooks as ``contact.replied``.

Access is ``sms.api.SmsAPIView``'s: API keys need ``read`` + ``sms:read``; people must be owners, admins or managers
of the organization (or its partner's admin). Another organization's message is 404, as is a malformed id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from sms.api import SmsAPIView
from sms.api_campaigns import choice_filter, uuid_filter
from sms.models import InboundKind, InboundMessage
from tenancy.api_base import PAGE_PARAMETERS, represent_many

INBOUND_ID = OpenApiParameter("pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The message's id.")
INBOUND_NOT_FOUND = OpenApiResponse(description="No such message among the organizations the caller may see.")
INBOUND_FILTERS = [
    OpenApiParameter(
        "kind", OpenApiTypes.STR, enum=InboundKind.values,
        description="Only this kind: reply, or the keywords handled by Keel (opt_out, opt_in, help).",
    ),
    OpenApiParameter("campaign", OpenApiTypes.UUID, description="Only what came back to this campaign's messages."),
    OpenApiParameter("contact", OpenApiTypes.UUID, description="Only what this contact sent."),
    OpenApiParameter(
        "since", OpenApiTypes.DATETIME,
        description="Only what arrived at or after this time (ISO 8601 with its offset; encode a + as %2B). To "
        "poll, pass the received_at of the newest message seen and skip the ids already seen.",
    ),
]  # fmt: skip


def since_filter(params: Any, name: str) -> datetime | None:
    """The query parameter ``name`` as an aware time, None when absent; a 400 naming it otherwise."""
    value = str(params.get(name, "")).strip()
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or timezone.is_naive(parsed):
        raise exceptions.ValidationError(
            {name: ["Give an ISO 8601 time with its offset, such as 2026-11-21T09:00:00Z."]}
        )
    return parsed


class InboundMessageSerializer(serializers.ModelSerializer[InboundMessage]):
    """A message a contact (or any number) sent to one of the organization's numbers. ``contact`` is null when the
    number is no contact's; ``campaign`` is the campaign whose message the contact last received, if any."""

    organization = serializers.CharField(source="organization.slug", read_only=True)
    contact = serializers.UUIDField(source="contact_id", read_only=True, allow_null=True)
    campaign = serializers.UUIDField(source="campaign_id", read_only=True, allow_null=True)
    phone = serializers.CharField(source="from_e164", read_only=True, help_text="Who sent it (E.164 when a number).")
    to = serializers.CharField(source="to_e164", read_only=True, help_text="The organization's number it came to.")

    class Meta:
        model = InboundMessage
        fields = ["id", "organization", "kind", "phone", "to", "body", "contact", "campaign", "received_at"]
        read_only_fields = fields


class InboundAPIView(SmsAPIView):
    def inbound(self) -> QuerySet[InboundMessage]:
        return self.scoped(InboundMessage.objects.all()).select_related("organization").order_by("-received_at", "-id")


class InboundListView(InboundAPIView, generics.GenericAPIView[InboundMessage]):
    """Messages sent to the organization's numbers, newest first."""

    queryset = InboundMessage.objects.none()  # see inbound()
    serializer_class = InboundMessageSerializer
    filter_backends: list[Any] = []

    @extend_schema(parameters=[*INBOUND_FILTERS, *PAGE_PARAMETERS], responses=InboundMessageSerializer(many=True))
    def get(self, request: Request) -> Response:
        params = request.query_params
        messages = self.inbound()
        if kind := choice_filter(params, "kind", InboundKind.values):
            messages = messages.filter(kind=kind)
        if campaign := uuid_filter(params, "campaign"):
            messages = messages.filter(campaign_id=campaign)
        if contact := uuid_filter(params, "contact"):
            messages = messages.filter(contact_id=contact)
        if (since := since_filter(params, "since")) is not None:
            messages = messages.filter(received_at__gte=since)
        page = self.paginate_queryset(messages) or []
        return self.get_paginated_response(represent_many(InboundMessageSerializer, page))


class InboundDetailView(InboundAPIView):
    """One message sent to the organization's numbers."""

    @extend_schema(parameters=[INBOUND_ID], responses={200: InboundMessageSerializer, 404: INBOUND_NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        message = None
        if str(pk).isdigit() and len(str(pk)) <= 18:
            message = self.inbound().filter(pk=int(pk)).first()
        if message is None:
            raise exceptions.NotFound("No such message.")
        return Response(InboundMessageSerializer(message).data)


inbound_list_view = InboundListView.as_view()
inbound_detail_view = InboundDetailView.as_view()
