"""Staff screens for the service desk's set-up (calendars, SLA policies, technicians, canned responses) and a
read-only view of tickets with their SLA state. Ticket changes go through ``tickets.services`` so the clocks stay
right; the working screens for technicians build on these."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.html import format_html

from tickets import sla
from tickets.models import (
    BusinessCalendar,
    CannedResponse,
    ClockState,
    Comment,
    SlaPolicy,
    Technician,
    Ticket,
    TicketActivity,
    TimeEntry,
)

STATE_COLOURS = {
    ClockState.OK: "#1a7f37",
    ClockState.AT_RISK: "#b35900",
    ClockState.BREACHED: "#c62828",
    ClockState.PAUSED: "#57606a",
    ClockState.MET: "#1a7f37",
}


class BusinessCalendarForm(forms.ModelForm):
    class Meta:
        model = BusinessCalendar
        fields = ["organization", "name", "timezone", "always_open", "hours", "holidays"]
        help_texts = {
            "hours": "[[weekday 0=Monday, start minute, end minute], ...]; [[0, 480, 1080]] is Monday 08:00-18:00.",
            "holidays": '["YYYY-MM-DD", ...]',
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        probe = BusinessCalendar(
            timezone=data.get("timezone", ""), hours=data.get("hours") or [], holidays=data.get("holidays") or []
        )
        try:
            probe.as_calendar()
        except (ValueError, TypeError) as bad:
            raise ValidationError(f"The hours, holidays or time zone are not valid: {bad}") from None
        return data


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    form = BusinessCalendarForm
    list_display = ["name", "organization", "timezone", "always_open"]
    list_filter = ["always_open", "timezone"]
    search_fields = ["name", "organization__name"]
    list_select_related = ["organization"]


def targets_errors(targets: Any) -> list[str]:
    if not isinstance(targets, dict) or not targets:
        return ['Targets must be an object such as {"P1": {"first_response": 60, "resolution": 240}}.']
    errors = []
    for priority, row in targets.items():
        if priority not in sla.Priority.__members__:
            errors.append(f"{priority}: not a priority (P1 to P4).")
            continue
        minutes = [row.get(key) if isinstance(row, dict) else None for key in ("first_response", "resolution")]
        if not all(isinstance(value, int) and not isinstance(value, bool) and value > 0 for value in minutes):
            errors.append(f"{priority}: first_response and resolution must be whole minutes above zero.")
    return errors


class SlaPolicyForm(forms.ModelForm):
    class Meta:
        model = SlaPolicy
        fields = ["name", "tier", "organization", "calendar", "targets", "at_risk_ratio", "active"]
        help_texts = {"targets": '{"P1": {"first_response": minutes, "resolution": minutes, "always_on": false}, ...}'}

    def clean_targets(self) -> Any:
        targets = self.cleaned_data.get("targets")
        errors = targets_errors(targets)
        if errors:
            raise ValidationError(errors)
        return targets


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    form = SlaPolicyForm
    list_display = ["name", "tier", "organization", "calendar", "at_risk_ratio", "active"]
    list_filter = ["tier", "active"]
    search_fields = ["name", "organization__name"]
    list_select_related = ["organization", "calendar"]


@admin.register(Technician)
class TechnicianAdmin(admin.ModelAdmin):
    list_display = ["user", "skills", "shift", "active", "last_assigned_at"]
    list_filter = ["active"]
    search_fields = ["user__email", "user__full_name"]
    list_select_related = ["user", "shift"]
    autocomplete_fields = ["user"]


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ["title", "organization"]
    search_fields = ["title", "body"]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CommentInline(ReadOnlyInline):
    model = Comment
    fields = readonly_fields = ("created_at", "author_email", "internal", "by_staff", "body")


class TimeEntryInline(ReadOnlyInline):
    model = TimeEntry
    fields = readonly_fields = ("worked_on", "technician", "minutes", "billable", "note")


class ActivityInline(ReadOnlyInline):
    model = TicketActivity
    fields = readonly_fields = ("created_at", "kind", "message", "actor")


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = [
        "reference_label",
        "subject",
        "organization",
        "status",
        "priority",
        "assignee",
        "first_response_badge",
        "resolution_badge",
        "resolution_due",
        "created_at",
    ]
    list_filter = ["status", "priority", "resolution_state", "first_response_state", "channel", "organization"]
    search_fields = ["subject", "description", "requester_email"]
    list_select_related = ["organization", "assignee"]
    date_hierarchy = "created_at"
    inlines = [CommentInline, TimeEntryInline, ActivityInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Ticket._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Ticket", ordering="number")
    def reference_label(self, ticket: Ticket) -> str:
        return ticket.reference

    def _badge(self, state: str) -> str:
        return format_html(
            '<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px">{}</span>',
            STATE_COLOURS.get(ClockState(state), "#57606a"),
            ClockState(state).label,
        )

    @admin.display(description="First response", ordering="first_response_state")
    def first_response_badge(self, ticket: Ticket) -> str:
        return self._badge(ticket.first_response_state)

    @admin.display(description="Resolution", ordering="resolution_state")
    def resolution_badge(self, ticket: Ticket) -> str:
        return self._badge(ticket.resolution_state)
