"""API keys and the organizations X-Organization names are read from the cache after a key's first request, and any
change to what decides access applies from the very next request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.auth_cache import GENERATION, key_entry, organization_entry
from tenancy.models import ApiKey, Membership, Organization, Partner, RatePolicy
from tenancy.secrets import token_hash
from tenancy.services.api_keys import api_key_revoke

ME = "/api/auth/me"


def queries(client: Any, path: str = ME) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    return response.status_code, [query["sql"] for query in captured.captured_queries]


def test_a_keys_second_request_reads_neither_the_key_nor_its_organization(acme, api, api_key_for):
    _, raw = api_key_for(organization=acme)
    client = api(raw)
    first, first_sql = queries(client)
    assert first == 200
    assert any("tenancy_apikey" in sql for sql in first_sql)
    second, second_sql = queries(client)
    assert second == 200
    assert not any("tenancy_apikey" in sql for sql in second_sql), second_sql
    assert cache.get(key_entry(token_hash(raw))) is not None


def test_the_organization_a_partner_key_names_is_cached_with_the_key(acme, summit, api, api_key_for):
    _, raw = api_key_for(partner=summit)
    client = api(raw, "acme")
    assert queries(client)[0] == 200
    status, sql = queries(client)
    assert status == 200
    assert not any('"tenancy_organization"."slug" = ' in query for query in sql), sql
    assert cache.get(organization_entry(token_hash(raw), "acme"))[1].slug == "acme"


def test_revoking_a_key_refuses_its_next_request(acme, api, api_key_for):
    key, raw = api_key_for(organization=acme)
    client = api(raw)
    assert client.get(ME).status_code == 200
    api_key_revoke(api_key=key)
    response = client.get(ME)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_a_key_revoked_by_a_queryset_update_is_refused_at_once(acme, api, api_key_for):
    key, raw = api_key_for(organization=acme)
    client = api(raw)
    assert client.get(ME).status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert client.get(ME).status_code == 401


def test_a_deleted_key_is_refused_at_once(acme, api, api_key_for):
    key, raw = api_key_for(organization=acme)
    client = api(raw)
    assert client.get(ME).status_code == 200
    key.delete()
    assert client.get(ME).status_code == 401


def test_narrowed_scopes_apply_to_the_next_request(acme, api, api_key_for):
    key, raw = api_key_for(organization=acme, scopes=("read", "tickets:read"))
    client = api(raw)
    assert client.get("/api/tickets/").status_code == 200
    key.scopes = ["read"]
    key.save()
    assert client.get("/api/tickets/").status_code == 403


@pytest.mark.parametrize("how", ["save", "update"])
def test_suspending_the_organization_refuses_its_keys_next_request(acme, api, api_key_for, how):
    _, raw = api_key_for(organization=acme)
    client = api(raw)
    assert client.get(ME).status_code == 200
    if how == "save":
        acme.status = "SUSPENDED"
        acme.save()
    else:
        Organization.objects.filter(pk=acme.pk).update(status="SUSPENDED")
    response = client.get(ME)
    assert response.status_code == 403
    assert "suspended" in response.json()["detail"]


def test_an_organization_moved_to_another_partner_leaves_the_old_partners_key(acme, summit, api, api_key_for):
    _, raw = api_key_for(partner=summit, scopes=("read", "tickets:read"))
    client = api(raw, "acme")
    assert client.get("/api/tickets/").status_code == 200
    acme.partner = Partner.objects.create(name="Elsewhere", slug="elsewhere")
    acme.save()
    assert client.get("/api/tickets/").status_code == 404


def test_a_new_rate_policy_governs_the_next_request(acme, api, api_key_for):
    _, raw = api_key_for(organization=acme)
    client = api(raw)
    assert client.get(ME).status_code == 200
    RatePolicy.objects.create(organization=acme, per_minute=1)
    assert [client.get(ME).status_code for _ in range(2)] == [200, 429]


def test_recording_use_does_not_drop_the_cache_and_happens_once_a_minute(acme, api, api_key_for):
    key, raw = api_key_for(organization=acme)
    client = api(raw)
    assert client.get(ME).status_code == 200  # the first use is recorded
    generation = cache.get(GENERATION)
    for _ in range(3):
        status, sql = queries(client)
        assert status == 200
        assert not any(query.startswith("UPDATE") for query in sql), sql
    assert cache.get(GENERATION) == generation
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        status, sql = queries(client)
        assert [query for query in sql if query.startswith("UPDATE")], "a minute later the use is recorded again"
        assert not any(query.startswith("UPDATE") for query in queries(client)[1])
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert cache.get(GENERATION) == generation


def test_an_unknown_key_is_never_cached_and_still_counts_as_a_failure(db, api, settings):
    settings.API_KEY_FAILURE_LIMIT = 2
    client = api("keel_nope_nope")
    assert [client.get(ME).status_code for _ in range(3)] == [401, 401, 429]
    assert cache.get(key_entry(token_hash("keel_nope_nope"))) is None


def test_a_cache_without_a_generation_starts_one_and_reads_from_the_database(acme, api, api_key_for):
    _, raw = api_key_for(organization=acme)
    client = api(raw)
    assert client.get(ME).status_code == 200
    cache.delete(GENERATION)
    status, sql = queries(client)
    assert status == 200
    assert any("tenancy_apikey" in query for query in sql)
    assert cache.get(GENERATION) is not None


def test_the_generation_changes_again_when_the_change_commits(acme, django_capture_on_commit_callbacks):
    """A request that read the database between the change and its commit cached what the commit undid."""
    with django_capture_on_commit_callbacks() as callbacks:
        acme.save()
        at_save = cache.get(GENERATION)
    assert at_save is not None
    for callback in callbacks:
        callback()
    assert cache.get(GENERATION) not in (None, at_save)


def test_the_portal_reads_a_persons_organizations_from_the_cache_until_access_changes(client_for, alice, acme, initech):
    client = client_for(alice)
    assert client.get("/dashboard/").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/dashboard/").status_code == 200
    assert not any("my_role" in query["sql"] for query in captured.captured_queries)
    membership = Membership.objects.create(user=alice, organization=initech, role="MEMBER")
    assert client.post(f"/switch/{initech.slug}/").status_code == 302
    response = client.get("/dashboard/")
    assert response.wsgi_request.organization == initech
    assert response.wsgi_request.membership_role == "MEMBER"
    Membership.objects.filter(pk=membership.pk).update(role="ADMIN")
    assert client.get("/dashboard/").wsgi_request.membership_role == "ADMIN"
    membership.delete()
    assert client.get("/dashboard/").wsgi_request.organization == acme


def test_the_portal_knows_a_persons_second_factor_from_the_cache_until_a_device_changes(client_for, alice, acme):
    client = client_for(alice)
    assert client.get("/dashboard/").wsgi_request.user_has_mfa is False
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/dashboard/").status_code == 200
    assert not any("otp_totp_totpdevice" in query["sql"] for query in captured.captured_queries)
    device = TOTPDevice.objects.create(user=alice, name="Authenticator app", confirmed=True)
    # A new confirmed device: the next page asks for its code instead of showing the dashboard.
    assert client.get("/dashboard/")["Location"].startswith("/login/verify")
    device.delete()
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert response.wsgi_request.user_has_mfa is False
