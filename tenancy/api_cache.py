"""Answers of the API's busiest lists, reused for at most ``API_LIST_CACHE_SECONDS`` (1 s by default).

A partner's systems poll ticket and invoice lists; building a page of 50 tickets costs tens of milliseconds, sending
the same bytes again a fraction of one. An answer is reused only for the same caller (API key or person), the same
organization, the same path and query string and the same ``Accept`` header, and only while the organization's *data
version* is unchanged: a token in the cache replaced whenever a row of that organization (or the organization
itself) is saved, at once and again when the transaction commits. So a caller always sees its own changes, and
anyone's changes saved through Keel's models, on its next request. Deletions (tickets and invoices are closed and
voided, not deleted), changes made without signals (a queryset ``update``, ``bulk_create``) and figures computed
at request time (the SLA clocks' ``remaining_seconds``) are at most the reuse time old. Lists across organizations
(a partner key without ``X-Organization``) and errors are never reused.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from redis.exceptions import RedisError
from rest_framework.response import Response

from tenancy.models import ApiKey

logger = logging.getLogger(__name__)


def version_key(organization_id: Any) -> str:
    return f"data-version:{organization_id}"


def _replace(organization_id: Any) -> None:
    """A new data version. A write never fails for want of the cache: while it is unreachable nothing is served
    from it, and what it held expires within the reuse time."""
    try:
        cache.set(version_key(organization_id), uuid.uuid4().hex, None)
    except (RedisError, OSError):
        logger.warning("could not replace the data version of organization %s", organization_id, exc_info=True)


class _ReplaceOnCommit:
    """The commit-time replacement of one organization's data version (one per transaction and organization)."""

    def __init__(self, organization_id: Any) -> None:
        self.organization_id = organization_id

    def __call__(self) -> None:
        _replace(self.organization_id)


def data_changed(organization_id: Any) -> None:
    """A row of the organization was saved: its data version is replaced now and when the transaction commits."""
    _replace(organization_id)
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return
    for _savepoints, callback, _robust in connection.run_on_commit:
        if isinstance(callback, _ReplaceOnCommit) and callback.organization_id == organization_id:
            return
    transaction.on_commit(_ReplaceOnCommit(organization_id), robust=True)


def _current_version(organization_id: Any, found: dict[str, Any]) -> str:
    name = version_key(organization_id)
    version = found.get(name)
    if version is None:
        version = uuid.uuid4().hex
        if not cache.add(name, version, None):
            version = cache.get(name) or version
    return str(version)


def _answer_name(caller: str, scope: str, request: Any) -> str:
    what = f"{caller}|{scope}|{request.META.get('HTTP_ACCEPT', '')}|{request.get_full_path()}"
    return "api-list:" + hashlib.sha256(what.encode()).hexdigest()


# The organization each API key (by hash) and X-Organization header acted for when this process last answered one
# of its lists: authentication reads that organization's data version and the answer in its own round trip, so a
# reused answer costs no further one. Only a guess: the answer is used only if the request turns out to act for that
# organization. Kept small: forgotten whole when full.
_acted_for: dict[tuple[str, str], Any] = {}
_ACTED_FOR_KEPT = 1024


def reuse_names(request: Any, key_hash: str, header: str) -> list[str]:
    """What an API key's request may reuse, for authentication to read along with the key: the data version of the
    organization the key acted for last time and the answer to this request (none for writes, or when this process
    has not yet answered the key)."""
    if request.method != "GET" or settings.API_LIST_CACHE_SECONDS <= 0:
        return []
    organization_id = _acted_for.get((key_hash, header))
    if organization_id is None:
        return []
    return [version_key(organization_id), _answer_name(f"key:{key_hash}", header, request)]


def cached_list(view: Any, build: Callable[[], Response]) -> HttpResponseBase:
    """``build()``'s answer for the view's request, or the same bytes built for the same request less than
    ``API_LIST_CACHE_SECONDS`` ago while the organization's data stayed the same. Call it from a list action, after
    authentication, permissions and throttles have run."""
    request = view.request
    organization = view.tenant.organization
    seconds = settings.API_LIST_CACHE_SECONDS
    renderer = getattr(request, "accepted_renderer", None)
    if seconds <= 0 or organization is None or getattr(renderer, "format", None) != "json":
        return build()
    if isinstance(request.auth, ApiKey):
        header = (request.META.get("HTTP_X_ORGANIZATION") or "").strip()
        name = _answer_name(f"key:{request.auth.key_hash}", header, request)
        if len(_acted_for) >= _ACTED_FOR_KEPT:
            _acted_for.clear()
        _acted_for[(request.auth.key_hash, header)] = organization.pk
    else:
        name = _answer_name(f"user:{request.user.pk}", f"organization:{organization.pk}", request)
    version_name = version_key(organization.pk)
    read = getattr(request, "keel_access", None)
    read_already = read.values if read is not None and version_name in read.values and name in read.values else None
    found = read_already if read_already is not None else cache.get_many([version_name, name])
    version = _current_version(organization.pk, found)
    entry = found.get(name)
    if isinstance(entry, tuple) and len(entry) == 4 and entry[0] == str(organization.pk) and entry[1] == version:
        return HttpResponse(entry[3], content_type=entry[2])
    response = build()
    if response.status_code == 200:

        def keep(rendered: Any) -> None:
            cache.set(name, (str(organization.pk), version, rendered["Content-Type"], rendered.content), seconds)

        response.add_post_render_callback(keep)
    return response
