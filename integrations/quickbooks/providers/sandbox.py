"""The local stand-in for QuickBooks Online: no network, no Intuit account.

Connecting skips Intuit: the authorization page is Keel's own callback, handed a sandbox code and company, so staff
finish connecting without leaving the site. Tokens are random strings that refresh as Intuit's do (the refresh token
rotates; a revoked one is refused with ``invalid_grant``). The company lives in memory, one per process: saved
entities get ids and sync tokens as QuickBooks gives them, a stale sync token is refused, customer names are unique
(fault 6240), queries match exact values, and every call is logged and kept in ``SENT``. ``payment_receive`` records
a customer's payment of a pushed invoice, as a bookkeeper would in QuickBooks, for the next pull to find.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from integrations.quickbooks.providers.base import DUPLICATE_NAME, INVALID_GRANT, Entity, QboError, Tokens, TokenSource

logger = logging.getLogger(__name__)

REALM_ID = "9130350000000001"
CODE_PREFIX = "sandbox-code-"
ACCESS_PREFIX = "sbx-access-"
REFRESH_PREFIX = "sbx-refresh-"
ACCESS_SECONDS = 3600
REFRESH_SECONDS = 100 * 86400
STALE_OBJECT = "5010"
NOT_FOUND = "610"
SENT: list[tuple[str, dict[str, Any]]] = []
SENT_LIMIT = 500
COMPANY: dict[str, dict[str, Entity]] = {}  # entity kind in lower case -> id -> entity
REVOKED: set[str] = set()
_ids = itertools.count(1)
_lock = threading.Lock()


def _record(operation: str, detail: dict[str, Any]) -> None:
    logger.info("sandbox quickbooks: %s %s", operation, detail)
    SENT.append((operation, detail))
    del SENT[:-SENT_LIMIT]


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def reset() -> None:
    """An empty company with the income account and the bank account a new QuickBooks company starts with."""
    with _lock:
        SENT.clear()
        COMPANY.clear()
        REVOKED.clear()
        COMPANY["account"] = {
            "1": {"Id": "1", "Name": "Services", "AccountType": "Income", "SyncToken": "0"},
            "2": {"Id": "2", "Name": "Business Cheque Account", "AccountType": "Bank", "SyncToken": "0"},
        }


reset()


def _field(entity: Entity, name: str) -> str:
    value = entity.get(name)
    if isinstance(value, dict):  # a reference: {"value": "58", "name": "Acme"}
        value = value.get("value")
    return "" if value is None else str(value)


def payment_receive(*, invoice_id: str, amount: Decimal, on: date | None = None) -> Entity:
    """Record in the sandbox company that the customer paid ``amount`` of the invoice."""
    with _lock:
        invoice = COMPANY.get("invoice", {}).get(invoice_id)
        if invoice is None:
            raise QboError(f"Object Not Found: Invoice {invoice_id}", code=NOT_FOUND)
        payment_id = str(next(_ids))
        payment: Entity = {
            "Id": payment_id,
            "SyncToken": "0",
            "TxnDate": (on or datetime.now(UTC).date()).isoformat(),
            "TotalAmt": amount,
            "CustomerRef": invoice.get("CustomerRef"),
            "CurrencyRef": invoice.get("CurrencyRef"),
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}],
            "MetaData": {"CreateTime": _stamp(), "LastUpdatedTime": _stamp()},
        }
        COMPANY.setdefault("payment", {})[payment_id] = payment
    _record("payment.receive", {"invoice": invoice_id, "amount": f"{amount:.2f}"})
    return payment


class SandboxProvider:
    name = "sandbox"

    def authorize_url(self, *, state: str, redirect_uri: str) -> str:
        code = CODE_PREFIX + secrets.token_hex(8)
        return f"{redirect_uri}?{urlencode({'code': code, 'state': state, 'realmId': REALM_ID})}"

    def exchange_code(self, *, code: str, redirect_uri: str) -> Tokens:
        if not code.startswith(CODE_PREFIX):
            raise QboError("Intuit's token endpoint refused: invalid_grant.", code=INVALID_GRANT, status=400)
        _record("token.exchange", {"redirect_uri": redirect_uri})
        return self._new_tokens()

    def refresh(self, *, refresh_token: str) -> Tokens:
        if not refresh_token.startswith(REFRESH_PREFIX) or refresh_token in REVOKED:
            raise QboError("Intuit's token endpoint refused: invalid_grant.", code=INVALID_GRANT, status=400)
        REVOKED.add(refresh_token)  # rotated: the old one is spent
        _record("token.refresh", {})
        return self._new_tokens()

    def revoke(self, *, token: str) -> None:
        REVOKED.add(token)
        _record("token.revoke", {})

    def _new_tokens(self) -> Tokens:
        return Tokens(ACCESS_PREFIX + secrets.token_hex(16), REFRESH_PREFIX + secrets.token_hex(16), ACCESS_SECONDS,
                      REFRESH_SECONDS)  # fmt: skip

    def read(self, auth: TokenSource, entity: str, entity_id: str) -> Entity:
        auth.access_token()
        with _lock:
            found = COMPANY.get(entity.lower(), {}).get(entity_id)
        if found is None:
            raise QboError(f"Object Not Found: {entity} {entity_id}", code=NOT_FOUND, status=400)
        return dict(found)

    def save(self, auth: TokenSource, entity: str, body: Entity) -> Entity:
        auth.access_token()
        kind = entity.lower()
        with _lock:
            rows = COMPANY.setdefault(kind, {})
            current = rows.get(str(body.get("Id") or ""))
            if body.get("Id") and current is None:
                raise QboError(f"Object Not Found: {entity} {body['Id']}", code=NOT_FOUND, status=400)
            if current is not None and str(body.get("SyncToken")) != current["SyncToken"]:
                raise QboError("Stale Object Error: You and another user were working on the same thing.",
                               code=STALE_OBJECT, status=400)  # fmt: skip
            name = body.get("DisplayName")
            if kind == "customer" and any(
                row.get("DisplayName") == name and row is not current for row in rows.values()
            ):
                raise QboError("Duplicate Name Exists Error: The name supplied already exists.",
                               code=DUPLICATE_NAME, status=400)  # fmt: skip
            if current is None:
                saved = {**body, "Id": str(next(_ids)), "SyncToken": "0",
                         "MetaData": {"CreateTime": _stamp(), "LastUpdatedTime": _stamp()}}  # fmt: skip
            else:
                metadata = {**current.get("MetaData", {}), "LastUpdatedTime": _stamp()}
                saved = {**current, **body, "SyncToken": str(int(current["SyncToken"]) + 1), "MetaData": metadata}
            if kind == "invoice":
                saved["TotalAmt"] = sum((Decimal(str(line["Amount"])) for line in saved.get("Line", [])), Decimal(0))
            rows[saved["Id"]] = saved
        _record(f"{kind}.save", {"id": saved["Id"], "sync_token": saved["SyncToken"]})
        return dict(saved)

    def void(self, auth: TokenSource, entity: str, entity_id: str, sync_token: str) -> Entity:
        auth.access_token()
        kind = entity.lower()
        with _lock:
            current = COMPANY.get(kind, {}).get(entity_id)
            if current is None:
                raise QboError(f"Object Not Found: {entity} {entity_id}", code=NOT_FOUND, status=400)
            if sync_token != current["SyncToken"]:
                raise QboError("Stale Object Error: You and another user were working on the same thing.",
                               code=STALE_OBJECT, status=400)  # fmt: skip
            lines = [{**line, "Amount": Decimal(0)} for line in current.get("Line", [])]
            metadata = {**current.get("MetaData", {}), "LastUpdatedTime": _stamp()}
            voided = {**current, "Line": lines, "TotalAmt": Decimal(0), "Balance": Decimal(0), "PrivateNote": "Voided",
                      "SyncToken": str(int(current["SyncToken"]) + 1), "MetaData": metadata}  # fmt: skip
            COMPANY[kind][entity_id] = voided
        _record(f"{kind}.void", {"id": entity_id})
        return dict(voided)

    def query(
        self,
        auth: TokenSource,
        entity: str,
        equals: Mapping[str, str],
        *,
        updated_since: datetime | None = None,
        start: int = 1,
        limit: int = 100,
    ) -> list[Entity]:
        auth.access_token()
        with _lock:
            rows = [dict(row) for row in COMPANY.get(entity.lower(), {}).values()]
        found = [row for row in rows if all(_field(row, name) == value for name, value in equals.items())]
        if updated_since is not None:
            changed = [
                (datetime.fromisoformat(row["MetaData"]["LastUpdatedTime"]), row) for row in found if "MetaData" in row
            ]
            found = [row for when, row in sorted(changed, key=lambda pair: pair[0]) if when >= updated_since]
        return found[start - 1 : start - 1 + limit]
