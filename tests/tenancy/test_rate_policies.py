"""API rate-limit policies: 429 with the seconds to the window's end in Retry-After, per minute, hour and day; an
organization's policy, its partner's (counted per organization) and the default per-key rate; the usage endpoint,
the portal's "Limits and usage" section and the staff admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from tenancy.api_auth import ApiKeyRateThrottle, RateScope, policy_for_key, policy_usage
from tenancy.models import ApiKey, RatePolicy
from tests.factories import UserFactory
from tests.helpers import admin_client

pytestmark = pytest.mark.django_db

ME = "/api/auth/me"
USAGE = "/api/usage/"
AT = datetime(2026, 3, 2, 10, 0, 15, tzinfo=UTC)  # 15 seconds into a minute


def get(client: APIClient, path: str = ME) -> Any:
    return client.get(path)


def statuses(client: APIClient, count: int, path: str = ME) -> list[int]:
    return [get(client, path).status_code for _ in range(count)]


@pytest.fixture
def acme_key(api: Any, acme: Any, api_key_for: Any) -> APIClient:
    _, raw = api_key_for(organization=acme)
    return api(raw)


@pytest.fixture
def default_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default per-key rate, whatever API_KEY_RATE says where the tests run."""
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "4/min", "public": "60/min"})


def test_the_minute_limit_answers_429_with_the_seconds_left_in_the_minute(acme, acme_key):
    RatePolicy.objects.create(organization=acme, per_minute=3)
    with time_machine.travel(AT, tick=False):
        assert statuses(acme_key, 3) == [200, 200, 200]
        refused = get(acme_key)
        assert refused.status_code == 429
        assert refused["Retry-After"] == "45"
        assert refused.json() == {"detail": "Request was throttled. Expected available in 45 seconds."}
    with time_machine.travel(AT + timedelta(seconds=44.5), tick=False):
        refused = get(acme_key)
        assert (refused.status_code, refused["Retry-After"]) == (429, "1")  # 0.5 s, rounded up
    with time_machine.travel(datetime(2026, 3, 2, 10, 1, tzinfo=UTC), tick=False):
        assert statuses(acme_key, 3) == [200, 200, 200]  # a new minute
        assert get(acme_key).status_code == 429


def test_the_hour_limit_counts_across_minutes_and_resets_on_the_hour(acme, acme_key):
    RatePolicy.objects.create(organization=acme, per_hour=4)
    for minute in (0, 10, 20, 30):
        with time_machine.travel(datetime(2026, 3, 2, 10, minute, tzinfo=UTC), tick=False):
            assert get(acme_key).status_code == 200
    with time_machine.travel(datetime(2026, 3, 2, 10, 59, 30, tzinfo=UTC), tick=False):
        refused = get(acme_key)
        assert (refused.status_code, refused["Retry-After"]) == (429, "30")
    with time_machine.travel(datetime(2026, 3, 2, 11, 0, tzinfo=UTC), tick=False):
        assert statuses(acme_key, 4) == [200, 200, 200, 200]


def test_the_day_limit_resets_at_midnight_utc(acme, acme_key):
    RatePolicy.objects.create(organization=acme, per_minute=100, per_day=2)
    with time_machine.travel(datetime(2026, 3, 2, 1, 0, tzinfo=UTC), tick=False):
        assert statuses(acme_key, 2) == [200, 200]
    with time_machine.travel(datetime(2026, 3, 2, 23, 0, tzinfo=UTC), tick=False):
        refused = get(acme_key)
        assert (refused.status_code, refused["Retry-After"]) == (429, "3600")
    with time_machine.travel(datetime(2026, 3, 3, 0, 0, tzinfo=UTC), tick=False):
        assert get(acme_key).status_code == 200


def test_when_two_windows_are_full_retry_after_is_the_longer_wait(acme, acme_key):
    RatePolicy.objects.create(organization=acme, per_minute=2, per_hour=2)
    with time_machine.travel(AT, tick=False):
        assert statuses(acme_key, 2) == [200, 200]
        refused = get(acme_key)
    assert (refused.status_code, refused["Retry-After"]) == (429, str(3600 - 15))


