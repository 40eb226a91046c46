"""Staff screens for the service desk's set-up: calendars, SLA policies, technicians and canned responses. The
technicians' working screens for tickets (list, bulk actions, the ticket page) are in ``tickets.admin_tickets``,
registered by importing it here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from tickets import sla
from tickets.admin_tickets import TicketAdmin
from tickets.models import BusinessCalendar, CannedResponse, SlaPolicy, Technician

# Registered where it is defined: the technicians' working screens have their own modules.
__all__ = ["TicketAdmin"]


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
    list_filter = [("organization", admin.EmptyFieldListFilter)]
    search_fields = ["title", "body"]
    list_select_related = ["organization"]


from tickets import admin_workflows  # noqa: E402,F401
