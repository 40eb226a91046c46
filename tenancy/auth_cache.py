"""What every request reads before its view runs, kept in the cache: the API key a bearer token names (with its
organization, partner and rate-limit policies), the organization its ``X-Organization`` header picks, and the
organizations a signed-in person may see in the portal with their role in each, and that person's own row.

Each entry is stamped with the *access generation*, a token in the cache that is replaced whenever an API key, an
organization, a partner, a rate-limit policy, a membership or a partner admin is saved, changed by a queryset
``update`` or deleted: at once and again when the transaction commits. An entry of an older generation is never
used, so a revoked or re-scoped key, a suspended organization, a new policy or a changed role applies from the very
next request, in every worker. Entries also expire after :data:`ENTRY_SECONDS`. Only API keys' ``last_used_at`` is
written without a new generation (it changes nothing about access): the key's entry is written again with it
instead. A person's row is also stamped with their own *user version*, which any change to that row replaces
(:func:`users_changed`): signing in, which records ``last_login``, drops that person's row and nobody else's.

One cache round trip reads the generation, the key's entry, the header's organization and the caller's count of
refused keys together, counts the request against the key's rate, and fetches a list answer the request may be
about to reuse (:func:`access_read`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import transaction

from tenancy.counters import read_and_count

GENERATION = "access:generation"
ENTRY_SECONDS = 300
# Longer than an entry lives: a version that expired is started again with a new token, which no entry carries.
USER_VERSION_SECONDS = 2 * ENTRY_SECONDS


def _bump() -> None:
    cache.set(GENERATION, uuid.uuid4().hex, None)


def access_changed() -> None:
    """Who may do what through the API may have changed: every cached key and organization is dropped now, and
    again when the current transaction commits (so that nothing read before the commit outlives it)."""
    _bump()
    transaction.on_commit(_bump)


def key_entry(key_hash: str) -> str:
    return f"access:key:{key_hash}"


def organization_entry(key_hash: str, header: str) -> str:
    return f"access:org:{key_hash}:{header}"


def portal_entry(user_id: Any) -> str:
    return f"access:portal:{user_id}"


def user_entry(user_id: Any) -> str:
    return f"access:user:{user_id}"


def user_version(user_id: Any) -> str:
    """A token replaced whenever the person's row changes: their cached row (:mod:`tenancy.session_user`) is used
    only while it carries the token it was read under."""
    return f"access:user-version:{user_id}"


def _replace_versions(user_ids: Sequence[Any]) -> None:
    cache.set_many({user_version(pk): uuid.uuid4().hex for pk in user_ids}, USER_VERSION_SECONDS)


def users_changed(user_ids: Sequence[Any]) -> None:
    """These people's rows were saved, updated or deleted: their cached rows are dropped now, and again when the
    current transaction commits (so that nothing read before the commit outlives it)."""
    ids = list(user_ids)
    if not ids:
        return
    _replace_versions(ids)
    transaction.on_commit(lambda: _replace_versions(ids))


@dataclass
class AccessRead:
    """What :func:`access_read` found: the current generation, the entries of that generation by name, and the
    other values asked for (whatever their generation)."""

    generation: str
    entries: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def store(self, name: str, value: Any) -> None:
        """Cache ``value`` under ``name`` for this generation."""
        cache.set(name, (self.generation, value), ENTRY_SECONDS)
        self.entries[name] = value


def access_read(entries: list[str], values: list[str], counters: Sequence[tuple[str, int]] = ()) -> AccessRead:
    """The generation, ``entries`` still of it, and ``values``; and ``counters`` (name, timeout) each counted once
    (:func:`~tenancy.counters.read_and_count`), their new values among ``values``. One cache round trip (two when
    the generation has to be started)."""
    got, counts = read_and_count([GENERATION, *entries, *values], counters)
    generation = got.get(GENERATION)
    if generation is None:
        generation = uuid.uuid4().hex
        if not cache.add(GENERATION, generation, None):
            generation = cache.get(GENERATION) or generation
    current = {}
    for name in entries:
        entry = got.get(name)
        if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
            current[name] = entry[1]
    return AccessRead(
        generation=generation, entries=current, values={**{name: got.get(name) for name in values}, **counts}
    )