def test_refused_requests_are_not_counted(acme, acme_key):
    policy = RatePolicy.objects.create(organization=acme, per_minute=2, per_day=10)
    with time_machine.travel(AT, tick=False):
        assert statuses(acme_key, 5) == [200, 200, 429, 429, 429]
        usage = {w.window: w.used for w in policy_usage(RateScope(policy=policy, counted=f"organization:{acme.pk}"))}
    assert usage == {"minute": 2, "hour": None, "day": 2}


def test_a_key_without_a_policy_keeps_the_default_rate(acme, globex, api, api_key_for, default_rate):
    RatePolicy.objects.create(organization=globex, per_minute=1)
    _, raw = api_key_for(organization=acme)
    with time_machine.travel(AT, tick=False):
        assert statuses(api(raw), 5) == [200, 200, 200, 200, 429]


def test_a_policy_replaces_the_default_rate(acme, acme_key, default_rate):
    RatePolicy.objects.create(organization=acme, per_minute=6)
    with time_machine.travel(AT, tick=False):
        assert statuses(acme_key, 7) == [200] * 6 + [429]


def test_a_policy_without_limits_lets_its_keys_through(acme, acme_key, default_rate):
    RatePolicy.objects.create(organization=acme, note="Load test this week")
    with time_machine.travel(AT, tick=False):
        assert statuses(acme_key, 8) == [200] * 8


def test_an_inactive_policy_governs_nothing(acme, acme_key, default_rate):
    RatePolicy.objects.create(organization=acme, per_minute=1, active=False)
    with time_machine.travel(AT, tick=False):
        assert statuses(acme_key, 5) == [200, 200, 200, 200, 429]


def test_a_partner_policy_covers_each_of_its_organizations_and_its_own_keys(
    summit, acme, initech, globex, api, api_key_for, default_rate
):
    RatePolicy.objects.create(partner=summit, per_minute=2)
    _, acme_raw = api_key_for(organization=acme)
    _, other_acme_raw = api_key_for(organization=acme)
    _, initech_raw = api_key_for(organization=initech)
    _, summit_raw = api_key_for(partner=summit)
    _, globex_raw = api_key_for(organization=globex)  # not Summit's: the default rate
    with time_machine.travel(AT, tick=False):
        # Acme's keys share Acme's counters...
        assert statuses(api(acme_raw), 1) + statuses(api(other_acme_raw), 2) == [200, 200, 429]
        # ...which neither Initech's keys nor the partner's own keys use.
        assert statuses(api(initech_raw), 3) == [200, 200, 429]
        assert statuses(api(summit_raw, "acme"), 3) == [200, 200, 429]
        assert statuses(api(globex_raw), 5) == [200, 200, 200, 200, 429]


def test_an_organization_policy_wins_over_its_partner_policy(summit, acme, initech, api, api_key_for):
    RatePolicy.objects.create(partner=summit, per_minute=1)
    RatePolicy.objects.create(organization=acme, per_minute=3)
    _, acme_raw = api_key_for(organization=acme)
    _, initech_raw = api_key_for(organization=initech)
    with time_machine.travel(AT, tick=False):
        assert statuses(api(acme_raw), 4) == [200, 200, 200, 429]
        assert statuses(api(initech_raw), 2) == [200, 429]


