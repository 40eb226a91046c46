"""Team membership: invitations, roles, the last owner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import AuditEvent, Invitation, Membership, Role
from tenancy.services import invitation_accept, invitation_create, membership_change_role, membership_remove
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import race

pytestmark = pytest.mark.django_db


def test_invitation_emails_a_link_and_accepting_creates_the_member(acme, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = invitation_create(
            organization=acme, email="New@Acme.test", role=Role.MANAGER, invited_by=alice, actor_role=Role.OWNER
        )
    assert invitation.email == "new@acme.test"
    assert len(mail.outbox) == 1
    assert f"/invite/{token}/" in mail.outbox[0].body
    assert Invitation.objects.get().token_hash != token
    membership = invitation_accept(token=token, password="a-long-enough-passphrase", full_name="New Person")
    assert (membership.user.email, membership.role, membership.organization) == ("new@acme.test", Role.MANAGER, acme)
    with pytest.raises(ServiceValidationError):
        invitation_accept(token=token, password="a-long-enough-passphrase")
    assert AuditEvent.objects.filter(action="member.joined", organization=acme).count() == 1


def test_expired_invitation_cannot_be_accepted(acme, alice):
    _, token = invitation_create(organization=acme, email="late@acme.test", role=Role.MEMBER, invited_by=alice)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ServiceValidationError):
        invitation_accept(token=token, password="a-long-enough-passphrase")
    assert not Membership.objects.filter(user__email="late@acme.test").exists()


def test_weak_password_is_rejected_and_nothing_is_written(acme, alice):
    _, token = invitation_create(organization=acme, email="weak@acme.test", role=Role.MEMBER, invited_by=alice)
    with pytest.raises(ServiceValidationError) as exc:
        invitation_accept(token=token, password="123")
    assert "password" in exc.value.message_dict
    assert Invitation.objects.get().accepted_at is None


def test_only_owners_grant_ownership(acme, alice, bob):
    admin = UserFactory(email="admin@acme.test")
    MembershipFactory(user=admin, organization=acme, role=Role.ADMIN)
    bob_membership = Membership.objects.get(user=bob)
    with pytest.raises(ServiceValidationError):
        membership_change_role(membership=bob_membership, role=Role.OWNER, actor=admin, actor_role=Role.ADMIN)
    with pytest.raises(ServiceValidationError):
        invitation_create(
            organization=acme, email="x@acme.test", role=Role.OWNER, invited_by=admin, actor_role=Role.ADMIN
        )
    membership_change_role(membership=bob_membership, role=Role.OWNER, actor=alice, actor_role=Role.OWNER)
    audit = AuditEvent.objects.get(action="member.role_changed")
    assert audit.changes == {"role": ["MEMBER", "OWNER"], "user": "bob@acme.test"}


def test_last_owner_cannot_be_demoted_or_removed(acme, alice):
    owner = Membership.objects.get(user=alice)
    with pytest.raises(ConflictError):
        membership_change_role(membership=owner, role=Role.ADMIN, actor=alice, actor_role=Role.OWNER)
    with pytest.raises(ConflictError):
        membership_remove(membership=owner, actor=alice, actor_role=Role.OWNER)
    assert Membership.objects.get(user=alice).role == Role.OWNER


def test_existing_member_cannot_be_invited_again(acme, alice, bob):
    with pytest.raises(ConflictError):
        invitation_create(organization=acme, email="bob@acme.test", role=Role.MEMBER, invited_by=alice)


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(acme, alice):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    second = UserFactory(email="second@acme.test")
    MembershipFactory(user=second, organization=acme, role=Role.OWNER)
    memberships = list(Membership.objects.filter(organization=acme, role=Role.OWNER))
    # Each racer demotes a different owner (list.pop is atomic).
    outcomes = race(lambda: membership_change_role(membership=memberships.pop(), role=Role.MEMBER, actor=None))
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["ConflictError", "Membership"]
    assert Membership.objects.filter(organization=acme, role=Role.OWNER).count() == 1


def test_joining_and_role_changes_are_published_to_the_organization(acme, globex, alice, bob):
    from events.models import Event

    _, token = invitation_create(organization=acme, email="sam@acme.test", role=Role.MEMBER, invited_by=alice)
    membership = invitation_accept(token=token, password="a-Long-enough-passw0rd", full_name="Sam Field")
    (created,) = Event.objects.filter(type="user.created")
    assert created.organization_id == acme.pk
    assert created.payload == {
        "id": str(membership.user_id),
        "email": "sam@acme.test",
        "full_name": "Sam Field",
        "role": "MEMBER",
    }
    membership_change_role(membership=membership, role=Role.ADMIN, actor=alice, actor_role=Role.OWNER)
    membership_change_role(membership=membership, role=Role.ADMIN, actor=alice, actor_role=Role.OWNER)  # no change
    (changed,) = Event.objects.filter(type="user.role_changed")
    assert changed.organization_id == acme.pk
    assert changed.payload == {
        "user": str(membership.user_id),
        "email": "sam@acme.test",
        "from": "MEMBER",
        "to": "ADMIN",
    }
    assert not Event.objects.filter(organization=globex, type__startswith="user.").exists()
