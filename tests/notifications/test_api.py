"""The notifications API: the caller's own in-app notifications (a person's, or the key owner's), unread filter, mark
read one or all, scopes, bad input by field, tenant and person isolation, and constant query counts."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from notifications.models import Notification
from notifications.services import notify
from notifications.services.inbox import notification_read
from tenancy.services import api_key_create

pytestmark = pytest.mark.django_db

SCOPES = ["read", "write", "notifications:read", "notifications:write"]


def session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def key_of(user: Any, organization: Any = None, partner: Any = None, scopes: list[str] = SCOPES) -> str:
    _, raw = api_key_create(name="n", scopes=scopes, organization=organization, partner=partner, created_by=user)
    # Creating a key alerts the organization's owners (tests/tenancy/test_security_alerts.py); not what is read here.
    Notification.objects.filter(event_type="security.api_key_created").delete()
    return raw


def tell(organization: Any, user: Any, title: str, **context: Any) -> Notification:
    notify(organization=organization, event_type="ticket.created", context={"title": title, **context}, users=[user])
    return Notification.objects.get(user=user, title=title)


@pytest.fixture
def inboxes(acme, alice, bob, globex, carol, frozen) -> dict[str, Notification]:
    made = {"old": tell(acme, alice, "Printer offline", url="/support/tickets/1/")}
    frozen.shift(60)
    made["new"] = tell(acme, alice, "VPN down")
    made["bobs"] = tell(acme, bob, "Bob's ticket")
    made["carols"] = tell(globex, carol, "Globex ticket")
    return made


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["title"] for item in response.json()["results"]]


def test_a_person_lists_and_reads_their_notifications(inboxes, alice, settings, frozen):
    settings.SITE_URL = "https://portal.keel.test"
    client = session(alice)
    notification_read(notification=inboxes["new"])
    body = client.get("/api/notifications/").json()
    assert body["count"] == 2
    assert body["results"][1] == {
        "id": str(inboxes["old"].pk),
        "organization": "acme",
        "event_type": "ticket.created",
        "title": "Printer offline",
        "body": "",
        "url": "https://portal.keel.test/support/tickets/1/",
        "read": False,
        "read_at": None,
        "created_at": "2026-11-17T01:00:00Z",
    }
    assert titles(client.get("/api/notifications/?unread=true")) == ["Printer offline"]
    assert titles(client.get("/api/notifications/?unread=false")) == ["VPN down"]

    read = client.post(f"/api/notifications/{inboxes['old'].pk}/read/")
    assert read.status_code == 200 and read.json()["read"] is True
    assert read.json()["read_at"] == "2026-11-17T01:01:00Z"
    assert titles(client.get("/api/notifications/?unread=true")) == []


def test_read_all_marks_only_the_callers_unread_ones(inboxes, alice, bob):
    response = session(alice).post("/api/notifications/read-all/")
    assert response.status_code == 200 and response.json() == {"marked": 2}
    assert session(alice).post("/api/notifications/read-all/").json() == {"marked": 0}
    inboxes["bobs"].refresh_from_db()
    inboxes["carols"].refresh_from_db()
    assert inboxes["bobs"].read_at is None and inboxes["carols"].read_at is None


def test_a_key_acts_for_the_person_who_created_it(inboxes, api, acme, alice, bob):
    assert titles(api(key_of(alice, organization=acme)).get("/api/notifications/")) == ["VPN down", "Printer offline"]
    assert titles(api(key_of(bob, organization=acme)).get("/api/notifications/")) == ["Bob's ticket"]
    _, ownerless = api_key_create(name="n", scopes=SCOPES, organization=acme)
    response = api(ownerless).get("/api/notifications/")
    assert response.status_code == 403
    assert response.json() == {"detail": "This API key has no owner whose notifications it could read."}


def test_scopes_decide(inboxes, api, acme, alice):
    read_only = api(key_of(alice, organization=acme, scopes=["read", "notifications:read"]))
    assert read_only.get("/api/notifications/").status_code == 200
    assert read_only.post("/api/notifications/read-all/").status_code == 403
    other_area = api(key_of(alice, organization=acme, scopes=["read", "write", "sms:read"]))
    assert other_area.get("/api/notifications/").status_code == 403
    assert api(None).get("/api/notifications/").status_code == 401


@pytest.mark.parametrize("value", ["yes", "1", "maybe"])
def test_a_bad_unread_filter_is_a_400_naming_it(inboxes, alice, value):
    response = session(alice).get(f"/api/notifications/?unread={value}")
    assert response.status_code == 400 and response.json() == {"unread": ["Must be true or false."]}


@pytest.mark.isolation("api-notification-list")
def test_lists_show_only_the_callers_own_in_their_organizations(inboxes, api, acme, summit, alice, carol, pat):
    assert titles(session(alice).get("/api/notifications/")) == ["VPN down", "Printer offline"]
    assert titles(session(carol).get("/api/notifications/")) == ["Globex ticket"]
    # Pat (Summit's admin) told about Initech only: a partner key lists Pat's, never Acme's people's or Globex's.
    notify(organization=pat.partner_memberships.get().partner.organizations.get(slug="initech"),
           event_type="ticket.created", context={"title": "Initech ticket"}, users=[pat])  # fmt: skip
    raw = key_of(pat, partner=summit)
    assert titles(api(raw).get("/api/notifications/")) == ["Initech ticket"]
    assert titles(api(raw, organization="acme").get("/api/notifications/")) == []
    assert api(raw, organization="globex").get("/api/notifications/").status_code == 404


@pytest.mark.isolation("api-notification-read")
def test_another_persons_or_organizations_notification_is_404(inboxes, api, acme, alice):
    for client in (session(alice), api(key_of(alice, organization=acme))):
        for other in ("bobs", "carols"):
            assert client.post(f"/api/notifications/{inboxes[other].pk}/read/").status_code == 404
        assert client.post("/api/notifications/not-a-uuid/read/").status_code == 404
    for other in ("bobs", "carols"):
        inboxes[other].refresh_from_db()
        assert inboxes[other].read_at is None


@pytest.mark.isolation("api-notification-read-all")
def test_read_all_never_reaches_other_organizations(inboxes, api, globex, carol, alice):
    assert api(key_of(carol, organization=globex)).post("/api/notifications/read-all/").json() == {"marked": 1}
    assert Notification.objects.filter(user=alice, read_at__isnull=True).count() == 2


def test_notifications_turned_off_in_app_are_not_listed(acme, alice, frozen):
    from notifications.services.preferences import preferences_update

    preferences_update(organization=acme, user=alice, choices={"invoice.issued": {"email"}})
    notify(organization=acme, event_type="invoice.issued", context={}, users=[alice])
    assert Notification.objects.filter(user=alice).count() == 1
    assert titles(session(alice).get("/api/notifications/")) == []


@pytest.mark.parametrize("rows", [2, 30])
def test_list_queries_do_not_grow_with_the_page(api, acme, alice, rows, frozen, django_assert_max_num_queries):
    for index in range(rows):
        tell(acme, alice, f"Ticket {index}")
        frozen.shift(1)
    client = api(key_of(alice, organization=acme))
    # key lookup, key touch, the key's owner, the page's count, the page (with its organizations)
    with django_assert_max_num_queries(5):
        response = client.get("/api/notifications/?page_size=50")
    assert len(response.json()["results"]) == rows
    person = session(alice)
    # user, second-factor device, organizations requiring it, the visible organizations, the role there, the page's
    # count, the page (with its organizations), and 3 to save the session (savepoint, update, release)
    with django_assert_max_num_queries(10):
        response = person.get("/api/notifications/?page_size=50")
    assert len(response.json()["results"]) == rows
