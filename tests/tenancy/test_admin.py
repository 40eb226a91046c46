"""Staff admin: OTP required, staff groups, actions call services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from tenancy.models import AuditEvent, OrgStatus
from tenancy.staff import STAFF_GROUPS
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_admin():
    user = UserFactory(email="admin@keel.test", is_staff=True, is_superuser=True)
    device = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    StaticToken.objects.create(device=device, token="abcd1234")
    return user


def test_staff_without_a_verified_device_cannot_use_admin(staff_admin):
    client = Client()
    client.force_login(staff_admin)  # password only, no second factor
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_admin_login_requires_the_one_time_code(staff_admin):
    client = Client()
    refused = client.post("/admin/login/?next=/admin/", {"username": "admin@keel.test", "password": PASSWORD})
    assert refused.status_code == 200  # form redisplayed, asking for the token
    assert client.get("/admin/").status_code == 302
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": "admin@keel.test",
            "password": PASSWORD,
            "otp_device": StaticDevice.objects.get().persistent_id,
            "otp_token": "abcd1234",
        },
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    # The backup code was single use.
    assert not StaticToken.objects.filter(token="abcd1234").exists()


def test_staff_groups_exist_with_their_permissions(db):
    for name, grants in STAFF_GROUPS.items():
        group = Group.objects.get(name=name)
        codenames = set(group.permissions.values_list("codename", flat=True))
        for model, actions in grants.items():
            for action in actions:
                assert f"{action}_{model.split('.')[1]}" in codenames, (name, model, action)
    technician = set(Group.objects.get(name="Technician").permissions.values_list("codename", flat=True))
    assert "change_organization" not in technician


@pytest.fixture
def verified_admin_client(staff_admin):
    client = Client()
    client.post(
        "/admin/login/?next=/admin/",
        {
            "username": "admin@keel.test",
            "password": PASSWORD,
            "otp_device": StaticDevice.objects.get().persistent_id,
            "otp_token": "abcd1234",
        },
    )
    return client


def test_admin_suspend_action_calls_the_service(verified_admin_client, acme):
    response = verified_admin_client.post(
        "/admin/tenancy/organization/", {"action": "suspend", "_selected_action": [str(acme.pk)]}
    )
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.status == OrgStatus.SUSPENDED
    assert AuditEvent.objects.filter(action="organization.suspended", actor__email="admin@keel.test").exists()


@pytest.mark.parametrize(
    "path",
    [
        "/admin/tenancy/organization/",
        "/admin/tenancy/user/",
        "/admin/tenancy/membership/",
        "/admin/tenancy/apikey/",
        "/admin/tenancy/auditevent/",
        "/admin/tenancy/partner/",
        "/admin/tenancy/invitation/",
        "/admin/tenancy/partnermembership/",
        "/admin/events/event/",
        "/admin/events/delivery/",
        "/admin/tenancy/apikey/add/",
        "/admin/tenancy/organization/add/",
    ],
)
def test_admin_screens_render(verified_admin_client, acme, alice, path):
    assert verified_admin_client.get(path).status_code == 200


def test_admin_creates_api_key_and_shows_it_once(verified_admin_client, acme):
    response = verified_admin_client.post(
        "/admin/tenancy/apikey/add/",
        {
            "name": "ops",
            "organization": str(acme.pk),
            "partner": "",
            "scope_choices": ["read"],
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("keel_" in m for m in messages)
    assert acme.api_keys.get().scopes == ["read"]
