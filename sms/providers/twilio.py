"""The real SMS provider: Twilio, through its official SDK (``twilio.rest.Client``).

Every request has a timeout, and nothing is retried here: Twilio has no idempotency key for sending a message, so a
repeated POST can text the person twice. The caller retries, after asking ``find`` whether the first one went out.
Every SDK and network error becomes a ``ProviderError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from sms.providers.base import MessageState, OutboundMessage, ProviderError

DEFAULT_TIMEOUT = 10.0  # seconds, per request
# Messages read per listing when reconciling; a sender and recipient rarely exchange more than this in a day.
FIND_LIMIT = 50
# Twilio prefixes every body sent from a trial account with this, and stores (and lists) the prefixed body.
TRIAL_PREFIX = "Sent from your Twilio trial account - "


class TwilioProvider:
    name = "twilio"

    def __init__(self, *, client: Any = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._client: Any = client or Client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            http_client=TwilioHttpClient(timeout=timeout),
        )

    def send(self, message: OutboundMessage) -> MessageState:
        params: dict[str, Any] = {"to": message.to, "from_": message.from_, "body": message.body}
        if message.status_callback:
            params["status_callback"] = message.status_callback
        with _provider_errors():
            created = self._client.messages.create(**params)
        return _state(created)

    def fetch(self, sid: str) -> MessageState:
        with _provider_errors():
            fetched = self._client.messages(sid).fetch()
        return _state(fetched)

    def find(self, *, to: str, from_: str, body: str, sent_after: datetime) -> MessageState | None:
        if sent_after.tzinfo is None:
            raise ValueError("sent_after must be timezone-aware")
        # Twilio's timestamps are whole seconds (truncated): compared to the exact time, a message created in the
        # same second as sent_after would look older and be missed.
        since = sent_after.astimezone(UTC).replace(microsecond=0)
        with _provider_errors():
            # Twilio filters on the date only (YYYY-MM-DD, UTC), so the time of day is checked here.
            listed = self._client.messages.list(
                to=to, from_=from_, date_sent_after=since.date().isoformat(), limit=FIND_LIMIT
            )
            found = _earliest_match(listed, body=body, since=since)
            if found is None:
                # A message still waiting in Twilio's queue has no date_sent yet, so a filter on it may leave the
                # message out; the newest messages between the two numbers, unfiltered, include it.
                recent = self._client.messages.list(to=to, from_=from_, limit=FIND_LIMIT)
                found = _earliest_match(recent, body=body, since=since)
        return None if found is None else _state(found)


def _earliest_match(messages: Iterable[Any], *, body: str, since: datetime) -> Any | None:
    """The first message Twilio created on or after ``since`` with exactly ``body`` (a duplicate, if a retry already
    sent one, is the later of the two)."""
    matches = []
    for message in messages:
        if message.body not in (body, TRIAL_PREFIX + body):
            continue
        created = message.date_created or message.date_sent
        # A message without any timestamp cannot be ruled out; treat it as recent rather than send twice.
        if isinstance(created, datetime) and created < since:
            continue
        matches.append(message)
    if not matches:
        return None
    return min(matches, key=lambda m: m.date_created if isinstance(m.date_created, datetime) else since)


def _state(message: Any) -> MessageState:
    """A Twilio ``MessageInstance`` as plain values."""
    sent_at = message.date_sent
    return MessageState(
        sid=str(message.sid),
        status=str(message.status or ""),
        to=str(message.to or ""),
        from_=str(message.from_ or ""),
        body=str(message.body or ""),
        error_code=str(message.error_code) if message.error_code not in (None, "", 0) else None,
        price=_price(message.price),
        price_unit=str(message.price_unit) if message.price_unit else None,
        sent_at=sent_at if isinstance(sent_at, datetime) else None,
    )


def _price(value: Any) -> Decimal | None:
    # Twilio reports charges as negative strings ("-0.00790") and null until the carrier has priced the message.
    if value in (None, ""):
        return None
    try:
        return abs(Decimal(str(value)))
    except InvalidOperation:
        return None


@contextmanager
def _provider_errors() -> Iterator[None]:
    try:
        yield
    except (TwilioException, requests.RequestException) as exc:
        raise _provider_error(exc) from exc


def _provider_error(exc: Exception) -> ProviderError:
    if isinstance(exc, requests.RequestException):
        # Timeouts and dropped connections may pass; a malformed URL or header (also a ValueError) never will.
        return ProviderError(
            f"Twilio could not be reached ({type(exc).__name__})", retryable=not isinstance(exc, ValueError)
        )
    status, code, detail = _error_parts(exc)
    # No status: the SDK could not read Twilio's answer, which is as passing as a dropped connection.
    retryable = status is None or status == 429 or status >= 500
    # Without an error code of its own, the SDK repeats the HTTP status as the code: that is not Twilio's code.
    twilio_code = str(code) if code and code != status else None
    context = ", ".join(
        ([f"HTTP {status}"] if status is not None else []) + ([f"code {twilio_code}"] if twilio_code else [])
    )
    message = f"Twilio: {' '.join(detail.split()) or 'no message'}" + (f" ({context})" if context else "")
    return ProviderError(message[:500], retryable=retryable, code=twilio_code)


def _error_parts(exc: Exception) -> tuple[int | None, Any, str]:
    """HTTP status, Twilio error code and message of an SDK error, whichever form the SDK raised it in."""
    if isinstance(exc, TwilioRestException):
        return _int(exc.status), exc.code, str(exc.msg or "")
    if isinstance(exc, TwilioServiceException):  # RFC 9457 problem details
        return _int(exc.status), exc.code, str(exc.detail or exc.title or "")
    # A failed listing raises a bare TwilioException carrying the HTTP response.
    response = exc.args[1] if len(exc.args) > 1 else None
    if response is None or not hasattr(response, "status_code"):
        return None, None, str(exc.args[0] if exc.args else exc)
    try:
        payload = json.loads(response.text)
    except (TypeError, ValueError):
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    return _int(response.status_code), payload.get("code"), str(payload.get("message") or exc.args[0])


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
