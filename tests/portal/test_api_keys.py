"""API keys in the portal: created with scopes and expiry, shown once, listed, revoked, rotated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tenancy.models import ApiKey, AuditEvent
from tenancy.secrets import token_hash
from tenancy.services import api_key_create, api_key_revoke
from tenancy.services.api_keys import api_key_lookup

pytestmark = pytest.mark.django_db

KEYS = "/settings/api-keys/"


@pytest.fixture
def globex_key(globex, carol):
    key, _ = api_key_create(name="Globex nightly sync", scopes=["read"], organization=globex, created_by=carol)
    return key


@pytest.mark.isolation("portal:settings_api_keys")
def test_the_raw_key_is_shown_once_and_never_again(client_for, alice, acme, globex_key):
    client = client_for(alice)
    future = (timezone.localdate() + timedelta(days=30)).isoformat()
    response = client.post(KEYS, {"name": "Reseller sync", "scopes": ["read", "write"], "expires_at": future})
    assert response.status_code == 200
    raw = response.context["raw"]
    assert raw.startswith("keel_") and raw in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(name="Reseller sync")
    assert key.organization == acme and key.scopes == ["read", "write"]
    assert key.expires_at is not None and key.expires_at > timezone.now()
    assert key.key_hash == token_hash(raw) and api_key_lookup(raw) == key
    listing = client.get(KEYS)
    body = listing.content.decode()
    assert raw not in body
    assert key.prefix in body and "Reseller sync" in body
    # Globex's key is not listed, nor anything else of Globex.
    assert "globex" not in body.lower() and globex_key.prefix not in body
    assert AuditEvent.objects.for_org(acme).filter(action="api_key.created").exists()


def test_create_errors_name_the_field(client_for, alice):
    client = client_for(alice)
    no_scope = client.post(KEYS, {"name": "Sync"})
    assert no_scope.status_code == 400 and "scopes" in no_scope.context["form"].errors
    unknown = client.post(KEYS, {"name": "Sync", "scopes": ["root"]})
    assert unknown.status_code == 400 and "scopes" in unknown.context["form"].errors
    past = client.post(KEYS, {"name": "Sync", "scopes": ["read"], "expires_at": "2001-01-01"})
    assert past.status_code == 400 and "expires_at" in past.context["form"].errors
    no_name = client.post(KEYS, {"name": "", "scopes": ["read"]})
    assert no_name.status_code == 400 and "name" in no_name.context["form"].errors
    assert not ApiKey.objects.exists()


def test_members_cannot_see_or_create_keys(client_for, bob):
    client = client_for(bob)
    assert client.get(KEYS).status_code == 404
    assert client.post(KEYS, {"name": "Mine", "scopes": ["read"]}).status_code == 404
    assert not ApiKey.objects.exists()


@pytest.mark.isolation("portal:settings_api_key_revoke")
def test_revoke_works_here_and_is_404_for_globex(client_for, alice, acme, globex_key):
    key, _ = api_key_create(name="Old", scopes=["read"], organization=acme)
    client = client_for(alice)
    assert client.post(reverse("portal:settings_api_key_revoke", args=[globex_key.pk])).status_code == 404
    globex_key.refresh_from_db()
    assert globex_key.revoked_at is None
    response = client.post(reverse("portal:settings_api_key_revoke", args=[key.pk]))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "revoked" in client.get(KEYS).content.decode()


@pytest.mark.isolation("portal:settings_api_key_rotate")
def test_rotate_shows_the_new_key_once_and_is_404_for_globex(client_for, alice, acme, globex_key):
    key, old_raw = api_key_create(name="Rotating", scopes=["read"], organization=acme)
    client = client_for(alice)
    assert client.post(reverse("portal:settings_api_key_rotate", args=[globex_key.pk])).status_code == 404
    assert ApiKey.objects.for_org(globex_key.organization).count() == 1
    response = client.post(reverse("portal:settings_api_key_rotate", args=[key.pk]))
    assert response.status_code == 200
    new_raw = response.context["raw"]
    assert new_raw != old_raw and new_raw in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    rotated = api_key_lookup(new_raw)
    assert rotated is not None and rotated.organization == acme
    assert new_raw not in client.get(KEYS).content.decode()
    # A revoked key cannot be brought back by rotating it.
    again = client.post(reverse("portal:settings_api_key_rotate", args=[key.pk]))
    assert again.status_code == 409
    assert ApiKey.objects.for_org(acme).filter(revoked_at__isnull=True).count() == 1


def test_revoking_twice_is_harmless(client_for, alice, acme):
    key, _ = api_key_create(name="Twice", scopes=["read"], organization=acme)
    api_key_revoke(api_key=key)
    assert client_for(alice).post(reverse("portal:settings_api_key_revoke", args=[key.pk])).status_code == 302
    assert AuditEvent.objects.for_org(acme).filter(action="api_key.revoked").count() == 1
