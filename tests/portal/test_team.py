"""The team page: members, invitations, roles and removal — through the services, within one organization."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tenancy.models import Invitation, Membership, Role
from tenancy.services import invitation_create
from tests.factories import MembershipFactory, UserFactory
from tests.portal.conftest import html_of

pytestmark = pytest.mark.django_db

TEAM = "/settings/team/"


def role_url(membership: Membership) -> str:
    return reverse("portal:settings_member_role", args=[membership.pk])


def remove_url(membership: Membership) -> str:
    return reverse("portal:settings_member_remove", args=[membership.pk])


@pytest.fixture
def globex_invitation(globex, carol):
    invitation, _ = invitation_create(
        organization=globex, email="newbie@globex.test", role=Role.MEMBER, invited_by=carol
    )
    return invitation


@pytest.mark.isolation("portal:settings_team")
def test_team_lists_this_organizations_people_only(client_for, alice, bob, carol, globex, globex_invitation):
    response = client_for(alice).get(TEAM)
    assert response.status_code == 200
    body = response.content.decode()
    assert "alice@acme.test" in body and "bob@acme.test" in body
    assert "globex" not in body.lower() and "carol" not in body.lower()


def test_members_see_the_team_read_only(client_for, alice, bob):
    body = client_for(bob).get(TEAM).content.decode()
    assert "alice@acme.test" in body
    assert "Invite someone" not in body
    assert 'name="role"' not in body
    assert "Only owners and admins can invite" in body


@pytest.mark.isolation("portal:settings_team_invite")
def test_inviting_sends_an_email_with_the_link_and_cannot_reach_globex(
    client_for, alice, acme, globex, carol, django_capture_on_commit_callbacks
):
    client = client_for(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settings/team/invite/", {"email": "Dana@Example.test", "role": "ADMIN"})
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="dana@example.test")
    assert invitation.organization == acme and invitation.role == Role.ADMIN
    [message] = mail.outbox
    assert message.to == ["dana@example.test"]
    assert "Acme Pty Ltd" in message.subject
    link = re.search(r"https?://\S+(/invite/[\w-]+/)", str(message.body))
    assert link
    assert link.group(1) in html_of(message)
    assert "Globex" not in message.body
    # Inviting Globex's owner creates an Acme invitation, never touches Globex.
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/settings/team/invite/", {"email": carol.email, "role": "MEMBER"})
    assert not Invitation.objects.for_org(globex).exists()
    assert not Membership.objects.for_org(globex).exclude(user=carol).exists()


def test_invite_errors_are_named(client_for, alice, bob):
    client = client_for(alice)
    response = client.post("/settings/team/invite/", {"email": "not-an-email", "role": "MEMBER"})
    assert response.status_code == 400
    assert "email" in response.context["invite_form"].errors
    response = client.post("/settings/team/invite/", {"email": bob.email, "role": "MEMBER"})
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert not Invitation.objects.exists()


def test_members_cannot_invite(client_for, bob):
    assert client_for(bob).post("/settings/team/invite/", {"email": "x@y.test", "role": "MEMBER"}).status_code == 404
    assert not Invitation.objects.exists()


def test_admins_cannot_grant_ownership(client_for, acme, alice, bob):
    admin = UserFactory(email="adam@acme.test")
    MembershipFactory(user=admin, organization=acme, role=Role.ADMIN)
    client = client_for(admin)
    bob_membership = Membership.objects.get(user=bob)
    response = client.post(role_url(bob_membership), {"role": "OWNER"})
    assert response.status_code == 400
    assert "Only an owner can make someone an owner." in response.content.decode()
    bob_membership.refresh_from_db()
    assert bob_membership.role == Role.MEMBER
    response = client.post("/settings/team/invite/", {"email": "eve@acme.test", "role": "OWNER"})
    assert response.status_code == 400
    assert response.context["invite_form"].errors["role"] == ["Only an owner can make someone an owner."]
    # An admin may hand out non-owner roles.
    assert client.post(role_url(bob_membership), {"role": "MANAGER"}).status_code == 302
    bob_membership.refresh_from_db()
    assert bob_membership.role == Role.MANAGER


@pytest.mark.isolation("portal:settings_member_role")
def test_role_change_of_a_globex_membership_is_404_and_changes_nothing(client_for, alice, bob, carol, globex):
    carols = Membership.objects.get(user=carol)
    client = client_for(alice)
    response = client.post(role_url(carols), {"role": "MEMBER"})
    assert response.status_code == 404
    assert "globex" not in response.content.decode().lower()
    carols.refresh_from_db()
    assert carols.role == Role.OWNER
    # Her own organization works.
    assert client.post(role_url(Membership.objects.get(user=bob)), {"role": "ADMIN"}).status_code == 302


def test_invalid_role_is_refused(client_for, alice, bob):
    response = client_for(alice).post(role_url(Membership.objects.get(user=bob)), {"role": "EMPEROR"})
    assert response.status_code == 400
    assert Membership.objects.get(user=bob).role == Role.MEMBER


def test_the_last_owner_can_be_neither_demoted_nor_removed(client_for, alice):
    own = Membership.objects.get(user=alice)
    client = client_for(alice)
    response = client.post(role_url(own), {"role": "ADMIN"})
    assert response.status_code == 409
    assert "An organization needs at least one owner." in response.content.decode()
    response = client.post(remove_url(own))
    assert response.status_code == 409
    assert "An organization needs at least one owner." in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.OWNER


@pytest.mark.isolation("portal:settings_member_remove")
def test_removing_a_member_and_never_a_globex_one(client_for, alice, bob, carol, globex):
    client = client_for(alice)
    assert client.post(remove_url(Membership.objects.get(user=carol))).status_code == 404
    assert Membership.objects.filter(user=carol, organization=globex).exists()
    response = client.post(remove_url(Membership.objects.get(user=bob)))
    assert response.status_code == 302
    assert not Membership.objects.filter(user=bob).exists()
    assert client_for(bob).get("/dashboard/").status_code == 403


def test_members_cannot_change_roles_or_remove(client_for, alice, bob):
    own = Membership.objects.get(user=alice)
    client = client_for(bob)
    assert client.post(role_url(own), {"role": "MEMBER"}).status_code == 404
    assert client.post(remove_url(own)).status_code == 404
    own.refresh_from_db()
    assert own.role == Role.OWNER


@pytest.mark.isolation("portal:settings_invitation_revoke")
def test_revoking_an_invitation_and_never_a_globex_one(client_for, alice, acme, globex_invitation):
    acme_invitation, _ = invitation_create(organization=acme, email="x@acme.test", role=Role.MEMBER, invited_by=alice)
    client = client_for(alice)
    url = reverse("portal:settings_invitation_revoke", args=[globex_invitation.pk])
    assert client.post(url).status_code == 404
    globex_invitation.refresh_from_db()
    assert globex_invitation.revoked_at is None
    response = client.post(reverse("portal:settings_invitation_revoke", args=[acme_invitation.pk]))
    assert response.status_code == 302
    acme_invitation.refresh_from_db()
    assert acme_invitation.revoked_at is not None
    assert "x@acme.test" not in Client().get("/").content.decode()
