"""Staff screens for API rate-limit policies, feature flags (with their per-organization overrides) and the reports
organizations have scheduled. Imported by ``tenancy.admin``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from tenancy.audit import client_ip
from tenancy.models import FeatureFlag, FeatureFlagOverride, RatePolicy, ScheduledReport, User
from tenancy.services.reports import report_schedule_update


@admin.register(RatePolicy)
class RatePolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "per_minute", "per_hour", "per_day", "active", "note", "updated_at"]
    list_filter = ["active"]
    search_fields = ["organization__name", "organization__slug", "partner__name", "partner__slug", "note"]
    list_select_related = ["organization", "partner"]
    autocomplete_fields = ["organization", "partner"]
    fields = ["partner", "organization", "per_minute", "per_hour", "per_day", "active", "note"]


class FeatureFlagOverrideInline(admin.TabularInline):
    model = FeatureFlagOverride
    extra = 0
    autocomplete_fields = ["organization"]
    fields = ["organization", "enabled", "note"]


@admin.register(FeatureFlag)
class FeatureFlagAdmin(admin.ModelAdmin):
    list_display = ["key", "percentage", "overrides_count", "description", "updated_at"]
    search_fields = ["key", "description"]
    fields = ["key", "description", "percentage"]
    inlines = [FeatureFlagOverrideInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[FeatureFlag]:
        return super().get_queryset(request).annotate(_overrides=Count("overrides"))

    @admin.display(description="Overrides", ordering="_overrides")
    def overrides_count(self, obj: FeatureFlag) -> int:
        return int(obj._overrides)  # type: ignore[attr-defined]


SCHEDULE_FIELDS = (
    "organization",
    "report",
    "frequency",
    "recipients",
    "created_by",
    "next_run_at",
    "last_run_at",
    "last_period_start",
    "active",
    "created_at",
)


@admin.register(ScheduledReport)
class ScheduledReportAdmin(admin.ModelAdmin):
    """Read-only but for pausing and resuming, which goes through the service (resuming sets the next sending
    afresh, so a paused report does not send the periods it missed)."""

    list_display = ["__str__", "organization", "recipients", "next_run_at", "last_run_at", "active"]
    list_filter = ["report", "frequency", "active"]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["organization"]
    fields = SCHEDULE_FIELDS
    readonly_fields = [name for name in SCHEDULE_FIELDS if name != "active"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # an organization schedules its reports in the portal

    def save_model(self, request: HttpRequest, obj: ScheduledReport, form: forms.ModelForm, change: bool) -> None:
        if change and "active" in form.changed_data:
            report_schedule_update(
                schedule=obj,
                actor=request.user if isinstance(request.user, User) else None,
                active=bool(obj.active),
                ip=client_ip(request),
            )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None
