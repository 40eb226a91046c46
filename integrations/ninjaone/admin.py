"""Staff screens for NinjaOne.

Settings: one row per organization (created by its first alert or sync, or here): whether an alert's ticket is
resolved when NinjaOne resets the alert, and where the device sync stands, with the "Sync devices now" action.
The link itself is the organization's NinjaOne organization id, on the organization's own page.

What happened is read-only: alerts (with their ticket), devices as of the last sync, and the webhook deliveries
Keel stored (including those for NinjaOne organizations no organization is linked to yet).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from integrations.ninjaone.base import ProviderError
from integrations.ninjaone.models import Alert, Device, NinjaOneSettings, WebhookEvent
from integrations.ninjaone.services.devices import devices_sync
from tenancy.errors import ServiceValidationError
from tenancy.models import Organization

SYNC_PERMISSION = "ninjaone.change_ninjaonesettings"


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record of what NinjaOne said and what Keel did: staff read it; nobody adds or changes it here."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


def _sync(model_admin: admin.ModelAdmin, request: HttpRequest, organizations: QuerySet[Organization]) -> None:
    chosen = list(organizations.order_by("name"))
    for position, organization in enumerate(chosen):
        try:
            result = devices_sync(organization=organization)
        except ServiceValidationError:
            model_admin.message_user(request, f"{organization}: not linked to NinjaOne (set its NinjaOne "
                                              "organization id first).", messages.WARNING)  # fmt: skip
        except ProviderError as error:
            said = str(error) if error.rate_limited else f"NinjaOne did not answer: {error}"
            model_admin.message_user(request, f"{organization}: {said}", messages.ERROR)
            if error.rate_limited and position + 1 < len(chosen):
                rest = ", ".join(str(other) for other in chosen[position + 1 :])
                model_admin.message_user(request, f"Not synced, as NinjaOne asked Keel to slow down: {rest}.",
                                         messages.WARNING)  # fmt: skip
                return
        else:
            level = messages.WARNING if result.line_problems else messages.SUCCESS
            model_admin.message_user(request, f"{organization}: {result.summary()}.", level)


@admin.register(NinjaOneSettings)
class NinjaOneSettingsAdmin(admin.ModelAdmin):
    list_display = ["organization", "ninjaone_id", "resolve_on_reset", "device_count", "last_synced_at", "sync_error"]
    list_filter = ["resolve_on_reset"]
    search_fields = ["organization__name", "organization__slug", "organization__ninjaone_org_id"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    actions = ["sync_now"]

    def get_readonly_fields(self, request: HttpRequest, obj: NinjaOneSettings | None = None) -> list[str]:
        fixed = ["device_count", "last_synced_at", "last_sync_error", "updated_at"]
        return fixed if obj is None else ["organization", *fixed]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the defaults would come back with the next alert

    @admin.display(description="NinjaOne organization", ordering="organization__ninjaone_org_id")
    def ninjaone_id(self, row: NinjaOneSettings) -> str:
        return row.organization.ninjaone_org_id or "not linked"

    @admin.display(description="Last sync error")
    def sync_error(self, row: NinjaOneSettings) -> str:
        return row.last_sync_error[:80]

    @admin.action(description="Sync devices now", permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[NinjaOneSettings]) -> None:
        _sync(self, request, Organization.objects.filter(pk__in=queryset.values("organization")))


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "organization", "node_class", "os_name", "status", "last_contact_at", "removed_at"]
    list_filter = ["offline", "node_class", ("removed_at", admin.EmptyFieldListFilter), "organization"]
    search_fields = ["display_name", "system_name", "ninja_id", "organization__name", "organization__slug"]
    list_select_related = ["organization"]
    actions = ["sync_now"]

    @admin.display(description="Status", ordering="offline")
    def status(self, device: Device) -> str:
        return device.status_label

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SYNC_PERMISSION)

    @admin.action(description="Sync devices now (the organizations of the selected devices)", permissions=["sync"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        _sync(self, request, Organization.objects.filter(pk__in=queryset.values("organization")))


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "organization", "severity", "state", "ticket_link", "triggered_at", "reset_at"]
    list_filter = ["state", "severity", "organization"]
    search_fields = ["uid", "device_name", "device_id", "condition_name", "message", "organization__name"]
    list_select_related = ["organization", "ticket"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the alert is what stops a repeat delivery from opening a second ticket

    @admin.display(description="Ticket")
    def ticket_link(self, alert: Alert) -> str:
        if alert.ticket is None:
            return "-"
        url = reverse("admin:tickets_ticket_change", args=[alert.ticket.pk])
        return format_html('<a href="{}">{}</a> ({})', url, alert.ticket.reference, alert.ticket.get_status_display())


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "provider_event_id", "organization", "ninjaone_org_id", "status", "outcome",
                    "detail"]  # fmt: skip
    list_filter = ["outcome", "status", "organization"]
    search_fields = ["provider_event_id", "ninjaone_org_id", "detail"]
    list_select_related = ["organization"]
    date_hierarchy = "received_at"
