from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from events.models import Delivery, DeliveryState, Event


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
