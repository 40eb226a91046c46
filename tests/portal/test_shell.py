"""The portal shell: the current organization, switching, suspension, navigation, branding and logos."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal import nav
from portal.access import is_owner
from tenancy.models import Role
from tenancy.services import branding_update, organization_suspend
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

# The smallest valid PNG (1 by 1 pixel, transparent): the service checks the magic bytes.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.mark.isolation("portal:landing")
def test_landing_page_describes_keel_and_exposes_no_tenant(client, client_for, alice, carol, globex):
    body = client.get("/").content.decode()
    assert "Keel" in body and "Managed Service Providers" in body
    assert reverse("portal:login") in body
    assert "Globex" not in body and "Acme" not in body
    signed_in = client_for(alice).get("/").content.decode()
    assert "Go to your dashboard" in signed_in and "Globex" not in signed_in


@pytest.mark.isolation("portal:dashboard")
def test_dashboard_shows_the_organization_and_nothing_of_globex(client_for, alice, bob, carol, globex, acme):
    response = client_for(alice).get("/dashboard/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Acme Pty Ltd" in body
    assert "Core+" in body and "Active" in body
    assert response.context["member_count"] == 2
    assert "globex" not in body.lower()
    assert response.context["recent_events"] is not None  # alice is an owner


def test_members_do_not_see_the_activity_feed(client_for, bob, acme):
    response = client_for(bob).get("/dashboard/")
    assert response.status_code == 200
    assert response.context["recent_events"] is None
    assert "Recent activity" not in response.content.decode()


def test_current_organization_defaults_to_the_first_and_the_role_is_known(client_for, alice, acme, initech):
    MembershipFactory(user=alice, organization=initech, role=Role.MEMBER)
    client = client_for(alice)
    response = client.get("/dashboard/")
    assert response.wsgi_request.organization == acme
    assert response.wsgi_request.membership_role == Role.OWNER
    assert client.session["organization_id"] == str(acme.pk)


@pytest.mark.isolation("portal:switch_org")
def test_switching_to_another_of_ones_organizations_and_never_to_globex(
    client_for, alice, acme, initech, globex, carol
):
    MembershipFactory(user=alice, organization=initech, role=Role.MEMBER)
    client = client_for(alice)
    assert client.get("/switch/initech/").status_code == 405
    response = client.post("/switch/initech/")
    assert response.status_code == 302
    page = client.get("/dashboard/")
    assert page.wsgi_request.organization == initech
    assert page.wsgi_request.membership_role == Role.MEMBER
    # Globex exists but is not hers; an unknown slug behaves the same.
    assert client.post("/switch/globex/").status_code == 404
    assert client.post("/switch/no-such-org/").status_code == 404
    assert client.get("/dashboard/").wsgi_request.organization == initech
    # A forged session value is ignored too.
    session = client.session
    session["organization_id"] = str(globex.pk)
    session.save()
    page = client.get("/dashboard/")
    assert page.wsgi_request.organization == acme
    assert "globex" not in page.content.decode().lower()


def test_partner_admins_see_their_partners_organizations_as_managers(client_for, pat, acme, initech, globex):
    client = client_for(pat)
    page = client.get("/dashboard/")
    request = page.wsgi_request
    assert [org.slug for org in request.organizations] == ["acme", "initech"]
    assert request.membership_role is None and request.is_partner_admin and request.can_manage and request.is_owner
    assert "Partner admin" in page.content.decode()
    assert client.get("/settings/api-keys/").status_code == 200
    assert client.post("/switch/initech/").status_code == 302
    assert client.post("/switch/globex/").status_code == 404


def test_suspended_organization_answers_403_with_the_reason_on_every_page(client_for, alice, acme):
    organization_suspend(organization=acme, reason="Unpaid invoices since March")
    client = client_for(alice)
    for path in ("/dashboard/", "/settings/team/", "/settings/profile/", "/settings/api-keys/"):
        response = client.get(path)
        assert response.status_code == 403, path
        body = response.content.decode()
        assert "Acme Pty Ltd is suspended" in body
        assert "Unpaid invoices since March" in body
    assert client.post("/settings/team/invite/", {"email": "x@acme.test", "role": "MEMBER"}).status_code == 403


def test_a_person_in_several_organizations_can_switch_away_from_a_suspended_one(client_for, alice, acme, initech):
    MembershipFactory(user=alice, organization=initech, role=Role.ADMIN)
    organization_suspend(organization=acme, reason="Contract ended")
    client = client_for(alice)
    blocked = client.get("/dashboard/")
    assert blocked.status_code == 403
    assert "Switch to Initech" in blocked.content.decode()
    client.post("/switch/initech/")
    assert client.get("/dashboard/").status_code == 200


def test_someone_in_no_organization_gets_an_explanation(client_for, db):
    from tests.factories import UserFactory

    loner = UserFactory(email="loner@example.test")
    response = client_for(loner).get("/dashboard/")
    assert response.status_code == 403
    assert "not part of an organization" in response.content.decode()
    assert "/admin/" not in response.content.decode()


def test_staff_in_no_organization_who_follow_view_site_are_pointed_back_to_the_staff_admin(client_for, db):
    from tests.factories import UserFactory

    staff = UserFactory(email="ops@keel.test", is_staff=True)
    response = client_for(staff).get("/dashboard/")
    assert response.status_code == 403
    assert '<a href="/admin/">staff admin</a>' in response.content.decode()
    assert "Ask an owner" not in response.content.decode()


def test_navigation_has_dashboard_and_settings_and_takes_registrations(client_for, alice):
    body = client_for(alice).get("/dashboard/").content.decode()
    assert 'href="/dashboard/" aria-current="page"' in body and 'href="/settings/"' in body
    assert 'href="/billing/">Billing<' in body  # registered by the billing pages, for owners and admins
    nav.register("Extra", "portal:settings_team", order=50, visible=is_owner)
    try:
        body = client_for(alice).get("/dashboard/").content.decode()
        assert body.index(">Dashboard<") < body.index(">Extra<") < body.index(">Settings<")
    finally:
        nav.main_menu.unregister("portal:settings_team")


def test_settings_menu_follows_the_role(client_for, alice, bob):
    owner = client_for(alice).get("/settings/profile/").content.decode()
    member = client_for(bob).get("/settings/profile/").content.decode()
    for label in ("Team", "Branding", "API keys", "Audit log", "Data export", "Security"):
        assert f">{label}<" in owner
    assert ">Team<" in member
    for label in ("Branding", "API keys", "Audit log", "Data export", "Security"):
        assert f">{label}<" not in member


def test_branding_is_applied_as_css_variables_and_logo(client_for, alice, acme):
    branding_update(
        organization=acme, display_name="Acme Cloud", primary_color="#112233", accent_color="#ABCDEF", logo=PNG
    )
    acme.refresh_from_db()
    body = client_for(alice).get("/dashboard/").content.decode()
    assert "--brand-primary:#112233;" in body
    assert "--brand-accent:#abcdef;" in body
    assert "Acme Cloud" in body
    assert f"/branding/{acme.pk}/logo?v={acme.brand_logo_version}" in body


@pytest.mark.isolation("portal:brand_logo")
def test_logo_is_public_cacheable_and_revalidated_by_version(client, acme, globex, carol):
    branding_update(organization=acme, logo=PNG)
    acme.refresh_from_db()
    url = f"/branding/{acme.pk}/logo"
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content == PNG
    assert response["ETag"] == f'"{acme.brand_logo_version}"'
    assert "public" in response["Cache-Control"] and "max-age=" in response["Cache-Control"]
    assert client.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    # Only logo bytes: no organization data, and an organization without a logo is simply absent.
    assert b"Acme" not in response.content
    assert client.get(f"/branding/{globex.pk}/logo").status_code == 404
    assert client.get("/branding/00000000-0000-0000-0000-000000000000/logo").status_code == 404
    assert client.post(url).status_code == 405


def test_unsafe_branding_colours_never_reach_the_style_block(client_for, alice, acme):
    # Written past the service, as a corrupt row would be.
    type(acme).objects.filter(pk=acme.pk).update(brand_primary_color="red;}<b")
    body = client_for(alice).get("/dashboard/").content.decode()
    assert "--brand-primary:#1f4e79;" in body
    assert "red;}" not in body
