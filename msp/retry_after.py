"""A provider's ``Retry-After``, read and applied.

A provider that refuses for a while (429 too many requests, 503 unavailable) may say how long to wait, as seconds
(``Retry-After: 30``) or as an HTTP date (``Retry-After: Sat, 21 Nov 2026 22:15:00 GMT``). Keel's own backoff may be
shorter than that: a retry before the provider's time is refused again and spends an attempt. :func:`wait_before_retry`
therefore waits for the longer of the two, but never longer than the job's own limit, so a provider that asks for a
day does not park a message for a day without anyone seeing it.

Plain values in and out: no Django here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# A header may be present but absurd (a negative number, a date in 1970, a year from now): such values are read as
# "no advice" or capped, never trusted blindly.
LONGEST_ADVICE = timedelta(days=1)


def retry_after(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """The wait a ``Retry-After`` header asks for, or None when there is no usable header.

    Seconds (``"120"``) or an HTTP date in GMT; a date in the past is no wait (zero). Anything else (empty, negative,
    a fraction, text) is ignored. At most :data:`LONGEST_ADVICE`."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        wait = timedelta(seconds=int(text[:12]))  # 12 digits is already ~31,000 years: the cap applies
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000" dates parse naive; RFC 9110 dates are always GMT
            when = when.replace(tzinfo=UTC)
        wait = max(when - (now or datetime.now(UTC)), timedelta(0))
    return min(wait, LONGEST_ADVICE)


def retry_after_header(headers: Mapping[str, str] | None, *, now: datetime | None = None) -> timedelta | None:
    """:func:`retry_after` of the ``Retry-After`` header in ``headers`` (any capitalisation), if there is one."""
    if not headers:
        return None
    value = headers.get("Retry-After")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return retry_after(value, now=now)


def wait_before_retry(backoff: timedelta, advice: timedelta | None, *, longest: timedelta) -> timedelta:
    """The job's own ``backoff``, or the provider's ``advice`` when that is longer, never beyond ``longest``
    (the job's limit; a backoff already longer than that is kept)."""
    if advice is None or advice <= backoff:
        return backoff
    return max(backoff, min(advice, longest))
