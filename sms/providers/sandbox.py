"""The local stand-in for Twilio: no network, no credentials.

``send`` keeps the message in this process (shared by every instance, so a test or a local run can see what would
have been sent) and answers as Twilio does: ``queued``, with a new ``SM...`` sid. It refuses what Twilio refuses
before sending, with Twilio's error codes. Each message then has a fate picked from its sid, so it is the same on
every run: most are delivered; about 1 in 12 is undelivered (30003, unreachable handset) or failed (30008, unknown
error). ``callbacks`` gives the status callbacks Twilio would post for that fate, for the app to sign and post
through its real webhook; ``fetch`` and ``find`` answer with the fate already reached, as if the carrier were
instant.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

from sms.providers.base import MessageState, OutboundMessage, ProviderError

logger = logging.getLogger(__name__)

FAILURE_ONE_IN = 12
UNDELIVERED_CODE = "30003"  # Twilio: unreachable destination handset
FAILED_CODE = "30008"  # Twilio: unknown error
# What the sandbox charges per delivered message, whatever its length (it does not count segments).
PRICE = Decimal("0.0079")
PRICE_UNIT = "USD"
API_VERSION = "2010-04-01"
MAX_BODY = 1600  # characters; Twilio refuses longer bodies (21617)
# Old messages are forgotten past this many, so a long local run does not grow without bound.
RECORD_LIMIT = 10_000
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@dataclass(frozen=True)
class SandboxRecord:
    """One message the sandbox was asked to send: the request, the answer ``send`` gave, and when."""

    message: OutboundMessage
    state: MessageState
    created_at: datetime


def outcome(sid: str) -> tuple[str, str | None]:
    """The final status the sandbox gives the message with this sid, and the error code that goes with it."""
    digest = hashlib.sha256(sid.encode()).digest()
    if int.from_bytes(digest[:8], "big") % FAILURE_ONE_IN:
        return "delivered", None
    # Most failures at a carrier are unreachable handsets; some are Twilio's catch-all.
    return ("undelivered", UNDELIVERED_CODE) if digest[8] % 4 else ("failed", FAILED_CODE)


def callbacks(state: MessageState, *, account_sid: str) -> list[dict[str, str]]:
    """The form parameters of the status callbacks Twilio would post for the message, in order: ``sent``, then
    ``delivered``, ``undelivered`` or ``failed`` (with ``ErrorCode``). Twilio reports no price on callbacks."""
    status, error_code = outcome(state.sid)
    common = {
        "MessageSid": state.sid,
        "SmsSid": state.sid,
        "AccountSid": account_sid,
        "From": state.from_,
        "To": state.to,
        "ApiVersion": API_VERSION,
    }
    final = {**common, "MessageStatus": status, "SmsStatus": status}
    if error_code:
        final["ErrorCode"] = error_code
    return [{**common, "MessageStatus": "sent", "SmsStatus": "sent"}, final]


def _refusal(message: OutboundMessage) -> ProviderError | None:
    """The error Twilio answers a send with before queueing it, if any (with Twilio's code)."""
    if not _E164.fullmatch(message.to):
        return ProviderError(f"Twilio sandbox: The 'To' number {message.to} is not a valid phone number.", code="21211")
    if not _E164.fullmatch(message.from_):
        return ProviderError(
            f"Twilio sandbox: The 'From' number {message.from_} is not a valid phone number.", code="21212"
        )
    if not message.body:
        return ProviderError("Twilio sandbox: Message body is required.", code="21602")
    if len(message.body) > MAX_BODY:
        return ProviderError(f"Twilio sandbox: The message body exceeds the {MAX_BODY} character limit.", code="21617")
    return None


def _reached(record: SandboxRecord) -> MessageState:
    """The message as Twilio would report it once its fate is known."""
    status, error_code = outcome(record.state.sid)
    delivered = status == "delivered"
    return MessageState(
        sid=record.state.sid,
        status=status,
        to=record.state.to,
        from_=record.state.from_,
        body=record.state.body,
        error_code=error_code,
        price=PRICE if delivered else None,
        price_unit=PRICE_UNIT if delivered else None,
        sent_at=record.created_at,
    )


class SandboxProvider:
    name = "sandbox"

    # Class-level: every instance (and every thread of a local server) sees the same record.
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _records: ClassVar[dict[str, SandboxRecord]] = {}  # by sid, oldest first

    @classmethod
    def reset(cls) -> None:
        """Forget every message (tests start clean)."""
        with cls._lock:
            cls._records.clear()

    @classmethod
    def records(cls) -> list[SandboxRecord]:
        """Every message sent and not yet forgotten, oldest first."""
        with cls._lock:
            return list(cls._records.values())

    def send(self, message: OutboundMessage) -> MessageState:
        refusal = _refusal(message)
        if refusal is not None:
            logger.info("sandbox sms: refused %s: %s", message.to, refusal.message)
            raise refusal
        state = MessageState(
            sid="SM" + secrets.token_hex(16),
            status="queued",
            to=message.to,
            from_=message.from_,
            body=message.body,
        )
        record = SandboxRecord(message=message, state=state, created_at=datetime.now(UTC))
        with self._lock:
            self._records[state.sid] = record
            for sid in list(self._records)[: max(0, len(self._records) - RECORD_LIMIT)]:
                del self._records[sid]
        logger.info("sandbox sms: %s from %s to %s: %s", state.sid, message.from_, message.to, message.body)
        return state

    def fetch(self, sid: str) -> MessageState:
        with self._lock:
            record = self._records.get(sid)
        if record is None:
            raise ProviderError(f"Twilio sandbox: The requested resource {sid} was not found", code="20404")
        return _reached(record)

    def find(self, *, to: str, from_: str, body: str, sent_after: datetime) -> MessageState | None:
        if sent_after.tzinfo is None:
            raise ValueError("sent_after must be timezone-aware")
        with self._lock:
            found = next(
                (
                    record
                    for record in self._records.values()
                    if record.state.to == to
                    and record.state.from_ == from_
                    and record.state.body == body
                    and record.created_at >= sent_after
                ),
                None,
            )
        return None if found is None else _reached(found)
