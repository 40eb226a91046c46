"""What Keel asks of QuickBooks Online, in plain values.

Two halves: Intuit's OAuth 2 server (the authorization page, the token endpoint that exchanges a code and refreshes,
and revocation), and the accounting API of one company (``realm``): read an entity, save one (create, or a sparse
update when the body carries ``Id`` and ``SyncToken``), and query a kind of entity by exact field values. Entities
are QuickBooks' own JSON objects (``{"Id": "58", "SyncToken": "0", "DisplayName": ...}``) with numbers as ``Decimal``.

API calls take a ``TokenSource``: it hands out a current access token and, when QuickBooks answers 401, a refreshed
one, so an adapter retries a call once with a new token without knowing where tokens are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

SCOPE = "com.intuit.quickbooks.accounting"
# QuickBooks' fault codes Keel acts on.
DUPLICATE_NAME = "6240"  # a customer, vendor or employee already has this DisplayName
INVALID_GRANT = "invalid_grant"  # the token endpoint's answer to a refresh token that expired or was revoked

Entity = dict[str, Any]


class QboError(Exception):
    """QuickBooks refused the request or could not be reached; ``message`` is safe to show to staff.

    ``retryable`` says the same request may succeed later (rate limit, outage, timeout). ``code`` is QuickBooks'
    fault code (``"6240"``) or the token endpoint's ``error`` (``"invalid_grant"``) when it gave one. ``retry_after``
    is how long QuickBooks asked Keel to wait before asking again (its ``Retry-After`` on a 429 or 503), if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        code: str = "",
        status: int | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.status = status
        self.retry_after = retry_after

    @property
    def slow_down(self) -> bool:
        """QuickBooks asked Keel to hold off (429 too many requests, or a wait it named): the next call to the same
        company would be refused too."""
        return self.status == 429 or self.retry_after is not None


class ReconnectNeededError(QboError):
    """The connection cannot be used until staff connect QuickBooks again (its refresh token expired or was
    revoked, or it was disconnected); nothing is retried until then."""


class SettingNeededError(QboError):
    """A row cannot be pushed until staff choose something on the connection (the account refunds are paid from);
    it waits, with no attempt spent, and goes once it is chosen."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lasts (an hour)
    refresh_expires_in: int  # seconds the refresh token lasts (about 100 days); each refresh may rotate it


class TokenSource(Protocol):
    @property
    def realm_id(self) -> str: ...

    def access_token(self) -> str:
        """A token good for a few minutes more (refreshed first when it is about to expire)."""
        ...

    def refreshed(self, stale: str) -> str:
        """A token newer than ``stale``, which QuickBooks has just refused. Raises ``ReconnectNeededError``."""
        ...


class QuickBooksProvider(Protocol):
    name: str

    def authorize_url(self, *, state: str, redirect_uri: str) -> str:
        """Where to send the staff member to grant Keel access to their company."""
        ...

    def exchange_code(self, *, code: str, redirect_uri: str) -> Tokens:
        """Tokens for the code the authorization page returned. Raises ``QboError``."""
        ...

    def refresh(self, *, refresh_token: str) -> Tokens:
        """New tokens; the refresh token in them replaces the one given. ``QboError`` with code ``invalid_grant``
        when the refresh token is no longer accepted."""
        ...

    def revoke(self, *, token: str) -> None:
        """Withdraw Keel's access (a refresh token revokes the whole grant). Raises ``QboError``."""
        ...

    def read(self, auth: TokenSource, entity: str, entity_id: str) -> Entity:
        """One entity (``entity`` in lower case as in the API path: ``customer``, ``invoice``, ``payment``)."""
        ...

    def save(self, auth: TokenSource, entity: str, body: Entity) -> Entity:
        """Create the entity, or update it when ``body`` has ``Id`` and ``SyncToken``; returns it as saved."""
        ...

    def void(self, auth: TokenSource, entity: str, entity_id: str, sync_token: str) -> Entity:
        """Void a transaction (``invoice``): it stays, numbered, with its amounts zeroed. Raises ``QboError``."""
        ...

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
        """Entities of a kind (``Customer``, ``Invoice``, ``Item``, ``Account``, ``Payment``) whose fields equal
        ``equals`` and, with ``updated_since``, changed at or after it (oldest change first); ``start`` is
        1-based, ``limit`` at most 1000."""
        ...
