"""Staff screens for notifications.

What happened is read-only: notices, notifications, deliveries (filter by channel, status and reason to find what
did not arrive and why), people's preferences and organizations' Slack webhooks (the address itself is never shown).
Platform notices (to the MSP's staff or to addresses of no customer) have no organization: filter the organization
column by "Empty" to see them. A notice's sealed values (one-time links) are never shown.

Bulk sends are written here as drafts (the event type, a title and message, the roles told, and optionally the
organizations; every active one otherwise) and started with the "Start sending" action, or at once with "Start
sending when saved". A started bulk send cannot change; its page shows the job's progress and what became of its
deliveries.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from notifications.catalogue import choosable
from notifications.models import (
    BulkSend,
    BulkStatus,
    Delivery,
    Notice,
    Notification,
    NotificationPreference,
    SlackWebhook,
)
from notifications.services.bulk import bulk_send_check, bulk_send_save, bulk_send_start
from tenancy.errors import ServiceValidationError
from tenancy.models import Role, User


class RecordAdmin(admin.ModelAdmin):
    """A record of what happened: every field shown, nothing added, changed or deleted here; lists skip counting
    the whole table."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryInline(admin.TabularInline):
    model, extra = Delivery, 0
    fields = readonly_fields = ("channel", "to", "status", "reason", "attempts", "sent_at", "last_error")
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notice)
class NoticeAdmin(RecordAdmin):
    list_display = ["created_at", "event_type", "organization", "key", "recipients", "notified", "bulk_send"]
    list_filter = ["event_type", ("organization", admin.EmptyFieldListFilter)]
    search_fields = ["key", "organization__name", "organization__slug"]
    list_select_related = ["organization", "bulk_send"]
    fields = readonly_fields = ("organization", "event_type", "key", "context", "template", "auto_reply",
                                "recipients", "notified", "bulk_send", "created_at")  # fmt: skip
    inlines = [DeliveryInline]


