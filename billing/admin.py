"""Staff screens: subscriptions as Stripe last described them, the Stripe events received (with a retry action),
and SMS credits. Mirrored data is read-only here: Stripe is where subscriptions change."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from billing.models import SmsCreditEntry, StripeEvent, StripeEventStatus, Subscription, SubscriptionItem
from billing.services import stripe_event_requeue


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SubscriptionItemInline(ReadOnlyMixin, admin.TabularInline):
    model = SubscriptionItem
    extra = 0
    fields = readonly_fields = ("description", "kind", "code", "quantity", "unit_amount", "stripe_item_id")


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "organization",
        "plan_name",
        "status",
        "price_monthly",
        "currency",
        "current_period_end",
        "trial_end",
        "cancel_at_period_end",
        "created_at",
    ]
    list_filter = ["status", "tier", "cancel_at_period_end"]
    search_fields = ["organization__name", "organization__slug", "stripe_subscription_id", "stripe_customer_id"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Subscription._meta.fields]
    inlines = [SubscriptionItemInline]


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "type", "event_id", "status", "attempts", "processed_at"]
    list_filter = ["status", "type", "livemode"]
    search_fields = ["event_id", "object_id"]
    date_hierarchy = "received_at"
    readonly_fields = [field.name for field in StripeEvent._meta.fields]
    actions = ["retry_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Process the selected events again", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        retried = 0
        for event in queryset.exclude(status=StripeEventStatus.DONE).exclude(payload={}):
            stripe_event_requeue(event=event)
            retried += 1
        self.message_user(request, f"{retried} event(s) queued for processing; processed ones, and those whose body "
                          "was forgotten, are left alone.",
                          messages.SUCCESS)  # fmt: skip


@admin.register(SmsCreditEntry)
class SmsCreditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "credits", "reason", "source_key"]
    search_fields = ["organization__name", "source_key", "reason"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


from billing import admin_invoicing  # noqa: E402,F401 - registers the contract billing screens
