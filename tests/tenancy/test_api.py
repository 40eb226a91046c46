"""The partner API base: who am I, organizations, branding; organization and partner keys; X-Organization."""

from __future__ import annotations

import base64

import pytest

from tenancy.models import AuditEvent
from tenancy.services import organization_suspend

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_me_for_an_organization_key(api, acme, api_key_for):
    key, raw = api_key_for(organization=acme, scopes=("read",))
    body = api(raw).get("/api/auth/me").json()
    assert body["kind"] == "api_key"
    assert body["api_key"]["prefix"] == key.prefix
    assert body["api_key"]["organization"] == "acme"
    assert body["organization"]["slug"] == "acme"
    assert body["organizations_count"] == 1


def test_me_for_a_signed_in_person(alice, acme):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(alice)
    body = client.get("/api/auth/me/").json()
    assert body["kind"] == "user"
    assert body["user"]["email"] == "alice@acme.test"
    assert body["organization"]["slug"] == "acme"


def test_trailing_slash_optional(api, acme, api_key_for):
    _, raw = api_key_for(organization=acme)
    for path in (
        "/api/organizations",
        "/api/organizations/",
        "/api/organizations/current",
        "/api/organizations/current/",
        f"/api/organizations/{acme.id}/branding",
        f"/api/organizations/{acme.id}/branding/",
    ):
        assert api(raw).get(path).status_code == 200, path


def test_organization_key_lists_only_its_organization(api, acme, initech, globex, api_key_for):
    _, raw = api_key_for(organization=acme)
    body = api(raw).get("/api/organizations/").json()
    assert [o["slug"] for o in body["results"]] == ["acme"]
    assert body["count"] == 1


def test_partner_key_lists_its_partners_organizations(api, summit, acme, initech, globex, api_key_for):
    _, raw = api_key_for(partner=summit)
    body = api(raw).get("/api/organizations/").json()
    assert [o["slug"] for o in body["results"]] == ["acme", "initech"]


def test_partner_key_picks_an_organization_by_slug_or_id(api, summit, acme, initech, api_key_for):
    _, raw = api_key_for(partner=summit)
    assert api(raw, organization="initech").get("/api/organizations/current").json()["slug"] == "initech"
    assert api(raw, organization=str(acme.id)).get("/api/organizations/current").json()["slug"] == "acme"
    narrowed = api(raw, organization="acme").get("/api/organizations/").json()
    assert [o["slug"] for o in narrowed["results"]] == ["acme"]


def test_partner_key_cannot_pick_an_organization_outside_its_partner(api, summit, acme, globex, api_key_for):
    _, raw = api_key_for(partner=summit)
    response = api(raw, organization="globex").get("/api/organizations/current")
    assert response.status_code == 404
    assert "Globex" not in response.content.decode()


def test_partner_key_without_header_has_no_current_organization_and_writes_need_it(api, summit, acme, api_key_for):
    _, raw = api_key_for(partner=summit)
    response = api(raw).get("/api/organizations/current")
    assert response.status_code == 400
    assert "X-Organization" in response.json()


def test_organization_key_cannot_act_for_another_organization(api, acme, globex, api_key_for):
    _, raw = api_key_for(organization=acme)
    assert api(raw, organization="globex").get("/api/organizations/current").status_code == 404
    assert api(raw).get(f"/api/organizations/{globex.id}/").status_code == 404
    assert api(raw).get("/api/organizations/globex/").status_code == 404


def test_branding_get_and_put(api, acme, api_key_for):
    _, raw = api_key_for(organization=acme)
    response = api(raw).put(
        f"/api/organizations/{acme.id}/branding",
        {
            "display_name": "Acme IT",
            "primary_color": "#112233",
            "support_email": "help@acme.test",
            "logo": base64.b64encode(PNG).decode(),
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["display_name"] == "Acme IT"
    assert body["primary_color"] == "#112233"
    assert body["logo_url"].startswith(f"/branding/{acme.id}/logo?v=")
    acme.refresh_from_db()
    assert bytes(acme.brand_logo) == PNG
    assert AuditEvent.objects.filter(action="organization.branding_updated", organization=acme).exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"primary_color": "red"}, "primary_color"),
        ({"support_email": "not-an-email"}, "support_email"),
        ({"logo": "%%%"}, "logo"),
        ({"logo": base64.b64encode(b"GIF89a....").decode()}, "logo"),
        ({"logo": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 300_000).decode()}, "logo"),
    ],
)
def test_branding_bad_input_names_the_field_and_changes_nothing(api, acme, api_key_for, payload, field):
    _, raw = api_key_for(organization=acme)
    response = api(raw).put(
        f"/api/organizations/{acme.id}/branding", {"display_name": "Changed", **payload}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    acme.refresh_from_db()
    assert acme.brand_display_name == ""


def test_member_cannot_change_branding_but_owner_can(acme, alice, bob):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(bob)
    assert (
        client.put(f"/api/organizations/{acme.id}/branding", {"display_name": "Bob's"}, format="json").status_code
        == 403
    )
    client.force_login(alice)
    assert (
        client.put(f"/api/organizations/{acme.id}/branding", {"display_name": "Alice's"}, format="json").status_code
        == 200
    )


def test_suspended_organization_key_is_403_with_a_clear_message(api, acme, api_key_for):
    _, raw = api_key_for(organization=acme)
    organization_suspend(organization=acme, reason="Unpaid invoices")
    response = api(raw).get("/api/organizations/current")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("Organization acme is suspended: Unpaid invoices")


def test_partner_key_is_refused_for_its_suspended_organization_only(api, summit, acme, initech, api_key_for):
    _, raw = api_key_for(partner=summit)
    organization_suspend(organization=acme)
    assert api(raw, organization="acme").get("/api/organizations/current").status_code == 403
    assert api(raw, organization="initech").get("/api/organizations/current").status_code == 200
    # The partner still sees the suspended organization listed, with its status.
    listed = {o["slug"]: o["status"] for o in api(raw).get("/api/organizations/").json()["results"]}
    assert listed == {"acme": "SUSPENDED", "initech": "ACTIVE"}


def test_organization_list_query_count_does_not_grow(api, summit, api_key_for, django_assert_max_num_queries):
    from tests.factories import OrganizationFactory

    _, raw = api_key_for(partner=summit)
    OrganizationFactory.create_batch(30, partner=summit)
    # key lookup, last-used update, count, page of organizations (partner joined)
    with django_assert_max_num_queries(4):
        response = api(raw).get("/api/organizations/?page_size=30")
    assert len(response.json()["results"]) == 30


def test_schema_and_docs_are_served(client, db):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_session_that_owes_a_second_factor_cannot_use_the_api(alice, acme):
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from rest_framework.test import APIClient

    TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    client = APIClient()
    client.force_login(alice)  # password only: the second factor was not passed
    response = client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "Finish two-factor sign-in in the portal first."}


def test_rotating_a_revoked_key_is_a_conflict(acme, api_key_for):
    from tenancy.errors import ConflictError
    from tenancy.services import api_key_revoke, api_key_rotate

    key, _ = api_key_for(organization=acme)
    api_key_revoke(api_key=key)
    with pytest.raises(ConflictError):
        api_key_rotate(api_key=key)
