"""A provider's Retry-After: seconds or an HTTP date, ignored when unusable, capped, and only ever lengthening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from msp.retry_after import LONGEST_ADVICE, retry_after, retry_after_header, wait_before_retry

NOW = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", timedelta(seconds=30)),
        (" 7 ", timedelta(seconds=7)),
        ("0", timedelta(0)),
        ("Sat, 21 Nov 2026 22:02:30 GMT", timedelta(minutes=2, seconds=30)),
        ("Saturday, 21-Nov-26 22:01:00 GMT", timedelta(minutes=1)),  # RFC 850, still allowed by RFC 9110
        ("Sat Nov 21 22:00:45 2026", timedelta(seconds=45)),  # asctime
        ("Sat, 21 Nov 2026 21:00:00 GMT", timedelta(0)),  # already past: retry now
        ("99999999999999999999", LONGEST_ADVICE),
        ("Mon, 21 Nov 2033 22:00:00 GMT", LONGEST_ADVICE),
    ],
)
def test_reads_seconds_and_dates(value: str, expected: timedelta) -> None:
    assert retry_after(value, now=NOW) == expected


@pytest.mark.parametrize("value", [None, "", "  ", "-5", "1.5", "soon", "٣", "Sat, 99 Nov 2026 22:00:00 GMT"])
def test_unusable_values_are_no_advice(value: str | None) -> None:
    assert retry_after(value, now=NOW) is None


def test_header_is_found_in_any_capitalisation() -> None:
    assert retry_after_header({"retry-after": "12"}, now=NOW) == timedelta(seconds=12)
    assert retry_after_header({"Retry-After": "3", "Content-Type": "x"}, now=NOW) == timedelta(seconds=3)
    assert retry_after_header({"RETRY-AFTER": "4"}, now=NOW) == timedelta(seconds=4)
    assert retry_after_header({}, now=NOW) is None
    assert retry_after_header(None, now=NOW) is None


@pytest.mark.parametrize(
    ("backoff", "advice", "expected"),
    [
        (timedelta(minutes=2), None, timedelta(minutes=2)),
        (timedelta(minutes=2), timedelta(seconds=30), timedelta(minutes=2)),  # never shorter than the backoff
        (timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=10)),
        (timedelta(minutes=2), timedelta(hours=5), timedelta(hours=1)),  # capped at the job's limit
        (timedelta(hours=2), timedelta(hours=5), timedelta(hours=2)),  # a backoff beyond the limit is kept
    ],
)
def test_wait_is_the_longer_within_the_limit(backoff: timedelta, advice: timedelta | None, expected: timedelta) -> None:
    assert wait_before_retry(backoff, advice, longest=timedelta(hours=1)) == expected
