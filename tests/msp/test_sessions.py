"""Sessions slide their idle expiry, renewed at most once a minute instead of written on every request."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from msp.sessions import RENEW_AFTER
from tenancy.models import Membership


def session_writes(client) -> tuple[int, bool]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/dashboard/")
    assert response.status_code == 200
    writes = [q["sql"] for q in captured.captured_queries if "django_session" in q["sql"] and "UPDATE" in q["sql"]]
    return len(writes), settings.SESSION_COOKIE_NAME in response.cookies


def test_a_session_is_renewed_once_a_minute_not_on_every_request(client_for, alice):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client = client_for(alice)
        assert session_writes(client) == (1, True)  # the first use renews it
        assert session_writes(client) == (0, False)
        traveller.shift(timedelta(seconds=RENEW_AFTER - 1))
        assert session_writes(client) == (0, False)
        traveller.shift(timedelta(seconds=1))
        assert session_writes(client) == (1, True)
        assert session_writes(client) == (0, False)


def test_an_idle_session_ends_and_an_active_one_does_not(client_for, alice):
    idle = settings.SESSION_COOKIE_AGE
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        active = client_for(alice)
        dormant = client_for(alice)
        assert active.get("/dashboard/").status_code == 200
        assert dormant.get("/dashboard/").status_code == 200
        # The active person uses the portal every 10 minutes for longer than an idle period.
        for _ in range(idle // 600 + 2):
            traveller.shift(timedelta(minutes=10))
            assert active.get("/dashboard/").status_code == 200
        assert dormant.get("/dashboard/").status_code == 302  # to sign in


def test_a_changed_session_is_saved_at_once(client_for, alice, acme, initech):
    Membership.objects.create(user=alice, organization=initech, role="OWNER")
    client = client_for(alice)
    assert session_writes(client) == (1, True)
    assert session_writes(client) == (0, False)
    assert client.post(f"/switch/{initech.slug}/").status_code == 302  # within the minute: saved all the same
    assert client.get("/dashboard/").wsgi_request.organization == initech
