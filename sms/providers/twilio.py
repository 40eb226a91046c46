"""The real SMS provider: Twilio, through its official SDK (``twilio.rest.Client``).

Every request has a timeout, and nothing is retried here: Twilio has no idempotency key for sending a message, so a
repeated POST can text the person twice. The caller retries, after asking ``find`` whether the first one went out.
Every SDK and network error becomes a ``ProviderError``; a refusal's ``Retry-After`` header becomes its
``retry_after``, and an HTTP 429 makes it ``rate_limited``.

The SDK's ``TwilioRestException`` keeps the status and body of Twilio's answer but not its headers, so the adapter's
HTTP client (:class:`AnswerKeepingHttpClient`) keeps each thread's last answer, and an error's headers are read there.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
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

from msp.retry_after import retry_after_header
from sms.providers.base import MessageState, OutboundMessage, ProviderError

DEFAULT_TIMEOUT = 10.0  # seconds, per request
# Messages read per listing when reconciling; a sender and recipient rarely exchange more than this in a day.
FIND_LIMIT = 50
# Twilio prefixes every body sent from a trial account with this, and stores (and lists) the prefixed body.
TRIAL_PREFIX = "Sent from your Twilio trial account - "


class AnswerKeepingHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, keeping the last answer each thread received, so that the headers of an answer the SDK
    turned into an exception can still be read. (The SDK's own ``_test_only_last_response`` is meant for its tests,
    and one adapter serves every thread of a process.)"""

    def __init__(self, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._answers = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self._answers.last = None
        answer = super().request(*args, **kwargs)
        self._answers.last = answer
        return answer

    def last_answer(self) -> Any | None:
        """The last answer this thread received (a ``twilio.http.response.Response``), None after a request that got
        none (a timeout)."""
        return getattr(self._answers, "last", None)


class TwilioProvider:
    name = "twilio"

    def __init__(self, *, client: Any = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._client: Any = client or Client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            http_client=AnswerKeepingHttpClient(timeout=timeout),
        )

    def send(self, message: OutboundMessage) -> MessageState:
        params: dict[str, Any] = {"to": message.to, "from_": message.from_, "body": message.body}
        if message.status_callback:
            params["status_callback"] = message.status_callback
        with self._provider_errors():
            created = self._client.messages.create(**params)
        return _state(created)

    def fetch(self, sid: str) -> MessageState:
        with self._provider_errors():
            fetched = self._client.messages(sid).fetch()
        return _state(fetched)

    def find(self, *, to: str, from_: str, body: str, sent_after: datetime) -> MessageState | None:
        if sent_after.tzinfo is None:
            raise ValueError("sent_after must be timezone-aware")
        # Twilio's timestamps are whole seconds (truncated): compared to the exact time, a message created in the
        # same second as sent_after would look older and be missed.
        since = sent_after.astimezone(UTC).replace(microsecond=0)
        with self._provider_errors():
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

    @contextmanager
    def _provider_errors(self) -> Iterator[None]:
        try:
            yield
        except (TwilioException, requests.RequestException) as exc:
            raise _provider_error(exc, _last_answer(self._client)) from exc


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


def _last_answer(client: Any) -> Any | None:
    http_client = getattr(client, "http_client", None)
    return http_client.last_answer() if isinstance(http_client, AnswerKeepingHttpClient) else None


def _provider_error(exc: Exception, last_answer: Any | None = None) -> ProviderError:
    """``exc`` as a ``ProviderError``; ``last_answer`` is the last HTTP answer of the thread, whose headers are read
    when it is the answer ``exc`` was made of."""
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
    return ProviderError(
        message[:500],
        retryable=retryable,
        code=twilio_code,
        retry_after=retry_after_header(_headers(exc, status, last_answer)) if retryable else None,
        rate_limited=status == 429,
    )


def _headers(exc: Exception, status: int | None, last_answer: Any | None) -> Mapping[str, str] | None:
    """The headers of the answer behind an SDK error: carried by a failed listing's error itself; for the errors that
    leave them out, those of the thread's last answer when its status is the error's."""
    carried = exc.args[1] if len(exc.args) > 1 else None
    answer = carried if hasattr(carried, "status_code") else last_answer
    if answer is None or status is None or _int(getattr(answer, "status_code", None)) != status:
        return None
    headers = getattr(answer, "headers", None)
    return headers if isinstance(headers, Mapping) else None


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
