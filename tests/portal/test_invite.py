"""Accepting an invitation: new people set a password and join; existing accounts sign in first."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenancy.models import Membership, Role, User
from tenancy.services import invitation_create, invitation_revoke
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-and-unusual-passphrase"


@pytest.fixture
def invite(acme, alice):
    def make(email: str = "dana@example.test", role: str = Role.MEMBER):
        invitation, token = invitation_create(organization=acme, email=email, role=role, invited_by=alice)
        return invitation, f"/invite/{token}/"

    return make


@pytest.mark.isolation("portal:invite_accept")
def test_invite_page_shows_only_the_inviting_organization(client, invite, carol, globex):
    _, path = invite(role=Role.ADMIN)
    response = client.get(path)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Join Acme Pty Ltd" in body and "Admin" in body and "dana@example.test" in body
    assert "globex" not in body.lower()
    # Another organization's invitation token cannot be guessed into; a bad token says nothing.
    bad = client.get("/invite/not-a-real-token/")
    assert bad.status_code == 410
    assert "globex" not in bad.content.decode().lower() and "acme" not in bad.content.decode().lower()


def test_a_new_person_sets_a_password_and_becomes_a_member(client, invite, acme):
    _, path = invite(role=Role.MANAGER)
    response = client.post(path, {"full_name": "Dana New", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("portal:dashboard")
    dana = User.objects.get(email="dana@example.test")
    assert dana.full_name == "Dana New" and dana.check_password(NEW_PASSWORD)
    assert Membership.objects.get(user=dana, organization=acme).role == Role.MANAGER
    dashboard = client.get(response["Location"])
    assert dashboard.status_code == 200 and dashboard.wsgi_request.user == dana
    # The link is used up.
    assert Client().get(path).status_code == 410


def test_password_problems_are_named_and_nothing_is_created(client, invite):
    _, path = invite()
    mismatch = client.post(path, {"full_name": "Dana", "password": NEW_PASSWORD, "password_confirm": "different-1234"})
    assert mismatch.status_code == 400 and "password_confirm" in mismatch.context["form"].errors
    weak = client.post(path, {"full_name": "Dana", "password": "password", "password_confirm": "password"})
    assert weak.status_code == 400 and weak.context["form"].errors["password"]
    missing = client.post(path, {})
    assert missing.status_code == 400 and "full_name" in missing.context["form"].errors
    assert not User.objects.filter(email="dana@example.test").exists()


def test_an_existing_account_signs_in_then_accepts(invite, acme, initech, pat):
    existing = User.objects.create_user(email="dana@example.test", password=PASSWORD)
    _, path = invite()
    client = Client()
    page = client.get(path)
    assert "Sign in to accept" in page.content.decode()
    assert (
        client.post(path, {"full_name": "x", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}).status_code
        == 200
    )
    assert not Membership.objects.filter(user=existing).exists()
    signed_in = client.post(f"/login/?next={path}", {"email": existing.email, "password": PASSWORD})
    assert signed_in["Location"] == path
    assert "Accept and join" in client.get(path).content.decode()
    accepted = client.post(path)
    assert accepted.status_code == 302
    assert Membership.objects.get(user=existing, organization=acme).role == Role.MEMBER
    assert client.get("/dashboard/").context["current_org"] == acme


def test_signed_in_as_someone_else_cannot_accept(client_for, invite, bob):
    _, path = invite()
    client = client_for(bob)
    body = client.get(path).content.decode()
    assert "You are signed in as bob@acme.test" in body
    assert client.post(path).status_code == 400
    assert not User.objects.filter(email="dana@example.test").exists()


def test_expired_and_revoked_invitations_are_gone(client, invite, alice):
    _, path = invite()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        response = client.get(path)
    assert response.status_code == 410
    assert "no longer valid" in response.content.decode()
    invitation, other = invite(email="erin@example.test")
    invitation_revoke(invitation=invitation, actor=alice)
    assert client.get(other).status_code == 410
    assert (
        client.post(other, {"full_name": "E", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}).status_code
        == 410
    )
