"""Connecting the MSP's QuickBooks company, keeping its tokens fresh, and disconnecting it.

Tokens are stored encrypted. An access token lasts an hour: it is refreshed before a call when it has less than
``REFRESH_MARGIN`` left, and once more when QuickBooks answers 401. Each refresh may rotate the refresh token, and
the old one is then spent, so refreshing holds the connection's row lock: a second worker waits, then finds the new
token and uses it instead of spending the old refresh token again. That is why this one provider call happens inside
a transaction (with the adapter's timeouts bounding the wait). A refresh token Intuit no longer accepts
(``invalid_grant``: expired after about 100 days unused, or access revoked in QuickBooks) marks the connection
"needs reconnecting": syncing stops until staff connect again, and the admin says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.quickbooks.models import ConnectionStatus, QboConnection, QboSync, SyncKind
from integrations.quickbooks.providers import get_provider
from integrations.quickbooks.providers.base import (
    INVALID_GRANT,
    QboError,
    QuickBooksProvider,
    ReconnectNeededError,
    Tokens,
)
from integrations.quickbooks.rows import refunds_waiting, run_after_commit
from tenancy.audit import audit_record
from tenancy.crypto import decrypt, encrypt
from tenancy.models import Organization, User

logger = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)
RECONNECT = "QuickBooks needs reconnecting: its access expired or was revoked."


def connection_live() -> QboConnection | None:
    """The connection that is connected or waiting to be reconnected, if any."""
    return QboConnection.objects.exclude(status=ConnectionStatus.DISCONNECTED).first()


def connection_usable() -> QboConnection | None:
    return QboConnection.objects.filter(status=ConnectionStatus.CONNECTED).first()


def _store(connection: QboConnection, tokens: Tokens, now: datetime) -> list[str]:
    connection.access_token_encrypted = encrypt(tokens.access_token)
    connection.access_expires_at = now + timedelta(seconds=tokens.expires_in)
    fields = ["access_token_encrypted", "access_expires_at", "updated_at"]
    if tokens.refresh_token:  # Intuit may answer a refresh without rotating the refresh token
        connection.refresh_token_encrypted = encrypt(tokens.refresh_token)
        connection.refresh_expires_at = (
            now + timedelta(seconds=tokens.refresh_expires_in) if tokens.refresh_expires_in else None
        )
        fields += ["refresh_token_encrypted", "refresh_expires_at"]
    return fields


def _retire(connection: QboConnection, now: datetime) -> None:
    connection.status = ConnectionStatus.DISCONNECTED
    connection.disconnected_at = now
    connection.access_token_encrypted = connection.refresh_token_encrypted = ""
    connection.access_expires_at = connection.refresh_expires_at = None
    connection.save()


def connection_connect(*, realm_id: str, tokens: Tokens, actor: User | None, ip: str | None = None,
                       now: datetime | None = None) -> QboConnection:  # fmt: skip
    """Store the company staff just connected. Connecting the live company again replaces its tokens. Another company
    replaces the live connection; and when it is not the company Keel last pushed to, the ids Keel kept of that
    company's customers and invoices are forgotten (they would name other records in the new books), so what staff
    push again is created afresh."""
    now = now or timezone.now()
    with transaction.atomic():
        live = QboConnection.objects.select_for_update().exclude(status=ConnectionStatus.DISCONNECTED).first()
        if live is not None and live.realm_id == realm_id:
            fields = _store(live, tokens, now)
            live.status = ConnectionStatus.CONNECTED
            live.connected_by, live.connected_at, live.last_error, live.last_error_at = actor, now, "", None
            live.save(update_fields=[*fields, "status", "connected_by", "connected_at", "last_error", "last_error_at"])
            audit_record(action="quickbooks.reconnected", actor=actor, target=live, changes={"realm_id": realm_id},
                         ip=ip)  # fmt: skip
            return live
        previous = QboConnection.objects.order_by("-connected_at", "-pk").first()
        if live is not None:
            _retire(live, now)
        # The same books connected again carry on where they stopped: their items, and payments since then.
        carried = previous if previous is not None and previous.realm_id == realm_id else None
        connection = QboConnection(
            realm_id=realm_id,
            connected_by=actor,
            connected_at=now,
            default_item_id=carried.default_item_id if carried else "",
            tax_item_id=carried.tax_item_id if carried else "",
            payments_pulled_through=carried.payments_pulled_through if carried else now,
        )
        _store(connection, tokens, now)
        connection.save()
        changes: dict[str, Any] = {"realm_id": realm_id}
        if previous is not None and carried is None:
            changes["customers_forgotten"] = Organization.objects.exclude(qbo_customer_id="").update(qbo_customer_id="")
            pushed = QboSync.objects.filter(kind__in=[SyncKind.CUSTOMER, SyncKind.INVOICE]).exclude(qbo_id="")
            changes["ids_forgotten"] = pushed.update(qbo_id="")
        audit_record(action="quickbooks.connected", actor=actor, target=connection, changes=changes, ip=ip)
    return connection


def connection_disconnect(*, actor: User | None, ip: str | None = None, now: datetime | None = None) -> bool:
    """Stop syncing and forget the tokens; Intuit is then asked to revoke Keel's access (best effort: the connection
    is gone from Keel either way). False when nothing was connected."""
    now = now or timezone.now()
    with transaction.atomic():
        live = QboConnection.objects.select_for_update().exclude(status=ConnectionStatus.DISCONNECTED).first()
        if live is None:
            return False
        refresh_token = decrypt(live.refresh_token_encrypted) if live.refresh_token_encrypted else ""
        _retire(live, now)
        audit_record(action="quickbooks.disconnected", actor=actor, target=live, changes={"realm_id": live.realm_id},
                     ip=ip)  # fmt: skip
    if refresh_token:
        try:
            get_provider().revoke(token=refresh_token)
        except QboError as error:
            logger.warning("QuickBooks access was not revoked at Intuit: %s", error.message)
    return True


def connection_settings_update(*, connection: QboConnection, default_item_id: str, tax_item_id: str,
                               refund_account_id: str, actor: User | None) -> QboConnection:  # fmt: skip
    """Staff choose the QuickBooks items invoice lines and tax lines are booked to, and the account refunds are paid
    from; the refunds that waited for that account go once it is chosen."""
    chosen = (("default_item_id", default_item_id), ("tax_item_id", tax_item_id),
              ("refund_account_id", refund_account_id))  # fmt: skip
    changes = {
        field: [getattr(connection, field), value.strip()]
        for field, value in chosen
        if getattr(connection, field) != value.strip()
    }
    if changes:
        QboConnection.objects.filter(pk=connection.pk).update(**{field: new for field, (_, new) in changes.items()})
        audit_record(action="quickbooks.settings_changed", actor=actor, target=connection, changes=changes)
    if changes.get("refund_account_id", ["", ""])[1]:
        run_after_commit(refunds_waiting())
    connection.refresh_from_db()
    return connection


def token_refresh(*, connection_id: int, stale: str | None = None, now: datetime | None = None) -> str:
    """A fresh access token, refreshing under the connection's lock. ``stale``: the token QuickBooks just refused
    (refresh unless another worker already replaced it); None: refresh unless the token has the margin left."""
    now = now or timezone.now()
    refused: QboError | None = None
    with transaction.atomic():
        connection = QboConnection.objects.select_for_update().filter(pk=connection_id).first()
        if connection is None or connection.status != ConnectionStatus.CONNECTED:
            raise ReconnectNeededError(RECONNECT)
        current = decrypt(connection.access_token_encrypted)
        if stale is None and connection.access_expires_at and connection.access_expires_at - now > REFRESH_MARGIN:
            return current  # another worker refreshed while this one waited for the lock
        if stale is not None and current != stale:
            return current
        try:
            tokens = get_provider().refresh(refresh_token=decrypt(connection.refresh_token_encrypted))
        except QboError as error:
            if error.code != INVALID_GRANT:
                raise
            refused = error
            connection.status = ConnectionStatus.NEEDS_RECONNECT
            connection.last_error, connection.last_error_at = RECONNECT, now
            connection.save(update_fields=["status", "last_error", "last_error_at", "updated_at"])
            audit_record(action="quickbooks.reconnect_needed", target=connection, changes={"error": error.code})
        else:
            connection.save(update_fields=_store(connection, tokens, now))
            return tokens.access_token
    raise ReconnectNeededError(RECONNECT) from refused


@dataclass(frozen=True)
class ConnectionTokens:
    """A connection's tokens as the provider asks for them (``providers.base.TokenSource``)."""

    connection_id: int
    realm_id: str

    def access_token(self) -> str:
        row = (
            QboConnection.objects.filter(pk=self.connection_id)
            .values("status", "access_token_encrypted", "access_expires_at")
            .first()
        )
        if row is None or row["status"] != ConnectionStatus.CONNECTED:
            raise ReconnectNeededError(RECONNECT)
        expires_at = row["access_expires_at"]
        if expires_at is None or expires_at - timezone.now() <= REFRESH_MARGIN:
            return token_refresh(connection_id=self.connection_id)
        return decrypt(row["access_token_encrypted"])

    def refreshed(self, stale: str) -> str:
        return token_refresh(connection_id=self.connection_id, stale=stale)


@dataclass(frozen=True)
class Books:
    """The connected company: the provider, with the connection's tokens."""

    connection: QboConnection
    provider: QuickBooksProvider
    auth: ConnectionTokens


def books_for(connection: QboConnection) -> Books:
    return Books(connection, get_provider(), ConnectionTokens(connection.pk, connection.realm_id))
