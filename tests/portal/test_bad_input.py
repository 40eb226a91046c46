"""Junk in any field or URL is a 4xx or a form error, never a 500, and writes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from tenancy.models import ApiKey, AuditEvent, Invitation, Membership, Organization

pytestmark = pytest.mark.django_db

JUNK = ["", " ", "x" * 5000, "<script>alert(1)</script>", "' OR 1=1 --", "\u202e\u0000", "%00", "ü" * 300]


def test_public_forms_and_links_survive_junk(alice):
    client = Client(raise_request_exception=False)
    for value in JUNK:
        for path, data in (
            ("/login/", {"email": value, "password": value}),
            ("/login/magic/", {"email": value}),
            ("/password-reset/", {"email": value}),
        ):
            assert client.post(path, data).status_code < 500, (path, value)
        safe = value.replace("\x00", "")
        # Bad tokens count as failed sign-ins: after a few, this address is locked out of magic links (429).
        assert client.get("/login/magic/confirm/", {"token": safe}).status_code in (410, 429)
        assert client.post(f"/login/magic/confirm/?token={safe[:200]}").status_code in (410, 429)
        assert client.get(f"/invite/{safe[:200].strip() or 'x'}/").status_code in (404, 410)
    assert client.get("/password-reset/!!!/abc/").status_code in (200, 404)
    assert client.get("/branding/not-a-uuid/logo").status_code == 404


def test_settings_forms_survive_junk_and_write_nothing(client_for, alice, bob, acme):
    client = client_for(alice)
    client.raise_request_exception = False
    before = (Membership.objects.count(), Invitation.objects.count(), ApiKey.objects.count())
    bob_membership = Membership.objects.get(user=bob)
    for value in JUNK:
        responses = [
            client.post("/settings/team/invite/", {"email": value, "role": value}),
            client.post(f"/settings/team/members/{bob_membership.pk}/role/", {"role": value}),
            client.post("/settings/api-keys/", {"name": value, "scopes": [value], "expires_at": value}),
            client.post(
                "/settings/branding/",
                {"display_name": value, "primary_color": value, "accent_color": value, "support_email": value},
            ),
            client.post("/settings/profile/", {"full_name": value * 2, "phone": value}),
            client.get("/settings/audit/", {"action": value.replace("\x00", ""), "page": value.replace("\x00", "")}),
        ]
        assert all(response.status_code < 500 for response in responses), [r.status_code for r in responses]
    assert (Membership.objects.count(), Invitation.objects.count(), ApiKey.objects.count()) == before
    acme.refresh_from_db()
    assert acme.brand_display_name == "" and acme.brand_primary_color == "#1f4e79"
    assert Membership.objects.get(pk=bob_membership.pk).role == bob_membership.role
    assert not AuditEvent.objects.filter(action="organization.branding_updated").exists()
    assert Organization.objects.get(pk=acme.pk).name == "Acme Pty Ltd"
