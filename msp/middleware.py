"""When a dependency is down, say so: ``503 Service Unavailable`` with ``Retry-After`` and a message a person can read
(an HTML page in the portal and the admin, ``{"detail": ...}`` for the API and the webhooks), never a 500 page.

A dependency is down when reaching it raises one of :data:`OUTAGES`: the database (``OperationalError``,
``InterfaceError``), the cache (redis-py's connection and timeout errors) or the broker (kombu's
``OperationalError``). :class:`UnavailableMiddleware` sits near the top of ``MIDDLEWARE`` and catches them where
they arise:

- in the view (DRF's throttles read the cache there, views query the database and queue jobs): ``process_exception``;
- in the lazy session and user that the middleware below reads before the view (the session is cached in Redis,
  the user and the second-factor device come from the database): ``process_view`` loads both first, so an outage is
  answered before any other middleware or the view runs;
- anywhere else below it (a ``process_response``, a template rendered after the view): Django turns every exception
  raised inside the middleware chain into a 500 response before the middleware above it sees anything, so the
  exception is noted on the request when Django announces it (``got_request_exception``) and the 500 is replaced
  (Django has logged that exception as an error by then).

``/health`` is left alone (and its session, if a browser sent one, unread): it checks each dependency itself and
names the one that failed.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any

import redis.exceptions
from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

RETRY_AFTER = 30  # seconds: long enough for a restart, short enough that a person retrying soon gets through
JSON_PREFIXES = ("/api/", "/webhooks/", "/anymail/")
MESSAGE = "Keel cannot reach a service it depends on right now. Please try again in a minute."
OUTAGES: dict[type[BaseException], str] = {
    OperationalError: "database",
    InterfaceError: "database",
    redis.exceptions.ConnectionError: "cache",
    redis.exceptions.TimeoutError: "cache",
    BrokerError: "broker",
}
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Temporarily unavailable</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2933}}</style>
</head>
<body>
<main>
<h1>Temporarily unavailable</h1>
<p>{MESSAGE}</p>
<p>If you were saving something, check whether it was saved before you send it again.</p>
</main>
</body>
</html>
"""
_NOTED = "_dependency_outage"


def outage_of(exc: BaseException | None) -> str | None:
    """The dependency ``exc`` says is unreachable (``database``, ``cache``, ``broker``), or None."""
    for kind, dependency in OUTAGES.items():
        if isinstance(exc, kind):
            return dependency
    return None


def unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The 503 answer to ``request``, logged at warning (an outage is the operators' news, not a bug)."""
    logger.warning(
        "%s %s: 503, the %s is unavailable (%s: %s)",
        request.method,
        request.path,
        outage_of(exc),
        type(exc).__name__,
        exc,
    )
    response: HttpResponse
    if request.path.startswith(JSON_PREFIXES):
        response = JsonResponse({"detail": MESSAGE}, status=503)
    else:
        response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER)
    add_never_cache_headers(response)
    response._has_been_logged = True  # type: ignore[attr-defined]  # logged above, as a warning: not again as an error
    return response


def _drop_session(request: HttpRequest) -> None:
    """Take the session off the request, so that the session middleware leaves the response alone. On the way out it
    reads the session whenever there is a session cookie (it asks for the expiry before it declines to save on a
    5xx), and with the cache or the database down that read fails again."""
    with contextlib.suppress(AttributeError):
        del request.session


def _answered(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """``unavailable``, for an outage met on the way in (before or in the view)."""
    _drop_session(request)
    return unavailable(request, exc)


def _note_outage(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """Remember on the request an outage Django is about to turn into a 500 (it sends this signal while handling the
    exception, so the exception is the one being handled)."""
    exc = sys.exc_info()[1]
    if request is not None and outage_of(exc) is not None:
        setattr(request, _NOTED, exc)


def _signed_in(request: HttpRequest) -> bool:
    """Whether the request's user is signed in: asking loads the session (cache, then database) and the user."""
    user = getattr(request, "user", None)
    return user is not None and bool(user.is_authenticated)


got_request_exception.connect(_note_outage, dispatch_uid="msp.middleware.note_outage")


class UnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        noted: BaseException | None = getattr(request, _NOTED, None)
        if noted is not None and response.status_code == 500:
            return unavailable(request, noted)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        match = request.resolver_match
        if match is not None and match.url_name == "health":
            _drop_session(request)  # a probe of this process: no visitor's session is read or kept alive
            return None
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return None  # no session to read: the user is anonymous without asking anything
        try:
            _signed_in(request)
        except tuple(OUTAGES) as exc:
            return _answered(request, exc)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if outage_of(exception) is None:
            return None
        return _answered(request, exception)
