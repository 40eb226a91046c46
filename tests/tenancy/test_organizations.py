"""Organization lifecycle, branding and export services."""

from __future__ import annotations

import json

import pytest

from events.models import Event
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import AuditEvent, Membership, Organization, OrgStatus, Role
from tenancy.services import (
    branding_update,
    organization_create,
    organization_export,
    organization_reactivate,
    organization_suspend,
    organization_update,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_create_makes_owner_audits_and_publishes(alice):
    owner = UserFactory(email="owner@newco.test")
    org = organization_create(name="NewCo Pty Ltd", tier="PREMIUM", owner=owner, actor=alice, ip="203.0.113.9")
    assert org.slug == "newco-pty-ltd"
    assert Membership.objects.get(organization=org).role == Role.OWNER
    audit = AuditEvent.objects.get(action="organization.created", organization=org)
    assert (audit.actor, audit.ip_address) == (alice, "203.0.113.9")
    assert Event.objects.filter(type="organization.created", organization=org).count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tier": "GOLD"}, "tier"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"currency": "DOLLARS"}, "currency"),
        ({"country": "AUS"}, "country"),
        ({"name": "  "}, "name"),
    ],
)
def test_create_rejects_bad_input_by_field_and_writes_nothing(kwargs, field):
    with pytest.raises(ServiceValidationError) as exc:
        organization_create(**{"name": "Valid", **kwargs})
    assert field in exc.value.message_dict
    assert Organization.objects.count() == 0
    assert Event.objects.count() == 0


def test_duplicate_slug_is_a_conflict(acme):
    with pytest.raises(ConflictError) as exc:
        organization_create(name="Acme", slug="acme")
    assert exc.value.field == "slug"


def test_update_records_changes(acme, alice):
    organization_update(organization=acme, actor=alice, timezone="Australia/Melbourne", currency="aud")
    audit = AuditEvent.objects.get(action="organization.updated")
    assert audit.changes == {"timezone": ["Australia/Sydney", "Australia/Melbourne"]}
    with pytest.raises(ServiceValidationError):
        organization_update(organization=acme, actor=alice, status="SUSPENDED")


def test_suspend_and_reactivate_are_idempotent_and_audited(acme, alice):
    organization_suspend(organization=acme, reason="Unpaid", actor=alice)
    organization_suspend(organization=acme, reason="Unpaid", actor=alice)
    acme.refresh_from_db()
    assert (acme.status, acme.suspended_reason) == (OrgStatus.SUSPENDED, "Unpaid")
    organization_reactivate(organization=acme, actor=alice)
    acme.refresh_from_db()
    assert acme.status == OrgStatus.ACTIVE
    actions = list(AuditEvent.objects.for_org(acme).order_by("created_at").values_list("action", flat=True))
    assert actions == ["organization.suspended", "organization.reactivated"]


def test_branding_update_validates_each_field(acme):
    with pytest.raises(ServiceValidationError) as exc:
        branding_update(organization=acme, primary_color="#12345", support_email="x", logo=b"GIF89a")
    assert set(exc.value.message_dict) == {"primary_color", "support_email", "logo"}
    branding_update(organization=acme, primary_color="#ABCDEF", logo=b"\xff\xd8\xff\xe0" + b"1" * 10)
    acme.refresh_from_db()
    assert acme.brand_primary_color == "#abcdef"
    assert acme.brand_logo_type == "image/jpeg"
    branding_update(organization=acme, remove_logo=True)
    acme.refresh_from_db()
    assert acme.brand_logo_version == ""


def test_export_contains_the_organization_and_nothing_of_others(acme, alice, bob, carol, globex, api_key_for):
    api_key_for(organization=acme)
    api_key_for(organization=globex)
    data = organization_export(organization=acme, actor=alice)
    dumped = json.dumps(data)
    assert data["organization"]["slug"] == "acme"
    assert {m["email"] for m in data["members"]} == {"alice@acme.test", "bob@acme.test"}
    assert len(data["api_keys"]) == 1
    assert "globex" not in dumped.lower()
    assert "carol" not in dumped
    assert AuditEvent.objects.filter(action="organization.exported", organization=acme).exists()
