"""API keys: hashed, scoped, expiring, revocable, rotatable, throttled."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tenancy.api_auth import ApiKeyRateThrottle
from tenancy.errors import ServiceValidationError
from tenancy.models import ApiKey, AuditEvent
from tenancy.secrets import token_hash
from tenancy.services import api_key_create, api_key_revoke, api_key_rotate

pytestmark = pytest.mark.django_db


def test_key_is_stored_only_as_a_hash_with_a_visible_prefix(acme, api_key_for):
    key, raw = api_key_for(organization=acme)
    stored = ApiKey.objects.get(pk=key.pk)
    assert raw.startswith(f"keel_{stored.prefix}_")
    assert stored.key_hash == token_hash(raw)
    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert AuditEvent.objects.filter(action="api_key.created", organization=acme, target_id=str(key.pk)).exists()


def test_unknown_scope_and_missing_owner_are_rejected_by_field(acme):
    with pytest.raises(ServiceValidationError) as exc:
        api_key_create(name="", scopes=["read", "root"])
    assert set(exc.value.message_dict) == {"name", "owner", "scopes"}
    assert "root" in exc.value.message_dict["scopes"][0]
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer keel_nope_nope", "Invalid API key."),
        ("Bearer not-even-a-keel-key", "Invalid API key."),
        ("Bearer", "Malformed Authorization header: expected 'Bearer <api key>'."),
    ],
)
def test_wrong_keys_are_401(api, acme, header, detail):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_no_credentials_is_401(api):
    assert api().get("/api/organizations/").status_code == 401


def test_revoked_key_is_401(api, acme, api_key_for, alice):
    key, raw = api_key_for(organization=acme)
    assert api(raw).get("/api/auth/me").status_code == 200
    api_key_revoke(api_key=key, actor=alice)
    response = api(raw).get("/api/auth/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "This API key has been revoked."}
    assert AuditEvent.objects.filter(action="api_key.revoked", actor=alice).count() == 1


def test_expired_key_is_401(api, acme):
    _key, raw = api_key_create(
        name="short", scopes=["read"], organization=acme, expires_at=timezone.now() + timedelta(days=1)
    )
    assert api(raw).get("/api/auth/me").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        response = api(raw).get("/api/auth/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "This API key has expired."}


def test_expiry_must_be_in_the_future(acme):
    with pytest.raises(ServiceValidationError) as exc:
        api_key_create(name="k", scopes=["read"], organization=acme, expires_at=timezone.now() - timedelta(seconds=1))
    assert "expires_at" in exc.value.message_dict


def test_read_only_key_cannot_write(api, acme, api_key_for):
    _, raw = api_key_for(organization=acme, scopes=("read",))
    response = api(raw).put(f"/api/organizations/{acme.id}/branding", {"display_name": "Hacked"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "This API key lacks the scope(s): write."}
    acme.refresh_from_db()
    assert acme.brand_display_name == ""


def test_write_only_key_cannot_read(api, acme, api_key_for):
    _, raw = api_key_for(organization=acme, scopes=("write",))
    assert api(raw).get("/api/organizations/").status_code == 403


def test_rotation_revokes_the_old_secret_and_keeps_settings(api, acme, api_key_for, alice):
    key, raw = api_key_for(organization=acme, scopes=("read",))
    new_key, new_raw = api_key_rotate(api_key=key, actor=alice)
    assert api(raw).get("/api/auth/me").status_code == 401
    me = api(new_raw).get("/api/auth/me").json()
    assert me["api_key"]["scopes"] == ["read"]
    assert me["api_key"]["name"] == key.name
    assert new_key.organization_id == acme.id


def test_last_used_is_recorded_at_most_once_a_minute(api, acme, api_key_for, django_assert_num_queries):
    key, raw = api_key_for(organization=acme)
    with time_machine.travel(timezone.now(), tick=False):
        api(raw).get("/api/auth/me")
        key.refresh_from_db()
        first = key.last_used_at
        assert first is not None
        api(raw).get("/api/auth/me")
        key.refresh_from_db()
        assert key.last_used_at == first
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        api(raw).get("/api/auth/me")
        key.refresh_from_db()
        assert key.last_used_at > first


def test_per_key_throttle_answers_429_per_key(api, acme, globex, api_key_for, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    _, raw = api_key_for(organization=acme)
    _, other = api_key_for(organization=globex)
    codes = [api(raw).get("/api/auth/me").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert "Retry-After" in api(raw).get("/api/auth/me")
    # Another key has its own budget.
    assert api(other).get("/api/auth/me").status_code == 200


def test_create_api_key_command_prints_the_key_once(acme, summit, capsys):
    from django.core.management import call_command

    call_command(
        "create_api_key", "--partner", "summit", "--name", "ci", "--scopes", "read,write", "--expires-days", "30"
    )
    raw = capsys.readouterr().out.strip()
    key = ApiKey.objects.get(key_hash=token_hash(raw))
    assert key.partner == summit
    assert key.scopes == ["read", "write"]
    assert key.expires_at is not None and key.expires_at > timezone.now() + timedelta(days=29)