@admin.register(Notification)
class NotificationAdmin(RecordAdmin):
    list_display = ["created_at", "title", "user", "organization", "event_type", "in_app", "read_at"]
    list_filter = ["event_type", "in_app", ("read_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "user__email", "organization__name"]
    list_select_related = ["user", "organization"]
    readonly_fields = ["organization", "notice", "user", "event_type", "title", "body", "url", "in_app", "read_at",
                       "created_at"]  # fmt: skip
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(RecordAdmin):
    list_display = ["created_at", "channel", "to", "organization", "event_type", "status", "reason", "attempts",
                    "next_attempt_at", "sent_at"]  # fmt: skip
    list_filter = ["channel", "status", "reason", ("organization", admin.EmptyFieldListFilter)]
    search_fields = ["to", "provider_id", "organization__name", "notice__event_type"]
    list_select_related = ["organization", "notice"]
    readonly_fields = ["organization", "notice", "notification", "channel", "to", "subject", "body", "status",
                       "reason", "last_error", "attempts", "next_attempt_at", "locked_until", "first_attempt_at",
                       "sent_at", "provider_id", "created_at", "updated_at"]  # fmt: skip

    @admin.display(description="Event type", ordering="notice__event_type")
    def event_type(self, delivery: Delivery) -> str:
        return delivery.notice.event_type


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(RecordAdmin):
    list_display = ["user", "organization", "event_type", "in_app", "email", "sms", "updated_at"]
    list_filter = ["event_type", "in_app", "email", "sms"]
    search_fields = ["user__email", "organization__name"]
    list_select_related = ["user", "organization"]
    readonly_fields = ["organization", "user", "event_type", "in_app", "email", "sms", "updated_at"]


@admin.register(SlackWebhook)
class SlackWebhookAdmin(RecordAdmin):
    list_display = ["organization", "hint", "routed", "updated_by", "updated_at"]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["organization", "updated_by"]
    fields = readonly_fields = ("organization", "hint", "event_types", "updated_by", "updated_at")

    @admin.display(description="Event types")
    def routed(self, webhook: SlackWebhook) -> str:
        return ", ".join(webhook.event_types) or "none"


# -- bulk sends ----------------------------------------------------------------------------------------------------


class BulkSendForm(forms.ModelForm):
    event_type = forms.ChoiceField(
        choices=[(event.name, f"{event.label} ({event.name})") for event in choosable()], initial="platform.incident"
    )
    roles = forms.MultipleChoiceField(
        choices=Role.choices, initial=[Role.OWNER], widget=forms.CheckboxSelectMultiple, help_text="Who is told."
    )
    start_now = forms.BooleanField(required=False, label="Start sending when saved")

    class Meta:
        model = BulkSend
        fields = ["event_type", "title", "message", "url", "roles", "organizations"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            bulk_send_check(
                event_type=data.get("event_type", ""), title=data.get("title", ""), message=data.get("message", ""),
                url=data.get("url", ""), roles=data.get("roles") or [],
            )  # fmt: skip
        except ServiceValidationError as bad:
            for field, reasons in bad.message_dict.items():
                if field in self.fields and field not in self.errors:
                    self.add_error(field, reasons)
        return data


@admin.register(BulkSend)
class BulkSendAdmin(admin.ModelAdmin):
    form = BulkSendForm
    list_display = ["title", "event_type", "status", "progress_bar", "total", "sent", "skipped", "failed",
                    "created_by", "created_at"]  # fmt: skip
    list_filter = ["status", "event_type"]
    search_fields = ["title", "message"]
    list_select_related = ["created_by"]
    autocomplete_fields = ["organizations"]
    actions = ["start"]
    progress_fields = ["status", "progress_bar", "total", "sent", "skipped", "failed", "deliveries", "created_by",
                       "created_at", "queued_at", "started_at", "finished_at"]  # fmt: skip

    def get_fields(self, request: HttpRequest, obj: BulkSend | None = None) -> list[Any]:
        fields = ["event_type", "title", "message", "url", "roles", "organizations"]
        if obj is None or obj.status == BulkStatus.DRAFT:
            return [*fields, "start_now"]
        return [*fields, *self.progress_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: BulkSend | None = None) -> list[str]:
        if obj is None or obj.status == BulkStatus.DRAFT:
            return []
        return ["event_type", "title", "message", "url", "roles", "organizations", *self.progress_fields]

    def has_change_permission(self, request: HttpRequest, obj: BulkSend | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.status == BulkStatus.DRAFT)

    def has_delete_permission(self, request: HttpRequest, obj: BulkSend | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status == BulkStatus.DRAFT)

    def save_model(self, request: HttpRequest, obj: BulkSend, form: forms.ModelForm, change: bool) -> None:
        if obj.created_by_id is None and isinstance(request.user, User):
            obj.created_by = request.user
        bulk_send_save(bulk_send=obj)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if form.cleaned_data.get("start_now") and bulk_send_start(bulk_send=form.instance):
            messages.success(request, f"Sending {form.instance.title!r}: its progress shows on its page.")

    @admin.action(description="Start sending the selected drafts", permissions=["change"])
    def start(self, request: HttpRequest, queryset: QuerySet[BulkSend]) -> None:
        started = [bulk for bulk in queryset if bulk.status == BulkStatus.DRAFT and bulk_send_start(bulk_send=bulk)]
        if started:
            messages.success(request, f"Started {len(started)} bulk send{'s' if len(started) != 1 else ''}.")
        if len(started) != len(queryset):
            messages.warning(request, f"{len(queryset) - len(started)} had already started; they were left alone.")

    @admin.display(description="Progress")
    def progress_bar(self, bulk: BulkSend) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {} of {} ({} %)', bulk.percent, bulk.done, bulk.total,
            bulk.percent,
        )  # fmt: skip

    @admin.display(description="Deliveries")
    def deliveries(self, bulk: BulkSend) -> str:
        rows = (
            Delivery.objects.filter(notice__bulk_send=bulk)
            .values("channel", "status")
            .annotate(count=Count("pk"))
            .order_by("channel", "status")
        )
        if not rows:
            return "None yet."
        return format_html_join(
            ", ", "{} {}: {}", ((row["channel"], row["status"].lower(), row["count"]) for row in rows)
        )
