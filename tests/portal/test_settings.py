"""Personal settings (profile, password, two-factor) and organization settings (security, branding, audit, export)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.audit import audit_record
from tenancy.models import AuditEvent, Organization, Role
from tenancy.services import api_key_create, branding_update, invitation_create
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.portal.conftest import code_for
from tests.portal.test_shell import PNG

pytestmark = pytest.mark.django_db


def verified_client(client, user, device):
    """Sign ``user`` in with password and a real code from ``device``."""
    client.post("/login/", {"email": user.email, "password": PASSWORD})
    response = client.post(reverse("portal:login_verify"), {"code": code_for(device)})
    assert response.status_code == 302, response.content
    return client


# -- settings index, profile and password ---------------------------------------------------------------------------


@pytest.mark.isolation("portal:settings")
def test_settings_index_leads_to_the_profile(client_for, alice, carol, globex):
    response = client_for(alice).get("/settings/", follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:settings_profile")
    assert "globex" not in response.content.decode().lower()


@pytest.mark.isolation("portal:settings_profile")
def test_profile_changes_only_ones_own_name_and_phone(client_for, alice, carol, globex):
    client = client_for(alice)
    assert "globex" not in client.get("/settings/profile/").content.decode().lower()
    response = client.post("/settings/profile/", {"full_name": "  Alice A. Owner ", "phone": "+61 2 9999 0000"})
    assert response.status_code == 302
    alice.refresh_from_db()
    carol.refresh_from_db()
    assert (alice.full_name, alice.phone) == ("Alice A. Owner", "+61 2 9999 0000")
    assert carol.full_name == "Carol Outsider"
    bad = client.post("/settings/profile/", {"full_name": "Alice", "phone": "call me maybe"})
    assert bad.status_code == 400 and "phone" in bad.context["form"].errors
    alice.refresh_from_db()
    assert alice.phone == "+61 2 9999 0000"


@pytest.mark.isolation("portal:settings_password")
def test_password_change_keeps_the_session_and_is_audited(client_for, alice, acme, carol, globex):
    client = client_for(alice)
    assert "globex" not in client.get("/settings/password/").content.decode().lower()
    wrong = client.post(
        "/settings/password/",
        {"old_password": "nope", "new_password1": "fresh-passphrase-77", "new_password2": "fresh-passphrase-77"},
    )
    assert wrong.status_code == 400 and "old_password" in wrong.context["form"].errors
    response = client.post(
        "/settings/password/",
        {"old_password": PASSWORD, "new_password1": "fresh-passphrase-77", "new_password2": "fresh-passphrase-77"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("fresh-passphrase-77")
    assert client.get("/dashboard/").status_code == 200
    assert AuditEvent.objects.for_org(acme).filter(action="auth.password_changed").exists()
    carol.refresh_from_db()
    assert carol.check_password(PASSWORD)


# -- two-factor -------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:settings_two_factor")
def test_two_factor_page_shows_ones_own_state_only(client_for, alice, carol, globex, mfa_device):
    mfa_device(carol)
    body = client_for(alice).get("/settings/two-factor/").content.decode()
    assert "Set up two-factor sign-in" in body and "globex" not in body.lower()


@pytest.mark.isolation("portal:settings_two_factor_enrol")
def test_enrolment_only_ever_touches_ones_own_devices(client_for, alice, carol, globex, mfa_device):
    carols_device, _ = mfa_device(carol)
    client = client_for(alice)
    client.post("/settings/two-factor/enrol/")
    # A code from carol's device cannot confirm alice's enrolment.
    response = client.post("/settings/two-factor/enrol/", {"token": code_for(carols_device)})
    assert response.status_code == 400
    assert "globex" not in response.content.decode().lower()
    assert TOTPDevice.objects.filter(user=carol, confirmed=True).count() == 1
    assert not TOTPDevice.objects.filter(user=alice, confirmed=True).exists()
    # Without a pending set-up, the enrol page sends one back to the start.
    other = client_for(alice)
    assert other.get("/settings/two-factor/enrol/")["Location"] == reverse("portal:settings_two_factor")


@pytest.mark.isolation("portal:settings_two_factor_backup_codes")
def test_regenerating_backup_codes_replaces_them_and_shows_them_once(client, alice, carol, mfa_device):
    device, old_codes = mfa_device(alice)
    _, carols_codes = mfa_device(carol)
    verified_client(client, alice, device)
    response = client.post("/settings/two-factor/backup-codes/")
    assert response.status_code == 200
    new_codes = response.context["codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert "no-store" in response["Cache-Control"]
    assert set(StaticToken.objects.filter(device__user=alice).values_list("token", flat=True)) == set(new_codes)
    assert set(StaticToken.objects.filter(device__user=carol).values_list("token", flat=True)) == set(carols_codes)
    assert not any(code in client.get("/settings/two-factor/").content.decode() for code in new_codes)


@pytest.mark.isolation("portal:settings_two_factor_disable")
def test_disabling_needs_the_password_and_is_refused_where_required(client, alice, acme, carol, globex, mfa_device):
    device, _ = mfa_device(alice)
    mfa_device(carol)
    verified_client(client, alice, device)
    wrong = client.post("/settings/two-factor/disable/", {"password": "not-it"})
    assert wrong.status_code == 400 and "password" in wrong.context["disable_form"].errors
    assert TOTPDevice.objects.filter(user=alice).exists()

    Organization.objects.filter(pk=acme.pk).update(require_mfa=True)
    required = client.post("/settings/two-factor/disable/", {"password": PASSWORD})
    assert required.status_code == 400
    assert "required by Acme Pty Ltd" in required.content.decode()

    Organization.objects.filter(pk=acme.pk).update(require_mfa=False)
    response = client.post("/settings/two-factor/disable/", {"password": PASSWORD})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert TOTPDevice.objects.filter(user=carol).exists()
    assert client.get("/dashboard/").status_code == 200


# -- security ---------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:settings_security")
def test_owners_toggle_require_mfa_for_their_organization_only(
    client, client_for, alice, bob, acme, globex, carol, mfa_device
):
    refused = client_for(alice).post("/settings/security/", {"require_mfa": "on"})
    assert refused.status_code == 400 and "Set up two-factor sign-in for yourself first" in refused.content.decode()
    device, _ = mfa_device(alice)
    verified_client(client, alice, device)
    assert "globex" not in client.get("/settings/security/").content.decode().lower()
    assert client.post("/settings/security/", {"require_mfa": "on"}).status_code == 302
    acme.refresh_from_db()
    globex.refresh_from_db()
    assert acme.require_mfa and not globex.require_mfa
    assert AuditEvent.objects.for_org(acme).filter(action="organization.updated").exists()
    # Bob must now enrol; he cannot reach the security page at all.
    assert client_for(bob).get("/dashboard/")["Location"] == reverse("portal:settings_two_factor")
    assert client.post("/settings/security/", {}).status_code == 302
    acme.refresh_from_db()
    assert not acme.require_mfa


def test_only_owners_reach_security_audit_and_export(client_for, acme, bob):
    admin = UserFactory(email="adam@acme.test")
    MembershipFactory(user=admin, organization=acme, role=Role.ADMIN)
    for user in (admin, bob):
        client = client_for(user)
        for path in ("/settings/security/", "/settings/audit/", "/settings/export/"):
            assert client.get(path).status_code == 404, (user, path)
        assert client.post("/settings/export/").status_code == 404
        assert client.post("/settings/security/", {"require_mfa": "on"}).status_code == 404
    acme.refresh_from_db()
    assert not acme.require_mfa


# -- branding ---------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:settings_branding")
def test_branding_update_changes_this_organization_and_shows_up(client_for, alice, acme, globex, carol):
    client = client_for(alice)
    assert "globex" not in client.get("/settings/branding/").content.decode().lower()
    response = client.post(
        "/settings/branding/",
        {
            "display_name": "Acme Cloud",
            "primary_color": "#0A7F3F",
            "accent_color": "#ff0066",
            "support_email": "help@acme.test",
            "logo": SimpleUploadedFile("logo.png", PNG, content_type="image/png"),
        },
    )
    assert response.status_code == 302
    acme.refresh_from_db()
    globex.refresh_from_db()
    assert acme.brand_display_name == "Acme Cloud" and acme.brand_logo_type == "image/png"
    assert globex.brand_display_name == "" and globex.brand_logo_version == ""
    body = client.get("/dashboard/").content.decode()
    assert "--brand-primary:#0a7f3f;" in body and "--brand-accent:#ff0066;" in body
    assert "help@acme.test" in body
    removed = client.post(
        "/settings/branding/",
        {"display_name": "Acme Cloud", "primary_color": "#0a7f3f", "accent_color": "#ff0066", "remove_logo": "on"},
    )
    assert removed.status_code == 302
    acme.refresh_from_db()
    assert acme.brand_logo_version == ""


def test_branding_errors_name_the_field_and_change_nothing(client_for, alice, acme):
    client = client_for(alice)
    base = {"display_name": "New", "primary_color": "#112233", "accent_color": "#445566", "support_email": ""}
    bad_colour = client.post("/settings/branding/", {**base, "primary_color": "blue"})
    assert bad_colour.status_code == 400 and "primary_color" in bad_colour.context["form"].errors
    not_an_image = client.post(
        "/settings/branding/", {**base, "logo": SimpleUploadedFile("logo.png", b"GIF89a....", content_type="image/png")}
    )
    assert not_an_image.status_code == 400
    assert not_an_image.context["form"].errors["logo"] == ["The logo must be a PNG or JPEG image."]
    too_big = client.post(
        "/settings/branding/",
        {**base, "logo": SimpleUploadedFile("big.png", PNG + b"\0" * (256 * 1024), content_type="image/png")},
    )
    assert too_big.status_code == 400 and "at most 256 KB" in too_big.context["form"].errors["logo"][0]
    acme.refresh_from_db()
    assert acme.brand_display_name == "" and acme.brand_primary_color == "#1f4e79"


def test_members_cannot_change_branding(client_for, bob, acme):
    client = client_for(bob)
    assert client.get("/settings/branding/").status_code == 404
    response = client.post(
        "/settings/branding/", {"display_name": "Hacked", "primary_color": "#000000", "accent_color": "#000000"}
    )
    assert response.status_code == 404
    acme.refresh_from_db()
    assert acme.brand_display_name == ""


# -- audit log --------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:settings_audit")
def test_audit_log_shows_this_organizations_events_filtered_and_paginated(client_for, alice, acme, globex, carol):
    audit_record(action="globex.secret_thing", organization=globex, actor=carol)
    for index in range(55):
        audit_record(action="member.invited", organization=acme, actor=alice, changes={"email": f"p{index}@acme.test"})
    audit_record(action="api_key.created", organization=acme, actor=alice)
    client = client_for(alice)  # signing in adds Acme's own "auth.signed_in" event
    acme_events = AuditEvent.objects.for_org(acme).count()
    assert acme_events == 57
    response = client.get("/settings/audit/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "globex" not in body.lower()
    assert response.context["page"].paginator.count == acme_events
    assert len(response.context["page"].object_list) == 50
    assert "globex.secret_thing" not in response.context["actions"]
    second = client.get("/settings/audit/?page=2")
    assert len(second.context["page"].object_list) == acme_events - 50
    filtered = client.get("/settings/audit/?action=api_key.created")
    assert filtered.context["page"].paginator.count == 1
    assert client.get("/settings/audit/?action=globex.secret_thing").context["page"].paginator.count == 0
    # htmx asks for the results only.
    partial = client.get("/settings/audit/?action=api_key.created", HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and "API key created" in partial.content.decode()


# -- export -----------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:settings_export")
def test_export_is_json_of_this_organization_only(client_for, alice, bob, acme, globex, carol):
    api_key_create(name="Globex sync", scopes=["read"], organization=globex)
    invitation_create(organization=globex, email="someone@globex.test", role=Role.MEMBER, invited_by=carol)
    branding_update(organization=globex, display_name="Globex Brand")
    client = client_for(alice)
    assert client.get("/settings/export/").status_code == 200
    response = client.post("/settings/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment;" in response["Content-Disposition"] and "keel-acme-" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["organization"]["slug"] == "acme"
    assert sorted(member["email"] for member in data["members"]) == ["alice@acme.test", "bob@acme.test"]
    assert "globex" not in response.content.decode().lower()
    assert AuditEvent.objects.for_org(acme).filter(action="organization.exported").exists()


def test_timestamps_are_shown_in_the_organizations_time_zone(client_for, alice, acme):
    with time_machine.travel(datetime(2026, 1, 15, 23, 30, tzinfo=UTC)):
        audit_record(action="member.invited", organization=acme, actor=alice)
    body = client_for(alice).get("/settings/audit/").content.decode()
    # 23:30 UTC is 10:30 the next morning in Sydney (daylight saving time, UTC+11).
    assert "16 Jan 2026, 10:30" in body
