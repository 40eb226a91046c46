"""Who a session belongs to, without a query on every page.

Django's authentication middleware loads the signed-in person's row from the database on every request, to check
that the session still matches their password (the session carries an HMAC of the password hash, the *session auth
hash*) and that they are still active. Here that row is kept in the cache (``tenancy.auth_cache``), next to the
organizations they may see in the portal: both come back in the single cache round trip a portal page makes before
its view runs.

- The cached row holds every field **but the password**, and the session auth hash computed from it when it was
  read. A session is accepted from the cache only when its hash equals that one; otherwise (a changed password, a
  rotated ``SECRET_KEY``, a session from before either) Django's own ``get_user`` decides, exactly as without the
  cache, and may sign the session out.
- The password is left deferred on the rebuilt row: code that needs it (``check_password``) loads it with a query,
  and ``save()`` writes only the fields that were loaded, so a cached row can never write an empty password back.
- Only active people signed in through a ``ModelBackend`` (password, magic link) are cached: those whose backend
  would refuse an inactive person.
- A row is used only while it carries the person's current *user version* and the current access generation. Saving,
  updating or deleting a person replaces their version at once and again when the transaction commits, so a
  deactivated person or a changed password takes effect from the next request, in every worker.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject

from tenancy.auth_cache import (
    USER_VERSION_SECONDS,
    AccessRead,
    access_read,
    portal_entry,
    user_entry,
    user_version,
)
from tenancy.models import User

# The read made for the session's person, kept on the request for the portal to find its organizations in.
ACCESS_READ_ATTRIBUTE = "keel_session_access"


@dataclass(frozen=True)
class KnownUser:
    """A person's row without the password, and the session auth hash of that password."""

    values: tuple[Any, ...]  # in the order of :func:`_field_names`
    session_hash: str


@functools.cache
def _field_names() -> tuple[str, ...]:
    return tuple(field.attname for field in User._meta.concrete_fields if field.attname != "password")


@functools.cache
def _caches_backend(path: str, configured: tuple[str, ...]) -> bool:
    """Whether a session signed in through ``path`` may be answered from the cache: a configured backend that
    loads people as Django's ModelBackend does (by primary key, refusing the inactive)."""
    return path in configured and isinstance(load_backend(path), ModelBackend)


def _known(user: User) -> KnownUser:
    return KnownUser(tuple(getattr(user, name) for name in _field_names()), user.get_session_auth_hash())


def _rebuilt(known: KnownUser) -> User:
    """The row as the database would give it, with the password deferred."""
    return User.from_db(DEFAULT_DB_ALIAS, list(_field_names()), list(known.values))


def session_user(request: HttpRequest) -> Any:
    """The person the session is signed in as, or ``AnonymousUser``: what ``django.contrib.auth.get_user`` answers,
    from the cache when it can."""
    session = request.session
    try:
        user_id = User._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return auth.get_user(request)
    session_hash = session.get(HASH_SESSION_KEY)
    if (
        not session_hash
        or not isinstance(backend_path, str)
        or not _caches_backend(backend_path, tuple(settings.AUTHENTICATION_BACKENDS))
    ):
        return auth.get_user(request)
    name, version = user_entry(user_id), user_version(user_id)
    read = access_read([name, portal_entry(user_id)], [version])
    setattr(request, ACCESS_READ_ATTRIBUTE, (user_id, read))
    current = read.values.get(version)
    cached = read.entries.get(name)
    if (
        current is not None
        and isinstance(cached, tuple)
        and len(cached) == 2
        and cached[0] == current
        and isinstance(cached[1], KnownUser)
        and constant_time_compare(session_hash, cached[1].session_hash)
    ):
        return _rebuilt(cached[1])
    user = auth.get_user(request)
    if isinstance(user, User) and user.pk == user_id and user.is_active:
        _remember(read, name, version, current, user)
    return user


def _remember(read: AccessRead, name: str, version: str, current: str | None, user: User) -> None:
    """Cache ``user``'s row, stamped with the version read before the row was loaded. A change after that read has
    replaced the version, so the entry is never used. Without a version, one is started now; if another request
    started or replaced it first, a change may be under way and nothing is cached."""
    if current is None:
        current = uuid.uuid4().hex
        if not cache.add(version, current, USER_VERSION_SECONDS):
            return
    read.store(name, (current, _known(user)))


def session_access(request: HttpRequest, user_id: Any) -> AccessRead | None:
    """The cache read :func:`session_user` made for this request, if it made one for ``user_id``: it holds their
    portal entry (:func:`tenancy.auth_cache.portal_entry`) when that is cached."""
    made = getattr(request, ACCESS_READ_ATTRIBUTE, None)
    if isinstance(made, tuple) and made[0] == user_id and isinstance(made[1], AccessRead):
        return made[1]
    return None


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's authentication middleware, with ``request.user`` loaded by :func:`session_user`."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)  # checks for the session; sets ``request.auser``
        request.user = SimpleLazyObject(lambda: _cached_user(request))  # type: ignore[assignment]


def _cached_user(request: HttpRequest) -> Any:
    if not hasattr(request, "_cached_user"):
        request._cached_user = session_user(request)  # type: ignore[attr-defined]
    return request._cached_user  # type: ignore[attr-defined]
