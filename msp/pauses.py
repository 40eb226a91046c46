"""A provider's request to be left alone for a while (a 429's ``Retry-After``), kept in the cache so that every
worker and every later run honours it, not only the run that was refused. A pause only ever grows: a shorter one
asked for later does not cut a longer one short. It expires from the cache by itself."""

from __future__ import annotations

import math
from datetime import datetime

from django.core.cache import cache


def paused_until(key: str, now: datetime) -> datetime | None:
    """When the provider under ``key`` may be asked again, while it has asked to be left alone; else None."""
    until = cache.get(key)
    return until if isinstance(until, datetime) and until > now else None


def pause(key: str, until: datetime, now: datetime) -> datetime:
    """Leave the provider under ``key`` alone until ``until`` (or a later time already kept); the time kept."""
    until = max(until, paused_until(key, now) or now)
    if until > now:
        cache.set(key, until, timeout=math.ceil((until - now).total_seconds()))
    return until
