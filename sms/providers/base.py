"""What Keel asks of an SMS provider, in plain values.

A message goes out with ``send``; its later fate (sent, delivered, undelivered, failed) arrives through the
provider's status callbacks, and ``fetch`` asks for it directly. ``find`` closes the one gap a send cannot close by
itself: the provider accepted a message but Keel never stored the sid (a crash, a lost answer). Before sending such a
message again, the sender asks whether it already went out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol


class ProviderError(Exception):
    """The provider refused the request or could not be reached; ``message`` is safe to show to staff.

    ``retryable`` says the same request may succeed later (rate limit, outage, timeout). After a *send* that was
    retryable the message may nevertheless have been accepted (the answer was lost), so ask ``find`` before sending
    it again. ``code`` is the provider's own error code when it gave one (Twilio: ``"21211"`` invalid 'To',
    ``"21610"`` unsubscribed recipient, ...).

    ``retry_after`` is the wait the provider asked for, from its ``Retry-After`` header (None when it named none);
    ``rate_limited`` says it refused because too many requests came (HTTP 429). Either way the provider is asking to
    be left alone for a while, not only for this request: callers hold back what they have not sent yet.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        code: str | None = None,
        retry_after: timedelta | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.retry_after = retry_after
        self.rate_limited = rate_limited

    @property
    def asks_to_wait(self) -> bool:
        """A retryable refusal that names a wait or is a rate limit: sending more now would be refused too."""
        return self.retryable and (self.rate_limited or self.retry_after is not None)


@dataclass(frozen=True)
class OutboundMessage:
    to: str  # E.164
    from_: str  # E.164 sending number
    body: str
    status_callback: str | None = None  # absolute URL the provider posts status changes to


@dataclass(frozen=True)
class MessageState:
    sid: str
    status: str  # the provider's status: queued, sending, sent, delivered, undelivered, failed, ...
    to: str
    from_: str
    body: str
    error_code: str | None = None
    price: Decimal | None = None  # the positive amount charged, once the provider reports it
    price_unit: str | None = None  # ISO 4217, e.g. "USD"
    sent_at: datetime | None = None  # aware; None until the provider has handed the message on


class MessageProvider(Protocol):
    def send(self, message: OutboundMessage) -> MessageState:
        """Hand the message to the provider; the answer is usually ``queued``. Raises ``ProviderError``."""
        ...

    def fetch(self, sid: str) -> MessageState:
        """The message as the provider knows it now. Raises ``ProviderError`` (an unknown sid is not retryable)."""
        ...

    def find(self, *, to: str, from_: str, body: str, sent_after: datetime) -> MessageState | None:
        """The message already sent with exactly this body, from this number, to this number, since ``sent_after``
        (aware; take it from before the send was attempted), or None. Used to reconcile a send whose answer was
        lost, so that a retry does not send the message twice."""
        ...