@pytest.mark.parametrize("owner", ["organization", "partner", "none"])
def test_a_key_loaded_with_its_policies_finds_its_policy_without_a_query(
    summit, acme, api_key_for, django_assert_num_queries, owner
):
    expected = {
        "organization": RatePolicy.objects.create(organization=acme, per_minute=1) if owner == "organization" else None,
        "partner": RatePolicy.objects.create(partner=summit, per_minute=2) if owner == "partner" else None,
        "none": None,
    }[owner]
    org_key, _ = api_key_for(organization=acme)
    partner_key, _ = api_key_for(partner=summit)
    joins = ("organization__rate_policy", "organization__partner__rate_policy", "partner__rate_policy")
    loaded = {key.pk: key for key in ApiKey.objects.select_related(*joins)}
    with django_assert_num_queries(0):
        found = (policy_for_key(loaded[org_key.pk]), policy_for_key(loaded[partner_key.pk]))
    assert found == (expected, expected if owner == "partner" else None)
    plain = ApiKey.objects.select_related("organization").get(pk=org_key.pk)
    with django_assert_num_queries(1):  # without the joins: one query
        assert policy_for_key(plain) == expected


def test_people_signed_in_are_not_counted_by_policies(acme, alice):
    RatePolicy.objects.create(organization=acme, per_minute=1)
    client = APIClient()
    client.force_login(alice)
    with time_machine.travel(AT, tick=False):
        assert statuses(client, 3) == [200, 200, 200]


def test_a_policy_belongs_to_exactly_one_owner_and_limits_are_positive(summit, acme):
    for values in ({}, {"partner": summit, "organization": acme}, {"organization": acme, "per_hour": 0}):
        with pytest.raises(IntegrityError), transaction.atomic():
            RatePolicy.objects.create(**values)
    RatePolicy.objects.create(organization=acme)
    with pytest.raises(IntegrityError), transaction.atomic():
        RatePolicy.objects.create(organization=acme)  # one per organization


# -- usage ----------------------------------------------------------------------------------------------------------


def test_usage_reports_the_policy_windows_with_this_request_counted(acme, acme_key):
    RatePolicy.objects.create(organization=acme, per_minute=10, per_day=1000, note="Staff only: contract 7")
    with time_machine.travel(AT, tick=False):
        assert statuses(acme_key, 3) == [200, 200, 200]
        body = get(acme_key, USAGE).json()
    assert body["policy"] == {"applies_to": "organization", "owner": "acme"}  # staff's note is not shown
    assert body["windows"] == [
        {"window": "minute", "limit": 10, "used": 4, "remaining": 6, "resets_at": "2026-03-02T10:01:00+00:00"},
        {"window": "hour", "limit": None, "used": None, "remaining": None, "resets_at": None},
        {"window": "day", "limit": 1000, "used": 4, "remaining": 996, "resets_at": "2026-03-03T00:00:00+00:00"},
    ]
    assert body["key"]["prefix"] and set(body["key"]) == {"id", "name", "prefix"}


def test_usage_of_a_partner_policy_counts_the_organization_alone(summit, acme, initech, api, api_key_for):
    RatePolicy.objects.create(partner=summit, per_minute=50)
    _, acme_raw = api_key_for(organization=acme)
    _, initech_raw = api_key_for(organization=initech)
    with time_machine.travel(AT, tick=False):
        assert statuses(api(initech_raw), 7) == [200] * 7
        body = get(api(acme_raw), "/api/usage").json()
    assert body["policy"] == {"applies_to": "partner", "owner": "summit"}
    assert body["windows"][0] == {
        "window": "minute",
        "limit": 50,
        "used": 1,
        "remaining": 49,
        "resets_at": "2026-03-02T10:01:00+00:00",
    }


def test_usage_without_a_policy_reports_the_default_rate_in_clock_windows(acme, acme_key, default_rate):
    with time_machine.travel(AT, tick=False):
        get(acme_key)
    with time_machine.travel(AT + timedelta(seconds=20), tick=False):
        body = get(acme_key, USAGE).json()
    assert body["policy"] is None
    # Both requests fall in the minute from 10:00:00, which ends at 10:01:00.
    assert body["windows"] == [
        {"window": "minute", "limit": 4, "used": 2, "remaining": 2, "resets_at": "2026-03-02T10:01:00+00:00"}
    ]
    with time_machine.travel(AT + timedelta(seconds=50), tick=False):
        body = get(acme_key, USAGE).json()
    assert body["windows"][0]["used"] == 1  # a new minute: this request alone


