"""Partner webhooks in the API: endpoints (create, read, change, delete), their secret's rotation, a test ping, the
delivery log and redelivery, and the event catalogue.

Whose endpoints: a partner key without ``X-Organization`` manages its partner's endpoints (they get the events of
every organization of the partner); otherwise the endpoints of the organization the caller acts for. Keys need
``webhooks:write`` (``webhooks:read`` is enough to read); people must be owners or admins of the organization
(or its partner's admins). Another owner's endpoint or delivery is 404, as is a malformed id.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from events import catalogue
from events.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookState
from events.webhooks import (
    delivery_redeliver,
    endpoint_create,
    endpoint_delete,
    endpoint_ping,
    endpoint_rotate,
    endpoint_update,
)
from tenancy.api_base import (
    PAGE_PARAMETERS,
    Caller,
    TenantAPIView,
    refuse_unknown,
    refuses_unknown_fields,
    request_object,
)
from tenancy.api_policy import Pagination
from tenancy.audit import client_ip
from tenancy.models import MANAGING_ROLES, Partner

ENDPOINT_ID = OpenApiParameter("pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The endpoint's id.")
DELIVERY_ID = OpenApiParameter("delivery", OpenApiTypes.INT, OpenApiParameter.PATH, description="The delivery's id.")
FIELDS = ("url", "event_types", "description", "active")


class EndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    owner = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "owner", "url", "description", "event_types", "active", "secret_prefix",
                  "consecutive_failures", "disabled_at", "disabled_reason", "paused_until", "created_at",
                  "updated_at"]  # fmt: skip

    def get_owner(self, endpoint: WebhookEndpoint) -> dict[str, str]:
        if endpoint.organization_id is not None:
            return {"organization": str(endpoint.organization_id)}
        return {"partner": str(endpoint.partner_id)}


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="Shown this once: keep it to verify Keel-Signature.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]


@refuses_unknown_fields
class EndpointInputSerializer(serializers.Serializer[Any]):
    url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(child=serializers.CharField(max_length=100), allow_empty=False, min_length=1)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    active = serializers.BooleanField(required=False)


class AttemptSerializer(serializers.ModelSerializer[WebhookAttempt]):
    class Meta:
        model = WebhookAttempt
        fields = ["at", "status_code", "latency_ms", "response_excerpt", "error"]


class DeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    event = serializers.SerializerMethodField()
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event", "state", "attempts", "next_attempt_at", "last_status_code", "completed_at",
                  "created_at", "attempt_log"]  # fmt: skip

    def get_event(self, delivery: WebhookDelivery) -> dict[str, Any]:
        return {"id": str(delivery.event_id), "type": delivery.event.type, "created": delivery.event.created_at}


class WebhookAPIView(TenantAPIView):
    writes_need_organization = False  # a partner key manages its partner's endpoints without X-Organization

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return () if self.request.method in permissions.SAFE_METHODS else ("webhooks:write",)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        key = self.tenant.api_key
        reads = request.method in permissions.SAFE_METHODS
        if key is not None and reads and not {"webhooks:read", "webhooks:write"} & set(key.scopes):
            raise exceptions.PermissionDenied("This API key lacks the scope(s): webhooks:read.")
        caller = Caller.of(request)
        if caller.is_customer and self.tenant.role is not None and self.tenant.role not in MANAGING_ROLES:
            raise exceptions.PermissionDenied("Only owners and admins manage webhooks.")

    def owner(self) -> dict[str, Any]:
        """Whose endpoints this request works on: ``{"partner": …}`` or ``{"organization": …}``."""
        key = self.tenant.api_key
        if key is not None and key.partner_id is not None and self.tenant.organization is None:
            return {"partner": Partner.objects.get(pk=key.partner_id)}
        return {"organization": self.tenant.require_organization()}

    def endpoints(self) -> QuerySet[WebhookEndpoint]:
        owner = self.owner()
        if "partner" in owner:
            return WebhookEndpoint.objects.filter(partner=owner["partner"])
        return WebhookEndpoint.objects.filter(organization=owner["organization"])

    def endpoint(self, pk: str) -> WebhookEndpoint:
        try:
            key = uuid.UUID(str(pk))
        except ValueError:
            raise exceptions.NotFound("No such endpoint.") from None
        found = self.endpoints().filter(pk=key).first()
        if found is None:
            raise exceptions.NotFound("No such endpoint.")
        return found


class EndpointListView(WebhookAPIView):
    @extend_schema(responses=EndpointSerializer(many=True), summary="Webhook endpoints")
    def get(self, request: Request) -> Response:
        return Response(EndpointSerializer(self.endpoints(), many=True).data)

    @extend_schema(request=EndpointInputSerializer, responses={201: EndpointWithSecretSerializer})
    def post(self, request: Request) -> Response:
        data = request_object(request)
        refuse_unknown(data, FIELDS)
        incoming = EndpointInputSerializer(data=data)
        incoming.is_valid(raise_exception=True)
        values = dict(incoming.validated_data)
        active = values.pop("active", True)
        caller = Caller.of(request)
        endpoint, secret = endpoint_create(**values, **self.owner(), actor=caller.user, ip=client_ip(request))
        if not active:
            endpoint_update(endpoint=endpoint, active=False, actor=caller.user, ip=client_ip(request))
        body = {**EndpointSerializer(endpoint).data, "secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)


class EndpointDetailView(WebhookAPIView):
    @extend_schema(parameters=[ENDPOINT_ID], responses=EndpointSerializer)
    def get(self, request: Request, pk: str) -> Response:
        return Response(EndpointSerializer(self.endpoint(pk)).data)

    @extend_schema(parameters=[ENDPOINT_ID], request=EndpointInputSerializer, responses=EndpointSerializer)
    def patch(self, request: Request, pk: str) -> Response:
        endpoint = self.endpoint(pk)
        data = request_object(request)
        refuse_unknown(data, FIELDS)
        incoming = EndpointInputSerializer(data=data, partial=True)
        incoming.is_valid(raise_exception=True)
        caller = Caller.of(request)
        endpoint_update(endpoint=endpoint, **dict(incoming.validated_data), actor=caller.user, ip=client_ip(request))
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(parameters=[ENDPOINT_ID], responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        endpoint_delete(endpoint=self.endpoint(pk), actor=Caller.of(request).user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotateSecretView(WebhookAPIView):
    @extend_schema(parameters=[ENDPOINT_ID], request=None, responses=EndpointWithSecretSerializer)
    def post(self, request: Request, pk: str) -> Response:
        endpoint = self.endpoint(pk)
        secret = endpoint_rotate(endpoint=endpoint, actor=Caller.of(request).user, ip=client_ip(request))
        return Response({**EndpointSerializer(endpoint).data, "secret": secret})


class TestView(WebhookAPIView):
    @extend_schema(
        parameters=[ENDPOINT_ID],
        request=None,
        responses={202: DeliverySerializer},
        description="Queue a webhook.ping to the endpoint: a worker sends it within seconds, once, not retried. The "
        "answer is its delivery, still RUNNING; the delivery log shows the attempt once it is made.",
    )
    def post(self, request: Request, pk: str) -> Response:
        delivery = endpoint_ping(endpoint=self.endpoint(pk))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryListView(WebhookAPIView):
    pagination_class = Pagination  # also tells the schema that the list comes in pages

    @extend_schema(
        parameters=[
            ENDPOINT_ID,
            OpenApiParameter("state", OpenApiTypes.STR, enum=WebhookState.values, description="Any case."),
            *PAGE_PARAMETERS,
        ],
        responses=DeliverySerializer(many=True),
    )
    def get(self, request: Request, pk: str) -> Response:
        endpoint = self.endpoint(pk)
        deliveries = (
            WebhookDelivery.objects.filter(endpoint=endpoint)
            .select_related("event")
            .prefetch_related("attempt_log")
            .order_by("-created_at", "-id")
        )
        if state := request.query_params.get("state", "").strip().upper():
            if state not in WebhookState.values:
                raise exceptions.ValidationError({"state": [f"Unknown state {state!r}."]})
            deliveries = deliveries.filter(Q(state=state))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(deliveries, request, view=self) or []
        return paginator.get_paginated_response(DeliverySerializer(page, many=True).data)


class RedeliverView(WebhookAPIView):
    @extend_schema(parameters=[ENDPOINT_ID, DELIVERY_ID], request=None, responses=DeliverySerializer)
    def post(self, request: Request, pk: str, delivery: str) -> Response:
        endpoint = self.endpoint(pk)
        found = WebhookDelivery.objects.filter(endpoint=endpoint, pk=int(delivery) if delivery.isdigit() else -1)
        item = found.select_related("event").first()
        if item is None:
            raise exceptions.NotFound("No such delivery.")
        return Response(DeliverySerializer(delivery_redeliver(delivery=item)).data)


EVENT_TYPE = inline_serializer(
    "WebhookEventType",
    {"type": serializers.CharField(), "description": serializers.CharField(), "example": serializers.DictField()},
    many=True,
)


class EventTypesView(TenantAPIView):
    writes_need_organization = False

    @extend_schema(responses=EVENT_TYPE, summary="The events webhooks can take, each with an example of its data")
    def get(self, request: Request) -> Response:
        return Response(
            [
                {"type": name, "description": description, "example": example}
                for name, (description, example) in catalogue.EVENT_TYPES.items()
            ]
        )


endpoint_list_view = EndpointListView.as_view()
endpoint_detail_view = EndpointDetailView.as_view()
rotate_secret_view = RotateSecretView.as_view()
test_view = TestView.as_view()
delivery_list_view = DeliveryListView.as_view()
redeliver_view = RedeliverView.as_view()
event_types_view = EventTypesView.as_view()
