"""Notifications in the portal: the bell (htmx partial with the unread count), the notifications page with mark as
read, the notification settings page (a person's channels, the organization's Slack for owners and admins), tenant
and person isolation, and constant query counts."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from notifications.models import Notification, NotificationPreference, SlackWebhook
from notifications.services import notify
from notifications.services.preferences import slack_webhook_set
from tenancy.crypto import decrypt
from tenancy.models import AuditEvent

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnop"
HTMX = {"HTTP_HX_REQUEST": "true"}


def tell(organization: Any, user: Any, title: str, **context: Any) -> Notification:
    notify(organization=organization, event_type="ticket.created", context={"title": title, **context}, users=[user])
    return Notification.objects.get(user=user, title=title)


@pytest.fixture
def inboxes(acme, alice, bob, globex, carol, frozen) -> dict[str, Notification]:
    made = {"old": tell(acme, alice, "Printer offline", url="/support/")}
    frozen.shift(timedelta(minutes=1))
    made["new"] = tell(acme, alice, "VPN down")
    made["bobs"] = tell(acme, bob, "Bob's ticket")
    made["carols"] = tell(globex, carol, "Globex ticket")
    return made


def bell_count(html: str) -> str | None:
    found = re.search(r'<span class="tag tag-danger" aria-hidden="true">([^<]+)</span>', html)
    return found.group(1) if found else None


# -- the bell ------------------------------------------------------------------------------------------------------


def test_the_header_loads_the_bell_without_a_query_and_htmx_fills_in_the_count(client_for, inboxes, alice):
    client = client_for(alice)
    page = client.get("/dashboard/").content.decode()
    assert 'hx-get="/notifications/bell/"' in page
    assert 'hx-trigger="load, every 30s, notifications-read from:body" hx-select="#notification-bell"' in page
    assert bell_count(page) is None  # the count comes with the first htmx request

    partial = client.get("/notifications/bell/", **HTMX)
    html = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in html
    assert bell_count(html) == "2"
    assert 'hx-trigger="every 30s, notifications-read from:body"' in html
    assert "Notifications: 2 unread" in html


@pytest.mark.isolation("portal:notifications_bell")
def test_the_bell_counts_only_the_persons_own_unread_in_this_organization(client_for, inboxes, alice, bob, carol):
    assert bell_count(client_for(bob).get("/notifications/bell/", **HTMX).content.decode()) == "1"
    assert bell_count(client_for(carol).get("/notifications/bell/", **HTMX).content.decode()) == "1"
    client_for(alice).post("/notifications/")  # mark all read
    html = client_for(alice).get("/notifications/bell/", **HTMX).content.decode()
    assert bell_count(html) is None and "Notifications</span>" in html
    assert bell_count(client_for(bob).get("/notifications/bell/", **HTMX).content.decode()) == "1"


def test_the_bell_shows_99_plus(client_for, acme, alice, frozen):
    for index in range(100):
        tell(acme, alice, f"Ticket {index}")
    assert bell_count(client_for(alice).get("/notifications/bell/", **HTMX).content.decode()) == "99+"


def test_no_bell_for_visitors(client):
    assert "notification-bell" not in client.get("/").content.decode()


# -- the notifications page ----------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:notifications")
def test_the_page_lists_the_persons_own_newest_first(client_for, inboxes, alice):
    response = client_for(alice).get("/notifications/")
    assert response.status_code == 200
    assert [n.title for n in response.context["notifications"]] == ["VPN down", "Printer offline"]
    html = response.content.decode()
    assert "Bob&#x27;s ticket" not in html and "Globex ticket" not in html
    assert "Mark all 2 as read" in html


def test_mark_all_read(client_for, inboxes, alice, bob):
    response = client_for(alice).post("/notifications/", follow=True)
    assert [str(m) for m in response.context["messages"]] == ["2 notifications marked as read."]
    assert Notification.objects.filter(user=alice, read_at__isnull=True).count() == 0
    assert Notification.objects.filter(user=bob, read_at__isnull=True).count() == 1
    assert [n.title for n in client_for(alice).get("/notifications/?show=unread").context["notifications"]] == []


@pytest.mark.isolation("portal:notification_read")
def test_reading_someone_elses_notification_is_404(client_for, inboxes, alice):
    client = client_for(alice)
    for other in ("bobs", "carols"):
        assert client.post(f"/notifications/{inboxes[other].pk}/read/").status_code == 404
        inboxes[other].refresh_from_db()
        assert inboxes[other].read_at is None
    assert client.get(f"/notifications/{inboxes['old'].pk}/read/").status_code == 405


def test_read_one_then_open_it(client_for, inboxes, alice):
    client = client_for(alice)
    response = client.post(f"/notifications/{inboxes['old'].pk}/read/", {"open": "1"})
    assert response.status_code == 302 and response["Location"] == "/support/"
    inboxes["old"].refresh_from_db()
    assert inboxes["old"].read_at is not None

    partial = client.post(f"/notifications/{inboxes['new'].pk}/read/", **HTMX)
    html = partial.content.decode()
    assert partial.status_code == 200 and html.startswith(f'<li id="notification-{inboxes["new"].pk}"')
    assert partial["HX-Trigger"] == "notifications-read"
    assert "Mark as read" not in html and "VPN down" in html
    assert client.post(f"/notifications/{inboxes['new'].pk}/read/").status_code == 302  # reading again is fine


@pytest.mark.parametrize("rows", [2, 25])
def test_the_page_queries_do_not_grow_with_rows(client_for, acme, alice, rows, frozen, django_assert_max_num_queries):
    for index in range(rows):
        tell(acme, alice, f"Ticket {index}")
    client = client_for(alice)
    # the portal's base (6), then the list's count, its page, and the unread count
    with django_assert_max_num_queries(9):
        response = client.get("/notifications/")
    assert len(response.context["notifications"]) == rows


# -- settings ------------------------------------------------------------------------------------------------------


def form_data(response: Any) -> dict[str, Any]:
    form = response.context["form"]
    data = {name: "on" for name in form.fields if form[name].value()}
    return {"form": "preferences", **data}


def test_the_settings_page_shows_role_defaults_and_saves_choices(client_for, acme, alice):
    client = client_for(alice)
    page = client.get("/settings/notifications/")
    assert page.status_code == 200
    assert '<a href="/settings/notifications/" aria-current="page">Notifications</a>' in page.content.decode()
    data = form_data(page)
    assert data["invoice.issued:email"] == "on" and data["invoice.issued:in_app"] == "on"
    assert "ticket.created:email" not in data and "invoice.issued:sms" not in data  # owners: tickets in-app only

    del data["invoice.issued:email"]
    data["ticket.created:email"] = "on"
    response = client.post("/settings/notifications/", data, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Your notification settings are saved."]
    saved = {row.event_type: row.channels for row in NotificationPreference.objects.for_org(acme).filter(user=alice)}
    assert saved["invoice.issued"] == {"in_app"} and saved["ticket.created"] == {"in_app", "email"}
    assert len(saved) == 17  # every event type shown (those for members)


def test_sms_needs_a_mobile_number(client_for, acme, alice):
    client = client_for(alice)
    data = {**form_data(client.get("/settings/notifications/")), "payment.failed:sms": "on"}
    response = client.post("/settings/notifications/", data)
    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        "Add a valid mobile number to your profile to get notifications by SMS."
    ]
    assert not NotificationPreference.objects.exists()
    alice.phone = "0412 000 111"
    alice.save(update_fields=["phone"])
    assert client.post("/settings/notifications/", data).status_code == 302
    assert NotificationPreference.objects.get(user=alice, event_type="payment.failed").sms is True
    assert "SMS goes to +61412000111." in client.get("/settings/notifications/").content.decode()


@pytest.mark.isolation("portal:settings_notifications")
def test_settings_touch_only_the_persons_own_and_their_organizations_slack(client_for, acme, globex, alice, carol):
    slack_webhook_set(organization=globex, url=HOOK.replace("T0001", "TGLOBEX"), event_types=["ticket.created"])
    page = client_for(alice).get("/settings/notifications/").content.decode()
    assert "TGLOBEX" not in page and "hooks.slack.com/…mnop" not in page
    data = {"form": "slack", "url": HOOK, "event_types": ["platform.incident"]}
    assert client_for(alice).post("/settings/notifications/", data).status_code == 302
    assert client_for(alice).post("/settings/notifications/", {"form": "preferences"}).status_code == 302
    globex_hook = SlackWebhook.objects.for_org(globex).get()
    assert globex_hook.event_types == ["ticket.created"] and "TGLOBEX" in decrypt(globex_hook.url_encrypted)
    assert not NotificationPreference.objects.filter(user=carol).exists()
    assert NotificationPreference.objects.filter(user=alice, organization=acme).count() == 17


def test_owners_set_the_organizations_slack(client_for, acme, alice):
    client = client_for(alice)
    data = {"form": "slack", "url": HOOK, "event_types": ["platform.incident", "ticket.sla_breached"]}
    response = client.post("/settings/notifications/", data, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Slack settings are saved."]
    webhook = SlackWebhook.objects.for_org(acme).get()
    assert (webhook.hint, webhook.event_types) == (
        "hooks.slack.com/…mnop",
        ["platform.incident", "ticket.sla_breached"],
    )
    assert decrypt(webhook.url_encrypted) == HOOK and HOOK not in webhook.url_encrypted
    assert "Posting to <code>hooks.slack.com/…mnop</code>: 2 event types." in response.content.decode()
    event = AuditEvent.objects.get(action="notifications.slack_set")
    assert (event.actor, event.changes) == (
        alice, {"event_types": ["platform.incident", "ticket.sla_breached"], "url": "hooks.slack.com/…mnop"}
    )  # fmt: skip

    # An empty address keeps the current one; "remove" forgets it.
    client.post("/settings/notifications/", {"form": "slack", "url": "", "event_types": ["ticket.created"]})
    webhook.refresh_from_db()
    assert webhook.event_types == ["ticket.created"] and decrypt(webhook.url_encrypted) == HOOK
    client.post("/settings/notifications/", {"form": "slack", "remove": "on"})
    assert not SlackWebhook.objects.exists()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://hooks.slack.com/services/T0001/B0001/abcdefghijklmnop",
         "Use the https:// address Slack gives for the incoming webhook."),
        ("https://intranet.acme.test/services/T0001/B0001/abcdefghijklmnop",
         "Slack incoming webhooks start with https://hooks.slack.com/."),
        ("https://user:pw@hooks.slack.com/services/T0001/B0001/abcd", "Use the address exactly as Slack gives it."),
        ("https://hooks.slack.com/x", "The address is incomplete: copy all of it from Slack."),
        ("", "Paste the incoming webhook address from Slack."),
    ],
)  # fmt: skip
def test_a_bad_slack_address_is_a_form_error(client_for, acme, alice, url, error):
    response = client_for(alice).post("/settings/notifications/", {"form": "slack", "url": url})
    assert response.status_code == 400
    assert response.context["slack_form"].errors == {"url": [error]}
    assert not SlackWebhook.objects.exists()


def test_members_choose_their_own_channels_but_not_slack(client_for, acme, bob):
    client = client_for(bob)
    page = client.get("/settings/notifications/")
    assert page.status_code == 200 and page.context["slack_form"] is None
    assert "Slack for" not in page.content.decode()
    assert client.post("/settings/notifications/", {"form": "slack", "url": HOOK}).status_code == 404
    assert not SlackWebhook.objects.exists()
