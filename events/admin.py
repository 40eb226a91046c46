from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from events.models import Delivery, DeliveryState, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    readonly_fields = ["handler", "state", "attempts", "next_attempt_at", "completed_at", "last_error"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "type", "organization", "fanned_out_at"]
    list_filter = ["type", "organization"]
    search_fields = ["type", "id"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]
    readonly_fields = ["id", "created_at", "type", "organization", "payload", "fanned_out_at"]
    inlines = [DeliveryInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "handler", "state", "attempts", "next_attempt_at", "completed_at"]
    list_filter = ["state", "handler"]
    list_select_related = ["event"]
    readonly_fields = [
        "event",
        "handler",
        "state",
        "attempts",
        "last_error",
        "next_attempt_at",
        "claimed_at",
        "completed_at",
    ]
    actions = ["retry_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry now (failed or given-up deliveries)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        from events.tasks import run_delivery

        ids = list(queryset.filter(state__in=[DeliveryState.FAILED, DeliveryState.DEAD]).values_list("id", flat=True))
        with transaction.atomic():
            Delivery.objects.filter(pk__in=ids).update(state=DeliveryState.FAILED, next_attempt_at=timezone.now())
            # Workers see the reset rows only once this commits; the sweeper would also pick them up.
            transaction.on_commit(lambda: [run_delivery.delay(delivery_id) for delivery_id in ids])
        self.message_user(request, f"Queued {len(ids)} deliveries.", messages.SUCCESS)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["at", "status_code", "latency_ms", "response_excerpt", "error"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Partner webhook endpoints: staff see them and may switch one off or on; owners create them (API, portal)."""

    list_display = ["url", "organization", "partner", "active", "consecutive_failures", "disabled_at", "paused_until"]
    list_filter = ["active"]
    search_fields = ["url", "description", "organization__name", "partner__name"]
    list_select_related = ["organization", "partner"]
    readonly_fields = ["url", "description", "organization", "partner", "event_types", "secret_prefix",
                       "consecutive_failures", "disabled_at", "disabled_reason", "paused_until", "created_by",
                       "created_at"]  # fmt: skip
    fields = [*readonly_fields[:6], "active", *readonly_fields[6:]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        from events.webhooks import endpoint_update

        endpoint_update(endpoint=WebhookEndpoint.objects.get(pk=obj.pk), active=obj.active)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "endpoint", "event", "state", "attempts", "last_status_code", "next_attempt_at"]
    list_filter = ["state"]
    list_select_related = ["endpoint", "event"]
    readonly_fields = ["endpoint", "event", "state", "attempts", "next_attempt_at", "claimed_at",
                       "last_status_code", "completed_at", "created_at"]  # fmt: skip
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
