"""QuickBooks Online in the staff admin: the connection (its state, company, token expiry, last error and any pause
QuickBooks asked for, with buttons to connect, reconnect and disconnect; never its tokens) and the sync rows (filtered
by state and kind, with why a row failed, and the actions "Retry now" and "Push again")."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from integrations.quickbooks.connection import connection_live, connection_settings_update
from integrations.quickbooks.models import ConnectionStatus, QboConnection, QboSync, SyncKind, SyncState
from integrations.quickbooks.rows import syncs_again

SHOWN_FIELDS = ["realm_id", "status", "access_expires_at", "refresh_expires_at", "last_error", "last_error_at",
                "paused_until", "payments_pulled_through", "connected_by", "connected_at",
                "disconnected_at"]  # fmt: skip


@admin.register(QboConnection)
class QboConnectionAdmin(admin.ModelAdmin):
    list_display = ["realm_id", "status", "access_expires_at", "refresh_expires_at", "last_error", "connected_by",
                    "connected_at", "disconnected_at"]  # fmt: skip
    list_filter = ["status"]
    list_select_related = ["connected_by"]
    fields = [*SHOWN_FIELDS[:2], "default_item_id", "tax_item_id", "refund_account_id", *SHOWN_FIELDS[2:]]
    readonly_fields = SHOWN_FIELDS
    change_list_template = "admin/quickbooks/qboconnection/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a connection is made by connecting QuickBooks

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and obj.status == ConnectionStatus.DISCONNECTED:
            return [*SHOWN_FIELDS, "default_item_id", "tax_item_id", "refund_account_id"]
        return SHOWN_FIELDS

    def save_model(self, request: HttpRequest, obj: QboConnection, form: Any, change: bool) -> None:
        connection_settings_update(connection=QboConnection.objects.get(pk=obj.pk), default_item_id=obj.default_item_id,
                                   tax_item_id=obj.tax_item_id, refund_account_id=obj.refund_account_id,
                                   actor=request.user)  # type: ignore[arg-type]  # fmt: skip

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        live = connection_live()
        context = {
            "live_connection": live,
            "needs_reconnect": live is not None and live.status == ConnectionStatus.NEEDS_RECONNECT,
            "can_connect": request.user.has_perm("quickbooks.change_qboconnection"),
            "connect_url": reverse("staff-quickbooks-connect"),
            "disconnect_url": reverse("staff-quickbooks-disconnect"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)


def _amount(refund: str) -> str:
    """What a refund row gave back, from its ``object_id``'s "<refunded so far>:<this refund>" in cents."""
    cents = refund.rpartition(":")[2]
    return f"{int(cents) / 100:.2f}" if cents.isdigit() else "?"


def _queue(ids: list[int]) -> None:
    from integrations.quickbooks.tasks import run_syncs

    if ids:
        transaction.on_commit(lambda: run_syncs.delay(ids))


@admin.register(QboSync)
class QboSyncAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "organization", "keel_object", "qbo_id", "state", "attempts",
                    "next_attempt_at", "synced_at", "error"]  # fmt: skip
    list_filter = ["state", "kind"]
    search_fields = ["object_id", "qbo_id", "organization__name"]
    list_select_related = ["organization"]
    readonly_fields = ["kind", "organization", "object_id", "qbo_id", "state", "attempts", "next_attempt_at",
                       "claimed_at", "last_error", "synced_at", "created_at", "updated_at"]  # fmt: skip
    actions = ["retry_now", "push_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Keel object")
    def keel_object(self, sync: QboSync) -> str:
        routes: dict[str, str] = {
            SyncKind.CUSTOMER: "admin:tenancy_organization_change",
            SyncKind.INVOICE: "admin:billing_invoice_change",
        }
        if sync.kind in routes:
            return format_html('<a href="{}">{}</a>', reverse(routes[sync.kind], args=[sync.object_id]), sync.object_id)
        if sync.kind in (SyncKind.RECEIPT, SyncKind.REFUND):
            attempt, _, rest = sync.object_id.partition(":")
            link = reverse("admin:billing_paymentattempt_change", args=[attempt])
            if sync.kind == SyncKind.RECEIPT:
                return format_html('payment <a href="{}">{}</a>', link, attempt)
            return format_html('refund of {} from payment <a href="{}">{}</a>', _amount(rest), link, attempt)
        return f"QuickBooks payment {sync.qbo_id}"

    @admin.display(description="Last error")
    def error(self, sync: QboSync) -> str:
        return sync.last_error[:120]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        live = connection_live()
        if live is None:
            messages.warning(request, "QuickBooks is not connected: nothing is pushed or pulled.")
        elif live.status == ConnectionStatus.NEEDS_RECONNECT:
            messages.warning(request, "QuickBooks needs reconnecting: these rows wait until it is connected again.")
        elif live.paused_until is not None and live.paused_until > timezone.now():
            until = date_format(timezone.localtime(live.paused_until), "DATETIME_FORMAT")
            messages.warning(
                request, f"QuickBooks asked Keel to slow down: nothing is pushed or pulled before {until}."
            )
        return super().changelist_view(request, extra_context)

    @admin.action(description="Retry now (failed or waiting rows)", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[QboSync]) -> None:
        waiting = (SyncState.PENDING, SyncState.RETRYING, SyncState.FAILED)
        ids = syncs_again(sync_ids=queryset.values_list("pk", flat=True), states=waiting)
        _queue(ids)
        self.message_user(request, f"Queued {len(ids)} rows.", messages.SUCCESS)

    @admin.action(description="Push again (update QuickBooks from Keel)", permissions=["change"])
    def push_again(self, request: HttpRequest, queryset: QuerySet[QboSync]) -> None:
        ids = syncs_again(sync_ids=queryset.values_list("pk", flat=True))
        _queue(ids)
        self.message_user(request, f"Queued {len(ids)} rows.", messages.SUCCESS)
