"""Feature flags: overrides win, a percentage picks a stable set of organizations that only grows as it rises, the
cache never answers with a stale flag, the admin manages overrides inline, and the template tag."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, transaction
from django.template import Context, Template
from django.test import RequestFactory

from tenancy.flags import bucket, flag_enabled
from tenancy.models import FeatureFlag, FeatureFlagOverride
from tests.factories import OrganizationFactory, UserFactory
from tests.helpers import admin_client

pytestmark = pytest.mark.django_db


def test_an_unknown_flag_and_a_new_flag_are_off(acme):
    assert flag_enabled("no-such-flag", acme) is False
    flag = FeatureFlag.objects.create(key="new-dashboard")
    assert flag.percentage == 0
    assert flag_enabled("new-dashboard", acme) is False
    assert flag_enabled("new-dashboard", None) is False


def test_an_override_wins_over_the_percentage(acme, globex, initech):
    flag = FeatureFlag.objects.create(key="new-dashboard", percentage=0)
    FeatureFlagOverride.objects.create(flag=flag, organization=acme, enabled=True)
    assert (flag_enabled("new-dashboard", acme), flag_enabled("new-dashboard", globex)) == (True, False)
    flag.percentage = 100
    flag.save()
    FeatureFlagOverride.objects.create(flag=flag, organization=globex, enabled=False)
    assert [flag_enabled("new-dashboard", org) for org in (acme, globex, initech)] == [True, False, True]


def test_buckets_are_a_stable_hash_of_the_key_and_the_organization():
    # Pinned values: the same on every process, machine and release (Python's hash() would not be).
    organization_id = uuid.UUID("00000000-0000-0000-0000-000000000001")
    assert bucket("new-dashboard", organization_id) == bucket("new-dashboard", str(organization_id)) == 55
    assert bucket("sms-v2", organization_id) == 37
    assert all(0 <= bucket("new-dashboard", uuid.uuid4()) < 100 for _ in range(200))


def test_raising_the_percentage_keeps_the_organizations_already_in(db):
    # Fixed ids, so the organizations drawn are the same on every run.
    organizations = [OrganizationFactory(id=uuid.UUID(int=n), slug=f"org-{n}") for n in range(1, 201)]
    flag = FeatureFlag.objects.create(key="new-dashboard", percentage=10)
    first = {org.pk for org in organizations if flag_enabled("new-dashboard", org)}
    assert first == {org.pk for org in organizations if bucket("new-dashboard", org.pk) < 10}
    assert len(first) == 20  # 10 % of 200
    flag.percentage = 20
    flag.save()
    second = {org.pk for org in organizations if flag_enabled("new-dashboard", org)}
    assert first < second and len(second) == 41
    assert second == {org.pk for org in organizations if bucket("new-dashboard", org.pk) < 20}
    flag.percentage = 100
    flag.save()
    assert all(flag_enabled("new-dashboard", org) for org in organizations)
    # Another flag at the same percentage picks other organizations.
    FeatureFlag.objects.create(key="sms-v2", percentage=20)
    assert {org.pk for org in organizations if flag_enabled("sms-v2", org)} != second


def test_answers_are_cached_and_every_change_is_seen_at_once(acme, django_assert_num_queries):
    flag = FeatureFlag.objects.create(key="new-dashboard", percentage=0)
    assert flag_enabled("new-dashboard", acme) is False
    with django_assert_num_queries(0):
        assert flag_enabled("new-dashboard", acme) is False
    override = FeatureFlagOverride.objects.create(flag=flag, organization=acme, enabled=True)
    assert flag_enabled("new-dashboard", acme) is True
    override.enabled = False
    override.save()
    assert flag_enabled("new-dashboard", acme) is False
    override.delete()
    flag.percentage = 100
    flag.save()
    assert flag_enabled("new-dashboard", acme) is True
    flag.key = "dashboard-2"
    flag.save()
    assert (flag_enabled("new-dashboard", acme), flag_enabled("dashboard-2", acme)) == (False, True)
    FeatureFlag.objects.filter(pk=flag.pk).delete()
    assert flag_enabled("dashboard-2", acme) is False


def test_a_percentage_stays_within_0_and_100_and_a_key_is_unique(acme):
    FeatureFlag.objects.create(key="new-dashboard")
    with pytest.raises(IntegrityError), transaction.atomic():
        FeatureFlag.objects.create(key="other", percentage=101)
    with pytest.raises(IntegrityError), transaction.atomic():
        FeatureFlag.objects.create(key="new-dashboard")
    flag = FeatureFlag.objects.get()
    FeatureFlagOverride.objects.create(flag=flag, organization=acme, enabled=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        FeatureFlagOverride.objects.create(flag=flag, organization=acme, enabled=False)


def test_staff_manage_a_flag_and_its_overrides_in_the_admin(acme, globex):
    client = admin_client(UserFactory(email="ops@keel.test", is_staff=True, is_superuser=True))
    form = {
        "key": "new-dashboard",
        "description": "The redesigned dashboard",
        "percentage": "0",
        "overrides-TOTAL_FORMS": "1",
        "overrides-INITIAL_FORMS": "0",
        "overrides-MIN_NUM_FORMS": "0",
        "overrides-MAX_NUM_FORMS": "1000",
        "overrides-0-organization": str(acme.pk),
        "overrides-0-enabled": "on",
        "overrides-0-note": "Pilot customer",
    }
    too_much = client.post("/admin/tenancy/featureflag/add/", {**form, "percentage": "150"})
    assert too_much.status_code == 200 and not FeatureFlag.objects.exists()
    assert client.post("/admin/tenancy/featureflag/add/", form).status_code == 302
    flag = FeatureFlag.objects.get()
    assert [(o.organization_id, o.enabled, o.note) for o in flag.overrides.all()] == [(acme.pk, True, "Pilot customer")]
    assert (flag_enabled("new-dashboard", acme), flag_enabled("new-dashboard", globex)) == (True, False)
    listing = client.get("/admin/tenancy/featureflag/")
    assert listing.status_code == 200 and "new-dashboard" in listing.content.decode()


def test_the_template_tag_asks_for_the_current_organization(acme, globex):
    flag = FeatureFlag.objects.create(key="new-dashboard")
    FeatureFlagOverride.objects.create(flag=flag, organization=acme, enabled=True)
    template = Template('{% load portal_tags %}{% flag "new-dashboard" as on %}{% if on %}new{% else %}old{% endif %}')
    seen = []
    for organization in (acme, globex, None):
        request = RequestFactory().get("/dashboard/")
        request.organization = organization  # type: ignore[attr-defined]
        seen.append(template.render(Context({"request": request})))
    assert seen == ["new", "old", "old"]
