"""Alice (Acme) cannot read, change or learn of Globex through any API route, by session or by key."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_api(alice):
    client = APIClient()
    client.force_login(alice)
    return client


@pytest.fixture
def acme_key_api(api, acme, api_key_for):
    _, raw = api_key_for(organization=acme)
    return api(raw)


@pytest.mark.isolation("api-me")
def test_me_never_mentions_globex(alice_api, acme_key_api, carol, globex):
    for client in (alice_api, acme_key_api):
        body = client.get("/api/auth/me").content.decode()
        assert "globex" not in body.lower()
        assert client.get("/api/auth/me", HTTP_X_ORGANIZATION="globex").status_code == 404
        assert client.get("/api/auth/me", HTTP_X_ORGANIZATION=str(globex.id)).status_code == 404


@pytest.mark.isolation("api-organization-list")
def test_list_excludes_globex(alice_api, acme_key_api, carol, globex):
    for client in (alice_api, acme_key_api):
        response = client.get("/api/organizations/")
        assert [o["slug"] for o in response.json()["results"]] == ["acme"]
        assert client.get("/api/organizations/?status=ACTIVE&tier=CORE_PLUS").json()["count"] == 1
        assert client.get("/api/organizations/", HTTP_X_ORGANIZATION="globex").status_code == 404


@pytest.mark.isolation("api-organization-detail")
def test_detail_of_globex_is_404(alice_api, acme_key_api, carol, globex):
    for client in (alice_api, acme_key_api):
        for ident in (str(globex.id), "globex"):
            response = client.get(f"/api/organizations/{ident}/")
            assert response.status_code == 404
            assert "Globex" not in response.content.decode()


@pytest.mark.isolation("api-organization-current")
def test_current_cannot_be_pointed_at_globex(alice_api, acme_key_api, carol, globex):
    for client in (alice_api, acme_key_api):
        assert client.get("/api/organizations/current").json()["slug"] == "acme"
        assert client.get("/api/organizations/current", HTTP_X_ORGANIZATION="globex").status_code == 404


@pytest.mark.isolation("api-organization-branding")
def test_branding_of_globex_cannot_be_read_or_changed(alice_api, acme_key_api, carol, globex):
    for client in (alice_api, acme_key_api):
        assert client.get(f"/api/organizations/{globex.id}/branding").status_code == 404
        response = client.put(f"/api/organizations/{globex.id}/branding", {"display_name": "Owned"}, format="json")
        assert response.status_code == 404
        response = client.put(
            f"/api/organizations/{globex.id}/branding",
            {"display_name": "Owned"},
            format="json",
            HTTP_X_ORGANIZATION="acme",
        )
        assert response.status_code == 404
    globex.refresh_from_db()
    assert globex.brand_display_name == ""


@pytest.mark.isolation("api-schema", "api-docs")
def test_schema_and_docs_carry_no_tenant_data(client, acme, globex, carol):
    for path in ("/api/schema/", "/api/docs/"):
        body = client.get(path).content.decode()
        assert "Globex" not in body and "Acme" not in body


@pytest.mark.isolation("health")
def test_health_carries_no_tenant_data(client, acme, globex):
    body = client.get("/health").content.decode()
    assert "globex" not in body.lower() and "acme" not in body.lower()


def test_pat_sees_acme_and_initech_but_not_globex(pat, acme, initech, globex):
    client = APIClient()
    client.force_login(pat)
    slugs = [o["slug"] for o in client.get("/api/organizations/").json()["results"]]
    assert slugs == ["acme", "initech"]
    assert client.get(f"/api/organizations/{globex.id}/").status_code == 404
    assert client.get("/api/organizations/current", HTTP_X_ORGANIZATION="initech").json()["slug"] == "initech"


def test_carol_cannot_see_acme(carol, acme, globex):
    client = APIClient()
    client.force_login(carol)
    assert client.get(f"/api/organizations/{acme.id}/").status_code == 404
    assert client.get(f"/api/organizations/{acme.id}/branding").status_code == 404
