"""The outage middleware (msp.middleware): an unreachable database, cache or broker is a 503 with ``Retry-After`` and a
message (a page, or ``{"detail": ...}`` under /api/, /webhooks/ and /anymail/), logged once as a warning; whatever
else goes wrong is left to Django. Raised in a view, in the session and user read before the view, or in a middleware
further down, it is answered the same."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis.exceptions
from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path, re_path
from kombu.exceptions import OperationalError as BrokerError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from msp.health import health
from msp.middleware import MESSAGE, RETRY_AFTER, outage_of

OUTAGES: dict[str, Callable[[], BaseException]] = {
    "database": lambda: OperationalError("server closed the connection unexpectedly"),
    "database-closed": lambda: InterfaceError("connection already closed"),
    "cache": lambda: redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    "cache-timeout": lambda: redis.exceptions.TimeoutError("Timeout reading from socket"),
    "cache-loading": lambda: redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    "broker": lambda: BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
}
DEPENDENCY = {"database": "database", "database-closed": "database", "cache": "cache", "cache-timeout": "cache",
              "cache-loading": "cache", "broker": "broker"}  # fmt: skip


def failing(request: HttpRequest, kind: str) -> HttpResponse:
    if kind == "bug":
        raise ValueError("a plain bug")
    raise OUTAGES[kind]()


def fine(request: HttpRequest) -> HttpResponse:
    return HttpResponse("fine")


class CacheDownThrottle(BaseThrottle):
    """A throttle counting in a cache that cannot be reached, as DRF's throttles do when Redis is down."""

    def allow_request(self, request: Request, view: Any) -> bool:
        raise OUTAGES["cache"]()


class ThrottledView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [CacheDownThrottle]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("page/<str:kind>/", failing),
    path("api/throttled/", ThrottledView.as_view()),
    path("api/<str:kind>/", failing),
    path("webhooks/<str:kind>/", failing),
    path("anymail/<str:kind>/", failing),
    path("fine/", fine),
    re_path(r"^health/?$", health, name="health"),
]


class FailsOnTheWayOut:
    """A middleware below the outage middleware that meets an outage after the view (as the session middleware does
    when it saves)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path == "/fine/":
            raise OUTAGES["cache"]()
        return response


pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


def assert_page(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER)
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "no-cache" in response["Cache-Control"]
    body = response.content.decode()
    assert "<title>Temporarily unavailable</title>" in body and MESSAGE in body


def assert_json(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER)
    assert response.json() == {"detail": MESSAGE}


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "msp.middleware"]


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("kind", sorted(OUTAGES))
def test_an_outage_in_a_portal_view_is_a_503_page_logged_once_as_a_warning(client, caplog, kind):
    caplog.set_level(logging.WARNING)
    assert_page(client.get(f"/page/{kind}/"))
    assert warnings_logged(caplog) == [
        f"GET /page/{kind}/: 503, the {DEPENDENCY[kind]} is unavailable "
        f"({type(OUTAGES[kind]()).__name__}: {OUTAGES[kind]()})"
    ]
    assert errors_logged(caplog) == []


@pytest.mark.parametrize("prefix", ["api", "webhooks", "anymail"])
@pytest.mark.parametrize("kind", ["database", "cache", "broker"])
def test_an_outage_under_the_api_and_the_webhooks_is_a_503_in_json(client, prefix, kind):
    assert_json(client.post(f"/{prefix}/{kind}/", {}, content_type="application/json"))


def test_a_throttle_that_cannot_reach_the_cache_is_a_503(client, caplog):
    caplog.set_level(logging.WARNING)
    assert_json(client.get("/api/throttled/"))
    assert errors_logged(caplog) == []


def test_anything_else_is_left_to_django(client):
    with pytest.raises(ValueError, match="a plain bug"):
        client.get("/page/bug/")
    quiet = Client(raise_request_exception=False)
    assert quiet.get("/page/bug/").status_code == 500


def test_outage_of_names_the_dependency_only_for_outages():
    assert outage_of(OUTAGES["cache-loading"]()) == "cache"  # a subclass of redis' ConnectionError
    assert outage_of(ConnectionError("the builtin one")) is None
    assert outage_of(ValueError("a plain bug")) is None
    assert outage_of(None) is None


@pytest.fixture
def session_unreadable(monkeypatch):
    """The session store fails as ``cached_db`` does with Redis down (it reads the database, then cannot cache)."""

    def load(self):
        raise OUTAGES["cache"]()

    monkeypatch.setattr(SessionStore, "load", load)


def test_a_session_that_cannot_be_read_is_a_503_before_any_view_runs(client, session_unreadable, caplog):
    caplog.set_level(logging.WARNING)
    client.cookies[settings.SESSION_COOKIE_NAME] = "k" * 32
    response = client.get("/fine/")
    assert_page(response)
    assert settings.SESSION_COOKIE_NAME not in response.cookies  # the session is left as it was
    assert errors_logged(caplog) == []


def test_without_a_session_cookie_nothing_is_read_before_the_view(client, session_unreadable):
    assert client.get("/fine/").content == b"fine"


def test_health_answers_for_itself(client, session_unreadable):
    client.cookies[settings.SESSION_COOKIE_NAME] = "k" * 32
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_an_outage_in_a_middleware_below_is_a_503_too(settings):
    settings.MIDDLEWARE = ["msp.middleware.UnavailableMiddleware", f"{__name__}.FailsOnTheWayOut"]
    # Django has turned the exception into a 500 (and announced it) before the outage middleware sees the response.
    response = Client(raise_request_exception=False).get("/fine/")
    assert_page(response)
