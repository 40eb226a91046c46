"""Calendly webhook signatures. Pure: bytes and strings in, a signature or a verdict out.

Calendly signs each delivery with the webhook subscription's signing key and sends
``Calendly-Webhook-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is the hex HMAC-SHA256 of ``"<t>.<raw body>"``.
A delivery is genuine when ``v1`` matches (compared in constant time) and fresh when ``t`` is within the tolerance of
now, which stops a captured delivery from being replayed later. Calendly has no SDK helper for this; it is the same
scheme as Stripe's.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Calendly-Webhook-Signature"
SCHEME = "v1"


class SignatureError(ValueError):
    """The delivery is not signed by Calendly with our key, or not recently: ``str(error)`` says which."""


def compute(body: bytes, key: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, key: str, timestamp: int) -> str:
    """The ``Calendly-Webhook-Signature`` header Calendly would send for ``body`` at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={compute(body, key, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("The signature's timestamp (t) is not a number.") from None
        elif name == SCHEME and value:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("The signature has no timestamp (t).")
    if not signatures:
        raise SignatureError(f"The signature has no {SCHEME} value.")
    return timestamp, signatures


def verify(body: bytes, header: str | None, key: str, *, tolerance: int, now: int) -> int:
    """Check ``header`` against ``body``; returns the signed timestamp or raises :class:`SignatureError`."""
    if not key:
        raise SignatureError("No Calendly webhook signing key is configured.")
    if not header:
        raise SignatureError(f"The {HEADER} header is missing.")
    timestamp, signatures = _parse(header)
    expected = compute(body, key, timestamp)
    # Every candidate is compared, so the time taken does not tell which one came close.
    matches = [hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in signatures]
    if not any(matches):
        raise SignatureError("The signature does not match the body.")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("The signature is too old (or from the future); it may be a replay.")
    return timestamp
