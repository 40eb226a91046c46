"""Stripe webhook signatures. Pure: bytes and strings in, a verdict out.

Stripe signs ``"<t>.<raw body>"`` with HMAC-SHA256 under the endpoint's secret and sends
``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`` (several ``v1`` while a secret is being rolled).
A delivery is genuine when one ``v1`` matches, and fresh when ``t`` is within the tolerance of now, which stops a
captured delivery from being replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "v1"


class SignatureError(ValueError):
    """The delivery is not signed by Stripe with our secret, or not recently: ``str(error)`` says which."""


def compute(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``payload`` at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={compute(payload, secret, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("The signature's timestamp is not a number.") from None
        elif key == SCHEME and value:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("The signature has no timestamp.")
    if not signatures:
        raise SignatureError(f"The signature has no {SCHEME} signature.")
    return timestamp, signatures


def verify(payload: bytes, header: str | None, secret: str, *, tolerance: int, now: int) -> int:
    """Check ``header`` against ``payload``; returns the signed timestamp or raises :class:`SignatureError`."""
    if not secret:
        raise SignatureError("No webhook signing secret is configured.")
    if not header:
        raise SignatureError("The Stripe-Signature header is missing.")
    timestamp, signatures = _parse(header)
    expected = compute(payload, secret, timestamp)
    # A signature with non-ASCII characters matches no hex digest (and compare_digest refuses to compare it).
    if not any(candidate.isascii() and hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("The signature does not match the body.")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("The signature is too old (or from the future); it may be a replay.")
    return timestamp
