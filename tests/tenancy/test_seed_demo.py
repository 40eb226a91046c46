from __future__ import annotations

import pytest
from django.core.management import call_command

from tenancy.models import ApiKey, Membership, Organization, PartnerMembership, Role, User

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    capsys.readouterr()
    assert "alice@acme.test" in first and "keel-demo-password" in first
    assert sorted(Organization.objects.values_list("slug", flat=True)) == ["acme", "globex", "initech"]
    assert set(Organization.objects.filter(partner__slug="summit").values_list("slug", flat=True)) == {
        "acme",
        "initech",
    }
    assert Membership.objects.get(user__email="alice@acme.test").role == Role.OWNER
    assert Membership.objects.get(user__email="bob@acme.test").role == Role.MEMBER
    assert Membership.objects.get(user__email="carol@globex.test", organization__slug="globex").role == Role.OWNER
    assert PartnerMembership.objects.filter(user__email="pat@summit.test", partner__slug="summit").exists()
    for org in Organization.objects.all():
        assert set(Membership.objects.filter(organization=org).values_list("role", flat=True)) == set(Role.values)
    assert User.objects.filter(is_staff=True).count() == 5
    assert ApiKey.objects.filter(partner__slug="summit", revoked_at__isnull=True).count() == 1
    assert User.objects.count() == 18


def test_seed_demo_adds_qualifications_in_every_status(capsys):
    from qualification.models import Qualification, QualificationStatus

    call_command("seed_demo")
    call_command("seed_demo")
    assert set(Qualification.objects.values_list("status", flat=True)) == set(QualificationStatus.values)
    assert Qualification.objects.count() == 9
