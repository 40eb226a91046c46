"""Guessing limits: how many failed (or costly) attempts one client address may make in a window.

Used where a caller could otherwise guess at will: API keys, magic links, sign-in from one address across many
accounts (django-axes locks one account from one address; this limits the address as a whole). Counts live in the
cache, in fixed windows; with the cache down the request fails with the outage middleware's 503, never a 500.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest

from tenancy.audit import client_ip


@dataclass(frozen=True)
class AttemptLimit:
    """``limit`` attempts per ``window`` seconds per client address, counted under ``name``."""

    name: str
    limit: int
    window: int

    def _key(self, ident: str) -> tuple[str, int]:
        bucket = int(time.time() // self.window)
        return f"attempts:{self.name}:{ident}:{bucket}", bucket

    def counter(self, ident: str) -> tuple[str, int]:
        """The cache key counting the address's attempts in the current window, and the window's number: for a
        caller that reads the count along with other values (:meth:`retry_after_count`)."""
        return self._key(ident)

    def retry_after_count(self, count: int | None, bucket: int) -> int | None:
        """Seconds until the address may try again given its ``count`` in window ``bucket``, or None when it is
        under the limit."""
        if (count or 0) < self.limit:
            return None
        return max(1, math.ceil((bucket + 1) * self.window - time.time()))

    def retry_after(self, ident: str | None) -> int | None:
        """Seconds until this address may try again, or None when it is under the limit."""
        if not ident:
            return None
        key, bucket = self._key(ident)
        return self.retry_after_count(cache.get(key), bucket)

    def hit(self, ident: str | None) -> None:
        """Count one attempt for the address."""
        if not ident:
            return
        key, _ = self._key(ident)
        if cache.add(key, 1, self.window + 5):
            return
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, self.window + 5)

    def blocked(self, request: HttpRequest) -> int | None:
        return self.retry_after(client_ip(request))

    def count(self, request: HttpRequest) -> None:
        self.hit(client_ip(request))
