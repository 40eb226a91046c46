"""A provider's pause kept in the cache: read back until it passes, only ever lengthened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.core.cache import cache

from msp.pauses import pause, paused_until

NOW = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
KEY = "test:paused-until"


def test_a_pause_is_read_back_until_it_passes():
    assert paused_until(KEY, NOW) is None
    assert pause(KEY, NOW + timedelta(minutes=5), NOW) == NOW + timedelta(minutes=5)
    assert paused_until(KEY, NOW + timedelta(minutes=4)) == NOW + timedelta(minutes=5)
    assert paused_until(KEY, NOW + timedelta(minutes=5)) is None


def test_a_shorter_pause_asked_later_does_not_cut_a_longer_one_short():
    pause(KEY, NOW + timedelta(minutes=10), NOW)
    assert pause(KEY, NOW + timedelta(minutes=2), NOW + timedelta(minutes=1)) == NOW + timedelta(minutes=10)
    assert paused_until(KEY, NOW + timedelta(minutes=9)) == NOW + timedelta(minutes=10)
    assert pause(KEY, NOW + timedelta(minutes=20), NOW + timedelta(minutes=1)) == NOW + timedelta(minutes=20)


def test_a_pause_already_over_is_not_kept():
    assert pause(KEY, NOW - timedelta(seconds=1), NOW) == NOW
    assert cache.get(KEY) is None
