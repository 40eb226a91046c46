"""Signing partner webhook deliveries. Pure: standard library only.

Every delivery carries ``Keel-Signature: t=<unix seconds>,v1=<hex>``, where the hex is the HMAC-SHA256 of
``"<t>.<raw body>"`` keyed with the endpoint's secret. A receiver recomputes it over the exact bytes it received,
compares in constant time, and refuses a ``t`` too far from its own clock (replays). ``verify`` is that recipe,
and docs/webhooks.md shows it for receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Keel-Signature"
TOLERANCE = 300  # seconds a receiver should accept between t and its clock


def signature(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def header_value(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={signature(secret, body, timestamp)}"


def verify(
    secret: str, body: bytes, header: str | None, *, tolerance: int = TOLERANCE, now: float | None = None
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` seconds of ``now``. Any
    ``v1`` in the header may match (a sender rotating its secret may send two)."""
    if not header:
        return False
    parts = [part.strip().split("=", 1) for part in header.split(",")]
    fields = [(name, value) for name, value in (part for part in parts if len(part) == 2)]
    stamps = [value for name, value in fields if name == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp)
    return any(hmac.compare_digest(expected, value) for name, value in fields if name == "v1")
