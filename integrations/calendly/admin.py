"""Staff screens: the discovery calls prospects booked, and Calendly's deliveries. Read-only: Calendly is the source."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from integrations.calendly.models import Booking, WebhookEvent


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _qualification_link(qualification: Any) -> str:
    url = reverse("admin:qualification_qualification_change", args=[qualification.pk])
    return format_html('<a href="{}">{}</a>', url, qualification.customer_email)


@admin.register(Booking)
class BookingAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "prospect", "start_time", "status", "rescheduled", "previous_status", "canceled_at"]
    list_filter = ["status", "rescheduled"]
    search_fields = ["qualification__customer_email", "invitee_email", "invitee_uri", "event_uri"]
    list_select_related = ["qualification"]
    date_hierarchy = "start_time"
    readonly_fields = ["prospect", *(field.name for field in Booking._meta.fields if field.name != "qualification")]

    @admin.display(description="qualification", ordering="qualification__customer_email")
    def prospect(self, obj: Booking) -> str:
        return _qualification_link(obj.qualification)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["received_at", "event_type", "invitee_uri", "outcome", "booking_link"]
    list_filter = ["event_type"]
    search_fields = ["invitee_uri", "key", "outcome"]
    list_select_related = ["booking"]
    date_hierarchy = "received_at"
    readonly_fields = [*(field.name for field in WebhookEvent._meta.fields if field.name != "booking"), "booking_link"]

    @admin.display(description="booking")
    def booking_link(self, obj: WebhookEvent) -> str:
        if obj.booking is None:
            return "—"
        url = reverse("admin:calendly_booking_change", args=[obj.booking.pk])
        return format_html('<a href="{}">{}</a>', url, obj.booking)
