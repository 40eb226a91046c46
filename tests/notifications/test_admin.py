"""The staff admin for notifications: every screen loads for staff past the one-time password, the records are
read-only (no add, change or delete), filters work, the Slack address is never shown, and lists make the same number
of queries however many rows they show."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Delivery, Notice, Notification
from notifications.services import notify
from notifications.services.preferences import preferences_update, slack_webhook_set

pytestmark = pytest.mark.django_db

RECORDS = ["notice", "notification", "delivery", "notificationpreference", "slackwebhook"]
HOOK = "https://hooks.slack.com/services/T0001/B0001/secretsecretsecret"


@pytest.fixture
def seeded(acme, alice, bob, frozen) -> Notice:
    slack_webhook_set(organization=acme, url=HOOK, event_types=["ticket.created"])
    preferences_update(organization=acme, user=bob, choices={"ticket.created": {"in_app", "email"}})
    return notify(organization=acme, event_type="ticket.created", context={"title": "Printer"})


@pytest.mark.parametrize("model", RECORDS)
def test_records_are_listed_shown_and_read_only(staff_client, seeded, model):
    listing = staff_client.get(f"/admin/notifications/{model}/")
    assert listing.status_code == 200
    assert staff_client.get(f"/admin/notifications/{model}/add/").status_code == 403
    row = listing.context["cl"].result_list[0]
    page = staff_client.get(f"/admin/notifications/{model}/{row.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert staff_client.post(f"/admin/notifications/{model}/{row.pk}/delete/").status_code == 403
    assert HOOK not in listing.content.decode() + page.content.decode()


def test_deliveries_filter_by_channel_and_status(staff_client, seeded):
    email = staff_client.get("/admin/notifications/delivery/?channel__exact=email")
    assert [(d.channel, d.to) for d in email.context["cl"].result_list] == [("email", "bob@acme.test")]
    slack = staff_client.get("/admin/notifications/delivery/?channel__exact=slack&status__exact=PENDING")
    assert [d.channel for d in slack.context["cl"].result_list] == ["slack"]
    unread = staff_client.get("/admin/notifications/notification/?read_at__isempty=1")
    assert sorted(n.user.email for n in unread.context["cl"].result_list) == ["alice@acme.test", "bob@acme.test"]


@pytest.mark.parametrize("model", ["delivery", "notification"])
def test_lists_do_not_grow_in_queries(staff_client, acme, alice, bob, frozen, model):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(f"/admin/notifications/{model}/").status_code == 200
        return len(captured.captured_queries)

    preferences_update(organization=acme, user=bob, choices={"ticket.created": {"in_app", "email"}})
    notify(organization=acme, event_type="ticket.created", context={})
    few = count()
    for _ in range(10):
        notify(organization=acme, event_type="ticket.created", context={})
    assert Delivery.objects.count() == 11 and Notification.objects.count() == 22
    assert count() == few