def test_usage_is_for_api_keys(alice):
    client = APIClient()
    client.force_login(alice)
    response = client.get(USAGE)
    assert response.status_code == 403
    assert "API keys" in response.json()["detail"]


@pytest.mark.isolation("api-usage")
def test_usage_shows_nothing_of_another_organization(acme, globex, api, api_key_for):
    RatePolicy.objects.create(organization=acme, per_minute=10)
    RatePolicy.objects.create(organization=globex, per_minute=99)
    _, acme_raw = api_key_for(organization=acme)
    _, globex_raw = api_key_for(organization=globex)
    with time_machine.travel(AT, tick=False):
        assert statuses(api(globex_raw), 5) == [200] * 5
        assert api(acme_raw, "globex").get(USAGE).status_code == 404
        body = api(acme_raw).get(USAGE).json()
    assert body["policy"]["owner"] == "acme"
    # Acme's two requests (the refused one counts: it was served, with a 404), nothing of Globex's five.
    assert [(w["limit"], w["used"]) for w in body["windows"]] == [(10, 2), (None, None), (None, None)]
    assert "globex" not in str(body).lower()


# -- the portal and the admin ----------------------------------------------------------------------------------------


def test_the_api_keys_page_shows_the_limits_and_what_is_used(acme, acme_key, alice, client_for):
    RatePolicy.objects.create(organization=acme, per_minute=10, per_hour=500)
    with time_machine.travel(AT, tick=False):
        statuses(acme_key, 3)
        response = client_for(alice).get("/settings/api-keys/")
    assert response.status_code == 200
    windows = response.context["limits"]["windows"]
    assert [(w.window, w.limit, w.used) for w in windows] == [("minute", 10, 3), ("hour", 500, 3), ("day", None, None)]
    body = response.content.decode()
    assert "Limits and usage" in body and "<td>500</td>" in body and "no limit" in body


def test_the_api_keys_page_counts_the_organization_alone_under_a_partner_policy(
    summit, acme, initech, alice, api, api_key_for, client_for
):
    RatePolicy.objects.create(partner=summit, per_day=900)
    _, acme_raw = api_key_for(organization=acme)
    _, initech_raw = api_key_for(organization=initech)
    with time_machine.travel(AT, tick=False):
        statuses(api(initech_raw), 4)
        statuses(api(acme_raw), 1)
        response = client_for(alice).get("/settings/api-keys/")
    windows = response.context["limits"]["windows"]
    assert [(w.window, w.limit, w.used) for w in windows] == [
        ("minute", None, None),
        ("hour", None, None),
        ("day", 900, 1),
    ]
    assert "the limits Summit IT has for each of its organizations" in response.content.decode()


def test_the_api_keys_page_states_the_default_rate_without_a_policy(acme, alice, client_for, default_rate):
    body = client_for(alice).get("/settings/api-keys/").content.decode()
    assert "Each key may make 4 requests per minute" in body


def test_staff_set_a_policy_in_the_admin(acme, summit, acme_key):
    staff = UserFactory(email="ops@keel.test", is_staff=True, is_superuser=True)
    client = admin_client(staff)
    both = client.post(
        "/admin/tenancy/ratepolicy/add/",
        {"partner": str(summit.pk), "organization": str(acme.pk), "per_minute": "5", "active": "on"},
    )
    assert both.status_code == 200 and "exactly one of partner or organization" in both.content.decode()
    zero = client.post("/admin/tenancy/ratepolicy/add/", {"organization": str(acme.pk), "per_minute": "0"})
    assert zero.status_code == 200 and not RatePolicy.objects.exists()
    created = client.post(
        "/admin/tenancy/ratepolicy/add/", {"organization": str(acme.pk), "per_minute": "2", "active": "on"}
    )
    assert created.status_code == 302
    assert client.get("/admin/tenancy/ratepolicy/").status_code == 200
    with time_machine.travel(AT, tick=False):
        assert statuses(acme_key, 3) == [200, 200, 429]
