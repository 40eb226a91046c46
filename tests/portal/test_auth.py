"""Signing in with a password, the lockout, signing out, and the second factor."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.models import AuditEvent
from tests.portal.conftest import code_for

pytestmark = pytest.mark.django_db

LOGIN = "/login/"


def session_user_id(client):
    return client.session.get("_auth_user_id")


# -- password -------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:login")
def test_login_page_shows_no_tenant_data(client, alice, carol, globex):
    response = client.get(LOGIN)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Globex" not in body and "Acme" not in body
    assert 'name="csrfmiddlewaretoken"' in body


def test_login_with_the_right_password_lands_on_the_dashboard_and_is_audited(sign_in, alice, acme):
    client, response = sign_in(alice)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:dashboard")
    assert session_user_id(client) == str(alice.pk)
    assert client.get(response["Location"]).status_code == 200
    event = AuditEvent.objects.for_org(acme).get(action="auth.signed_in")
    assert event.changes == {"method": "password"}


def test_login_follows_a_safe_next_but_not_an_external_one(client, alice, password):
    response = client.post(f"{LOGIN}?next=/settings/team/", {"email": alice.email, "password": password})
    assert response["Location"] == "/settings/team/"
    client.logout()
    response = client.post(f"{LOGIN}?next=https://evil.test/", {"email": alice.email, "password": password})
    assert response["Location"] == reverse("portal:dashboard")


def test_email_is_matched_without_regard_to_case(client, alice, password):
    response = client.post(LOGIN, {"email": "  Alice@ACME.test ", "password": password})
    assert response.status_code == 302
    assert session_user_id(client) == str(alice.pk)


def test_wrong_password_is_refused_with_a_message_that_does_not_reveal_the_account(client, alice, acme):
    wrong = client.post(LOGIN, {"email": alice.email, "password": "not-her-password"})
    unknown = client.post(LOGIN, {"email": "nobody@acme.test", "password": "whatever-it-is"})
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert "The email address or password is incorrect." in response.content.decode()
    assert session_user_id(client) is None
    assert AuditEvent.objects.for_org(acme).filter(action="auth.sign_in_failed").count() == 1


def test_missing_fields_are_named(client):
    response = client.post(LOGIN, {"email": "", "password": ""})
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"email", "password"}


def test_lockout_after_the_failure_limit_refuses_even_the_right_password(client, alice, password):
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    for _ in range(limit - 1):
        assert client.post(LOGIN, {"email": alice.email, "password": "wrong-password"}).status_code == 400
    locked = client.post(LOGIN, {"email": alice.email, "password": "wrong-password"})
    assert locked.status_code == 429
    right = client.post(LOGIN, {"email": alice.email, "password": password})
    assert right.status_code == 429
    body = right.content.decode()
    assert "Sign-in is locked for now" in body
    assert "15 minutes" in body
    assert "Even the right password is refused" in body
    assert session_user_id(client) is None


def test_lockout_ends_after_the_cool_off(client, alice, password):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"email": alice.email, "password": "wrong-password"})
    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(minutes=1)):
        response = client.post(LOGIN, {"email": alice.email, "password": password})
    assert response.status_code == 302


def test_changing_the_case_of_the_email_does_not_buy_more_attempts(client, alice, password):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        email = alice.email.upper() if attempt % 2 else alice.email
        client.post(LOGIN, {"email": email, "password": "wrong-password"})
    assert client.post(LOGIN, {"email": alice.email.title(), "password": password}).status_code == 429


@pytest.mark.isolation("portal:logout")
def test_logout_is_post_only_and_ends_the_session(client_for, alice, carol, globex):
    client = client_for(alice)
    assert client.get("/logout/").status_code == 405
    assert session_user_id(client) == str(alice.pk)
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == reverse("portal:login")
    assert session_user_id(client) is None
    assert "Globex" not in client.get(response["Location"]).content.decode()


def test_portal_pages_send_anonymous_people_to_sign_in(client, acme):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('portal:login')}?next=/dashboard/"


# -- second factor ----------------------------------------------------------------------------------------------


def test_user_with_a_device_must_verify_before_any_portal_page(sign_in, alice, mfa_device):
    mfa_device(alice)
    client, response = sign_in(alice)
    assert response["Location"].startswith(reverse("portal:login_verify"))
    for path in ("/dashboard/", "/settings/team/", "/settings/two-factor/", "/settings/api-keys/"):
        bounced = client.get(path)
        assert bounced.status_code == 302, path
        assert bounced["Location"].startswith(reverse("portal:login_verify")), path
    # Nor can a write get through.
    assert client.post("/settings/team/invite/", {"email": "x@acme.test", "role": "MEMBER"}).status_code == 302


def test_a_real_totp_code_verifies_and_opens_the_portal(sign_in, alice, mfa_device):
    device, _ = mfa_device(alice)
    client, _ = sign_in(alice)
    response = client.post(reverse("portal:login_verify"), {"code": code_for(device), "next": "/settings/team/"})
    assert response.status_code == 302 and response["Location"] == "/settings/team/"
    assert client.get("/dashboard/").status_code == 200


@pytest.mark.isolation("portal:login_verify")
def test_a_wrong_code_is_refused_and_audited(sign_in, alice, acme, mfa_device, carol, globex):
    device, _ = mfa_device(alice)
    client, _ = sign_in(alice)
    page = client.get(reverse("portal:login_verify"))
    assert page.status_code == 200 and "Globex" not in page.content.decode()
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    response = client.post(reverse("portal:login_verify"), {"code": wrong})
    assert response.status_code == 400
    assert "That code is not valid" in response.content.decode()
    assert client.get("/dashboard/").status_code == 302
    assert AuditEvent.objects.for_org(acme).filter(action="auth.mfa_failed").exists()


def test_a_backup_code_works_once(sign_in, alice, mfa_device):
    _, codes = mfa_device(alice)
    first, _ = sign_in(alice)
    response = first.post(reverse("portal:login_verify"), {"code": codes[0]})
    assert response.status_code == 302
    assert first.get("/dashboard/").status_code == 200
    assert StaticToken.objects.filter(device__user=alice).count() == 9

    second, _ = sign_in(alice)
    response = second.post(reverse("portal:login_verify"), {"code": codes[0]})
    assert response.status_code == 400
    assert second.get("/dashboard/").status_code == 302


def test_verify_page_for_someone_without_a_device_just_moves_on(client_for, alice):
    client = client_for(alice)
    response = client.get(reverse("portal:login_verify"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:dashboard")


def test_require_mfa_forces_enrolment_before_anything_else(sign_in, alice, acme):
    acme.require_mfa = True
    acme.save(update_fields=["require_mfa"])
    client, response = sign_in(alice)
    assert response["Location"] == reverse("portal:settings_two_factor")
    for path in ("/dashboard/", "/settings/team/", "/settings/profile/"):
        assert client.get(path)["Location"] == reverse("portal:settings_two_factor"), path
    page = client.get(reverse("portal:settings_two_factor"))
    assert page.status_code == 200
    assert "Acme Pty Ltd" in page.content.decode() and "require" in page.content.decode()


def test_enrolment_flow_shows_a_qr_code_then_ten_backup_codes_once(client_for, alice, acme):
    acme.require_mfa = True
    acme.save(update_fields=["require_mfa"])
    client = client_for(alice)
    started = client.post(reverse("portal:settings_two_factor_enrol"))
    assert started.status_code == 302 and started["Location"] == reverse("portal:settings_two_factor_enrol")
    page = client.get(reverse("portal:settings_two_factor_enrol"))
    assert page.status_code == 200
    assert "<svg" in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    device = TOTPDevice.objects.get(user=alice, confirmed=False)

    wrong_code = "000000" if code_for(device) != "000000" else "111111"
    wrong = client.post(reverse("portal:settings_two_factor_enrol"), {"token": wrong_code})
    assert wrong.status_code == 400
    assert wrong.context["form"].errors["token"]

    with time_machine.travel(timezone.now() + timedelta(seconds=5)):
        done = client.post(reverse("portal:settings_two_factor_enrol"), {"token": code_for(device)})
    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10
    body = done.content.decode()
    assert all(code in body for code in codes)
    device.refresh_from_db()
    assert device.confirmed
    # This session proved the device, so the portal opens; the codes are not shown again.
    assert client.get("/dashboard/").status_code == 200
    again = client.get(reverse("portal:settings_two_factor")).content.decode()
    assert not any(code in again for code in codes)
    assert "10</strong> unused backup codes" in again
    assert AuditEvent.objects.for_org(acme).filter(action="mfa.enrolled").exists()
