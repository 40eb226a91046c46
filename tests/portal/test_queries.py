"""List pages run a fixed number of queries, however many rows they show.

Every page pays the same base: 1 the signed-in user, 1 the organizations they may see (with their role, one query),
1 whether they have a second-factor device, and 3 to save the session (savepoint, update, release; sessions are
saved on every request so that idle expiry slides).
"""

from __future__ import annotations

import pytest

from tenancy.audit import audit_record
from tenancy.models import Role
from tenancy.services import api_key_create, invitation_create
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = 6


def add_rows(acme, alice, count: int, offset: int) -> None:
    for index in range(offset, offset + count):
        MembershipFactory(user=UserFactory(email=f"person{index}@acme.test"), organization=acme, role=Role.MEMBER)
        invitation_create(organization=acme, email=f"invitee{index}@acme.test", role=Role.MEMBER, invited_by=alice)
        api_key_create(name=f"key {index}", scopes=["read"], organization=acme, created_by=alice)
        audit_record(action=f"test.action{index % 4}", organization=acme, actor=alice)


@pytest.mark.parametrize("rows", [2, 25])
def test_dashboard(client_for, alice, acme, rows, django_assert_max_num_queries):
    add_rows(acme, alice, rows, 0)
    client = client_for(alice)
    # base + the counts with the recent audit events (one query: portal.dashboard_selectors)
    with django_assert_max_num_queries(BASE + 1):
        assert client.get("/dashboard/").status_code == 200


@pytest.mark.parametrize("rows", [2, 25])
def test_team(client_for, alice, acme, rows, django_assert_max_num_queries):
    add_rows(acme, alice, rows, 0)
    client = client_for(alice)
    # base + members with their users + open invitations with their inviters
    with django_assert_max_num_queries(BASE + 2):
        response = client.get("/settings/team/")
    assert len(response.context["memberships"]) == rows + 1


@pytest.mark.parametrize("rows", [2, 25])
def test_api_keys(client_for, alice, acme, rows, django_assert_max_num_queries):
    add_rows(acme, alice, rows, 0)
    client = client_for(alice)
    # base + keys with their creators
    with django_assert_max_num_queries(BASE + 1):
        response = client.get("/settings/api-keys/")
    assert len(response.context["api_keys"]) == rows


@pytest.mark.parametrize("rows", [2, 60])
def test_audit(client_for, alice, acme, rows, django_assert_max_num_queries):
    add_rows(acme, alice, rows, 0)
    client = client_for(alice)
    # base + distinct actions for the filter + count + one page of events
    with django_assert_max_num_queries(BASE + 3):
        response = client.get("/settings/audit/")
    assert len(response.context["page"].object_list) == min(50, response.context["page"].paginator.count)
