"""POST /webhooks/ninjaone/: the shared secret, bad bodies, unlinked NinjaOne organizations, a ticket per alert
(priority from severity, device and alert in the description), dedupe by activity id, alert id and condition, resets
that note and resolve, retriggers, out-of-order deliveries, tenant isolation and concurrent deliveries."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from integrations.ninjaone.models import Alert, AlertState, NinjaOneSettings, Outcome, WebhookEvent
from integrations.ninjaone.services.alerts import activity_receive
from tests.helpers import race
from tests.integrations.ninjaone.conftest import GLOBEX_NINJA, PATH, SECRET, TRIGGERED_AT, activity, deliver, link
from tickets.models import Channel, Comment, Ticket, TicketStatus

pytestmark = pytest.mark.django_db


def nothing_written() -> bool:
    return not (WebhookEvent.objects.exists() or Alert.objects.exists() or Ticket.objects.exists())


# -- the secret -----------------------------------------------------------------------------------------------------


def test_a_missing_secret_is_401_and_writes_nothing(client, acme_linked):
    response = deliver(client, activity(), secret=None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert nothing_written()


def test_a_wrong_secret_is_403_and_writes_nothing(client, acme_linked, caplog):
    with caplog.at_level(logging.WARNING, logger="integrations.ninjaone.webhooks"):
        assert deliver(client, activity(), secret=SECRET + "x").status_code == 403
        assert deliver(client, activity(), secret="", bearer=True).status_code == 401
        assert deliver(client, activity(), secret="wrong", bearer=True).status_code == 403
    assert "wrong secret" in caplog.text
    assert nothing_written()


def test_the_secret_may_come_as_a_bearer_token_and_the_slash_is_optional(client, acme_linked):
    assert deliver(client, activity(), bearer=True).status_code == 200
    assert deliver(client, activity(series="another", condition="cond-cpu"), path=PATH.rstrip("/")).status_code == 200
    assert Ticket.objects.for_org(acme_linked).count() == 2


def test_without_a_configured_secret_every_delivery_is_refused(client, acme_linked, settings):
    settings.NINJAONE_WEBHOOK_SECRET = ""
    assert deliver(client, activity(), secret="").status_code == 503  # an empty secret never matches
    assert deliver(client, activity(), secret="anything").status_code == 503
    assert nothing_written()


def test_only_post_is_served(client):
    assert client.get(PATH).status_code == 405
    assert client.put(PATH, "{}", content_type="application/json").status_code == 405


# -- bad bodies -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ("not json", {"body": ["The body is not JSON."]}),
        ("[1, 2]", {"body": ["Must be a JSON object: one NinjaOne activity."]}),
        ("{}", {"id": ["The activity id is required (a number or text)."], "activityType": ["Required."]}),
    ],
)
def test_a_body_that_is_not_an_activity_is_400(client, acme_linked, body, errors):
    response = deliver(client, body)
    assert (response.status_code, response.json()) == (400, errors)
    assert nothing_written()


def test_a_condition_without_its_fields_is_400_naming_each(client, acme_linked):
    body = activity()
    for name in ("statusCode", "status", "organizationId", "deviceId", "seriesUid", "sourceConfigUid", "device"):
        body.pop(name)
    body["activityTime"] = "yesterday"
    response = deliver(client, body)
    assert response.status_code == 400
    assert sorted(response.json()) == ["activityTime", "deviceId", "organizationId", "seriesUid", "statusCode"]
    assert nothing_written()


def test_an_organization_that_contradicts_the_device_is_400(client, acme_linked, globex_linked):
    body = activity()
    body["device"]["organizationId"] = int(GLOBEX_NINJA)
    response = deliver(client, body)
    assert (response.status_code, response.json()) == (
        400,
        {"organizationId": ["Does not match device.organizationId."]},
    )
    assert nothing_written()


def test_a_nul_character_is_refused(client, acme_linked):
    response = deliver(client, activity(message="disk\u0000full"))
    assert (response.status_code, list(response.json())) == (400, ["body"])
    assert nothing_written()


def test_an_oversized_body_is_refused(client, acme_linked):
    response = deliver(client, activity(message="x" * (300 * 1024)))
    assert response.status_code == 413
    assert nothing_written()


# -- what is acknowledged and ignored -------------------------------------------------------------------------------


def test_an_unlinked_ninjaone_organization_is_acknowledged_kept_and_logged(client, acme_linked, caplog):
    body = activity(org=404)
    with caplog.at_level(logging.WARNING, logger="integrations.ninjaone.services.alerts"):
        response = deliver(client, body)
        repeat = deliver(client, body)
    assert response.status_code == 202
    assert response.json()["outcome"] == "ignored"
    assert (repeat.status_code, repeat.json()["duplicate"]) == (202, True)
    assert "No organization is linked to NinjaOne organization 404" in caplog.text
    event = WebhookEvent.objects.get()
    assert (event.organization, event.ninjaone_org_id, event.outcome) == (None, "404", Outcome.IGNORED)
    assert not Ticket.objects.exists()
    assert not Alert.objects.exists()


def test_a_ninjaone_organization_linked_twice_is_not_guessed(client, acme_linked, globex):
    link(globex, acme_linked.ninjaone_org_id)
    response = deliver(client, activity())
    assert response.status_code == 202
    assert "More than one organization" in response.json()["detail"]
    assert not Ticket.objects.exists()


def test_activities_other_than_conditions_are_acknowledged_and_not_stored(client, acme_linked):
    body = {"id": 5, "activityType": "SYSTEM", "statusCode": "SYSTEM_REBOOTED", "deviceId": 1042, "organizationId": 7}
    response = deliver(client, body)
    assert (response.status_code, response.json()["outcome"]) == (202, "ignored")
    assert nothing_written()


def test_an_unhandled_condition_status_is_kept_and_changes_nothing(client, acme_linked):
    response = deliver(client, activity(status="ACKNOWLEDGED"))
    assert response.status_code == 202
    assert WebhookEvent.objects.get().detail == "Condition status ACKNOWLEDGED is not handled."
    assert not Ticket.objects.exists()


# -- a ticket per alert ---------------------------------------------------------------------------------------------


def test_a_triggered_alert_opens_a_ticket_with_the_device_and_the_alert(client, acme_linked):
    response = deliver(client, activity(activity_id=880000))
    assert response.status_code == 200
    ticket = Ticket.objects.for_org(acme_linked).get()
    assert response.json() == {
        "received": True,
        "id": "880000",
        "outcome": "opened",
        "detail": f"Opened {ticket.reference} (P2).",
        "duplicate": False,
        "ticket": ticket.reference,
    }
    assert (ticket.channel, ticket.priority, ticket.status, ticket.category) == (Channel.NINJAONE, "P2", "NEW",
                                                                                "Monitoring")  # fmt: skip
    assert ticket.subject == "NinjaOne: Disk free space on ACME-SRV01"
    assert ticket.tags == ["ninjaone", "severity-major"]
    for line in (
        "NinjaOne raised an alert on ACME-SRV01.",
        "Alert: C: has 4% free space (2.1 GB of 60 GB)",
        "Condition: Disk free space",
        "Severity: Major (ticket priority P2)",
        "Device: ACME-SRV01 (Windows server), NinjaOne device 1042",
        "Triggered: 2 Mar 2026, 20:00 AEDT (Australia/Sydney)",
        "Device in NinjaOne: https://app.ninjarmm.com/#/deviceDashboard/1042/overview",
        "NinjaOne alert: series-disk-1042",
        "Keel adds a note here when NinjaOne resets the alert, and resolves this ticket then.",
    ):
        assert line in ticket.description.splitlines()
    alert = Alert.objects.for_org(acme_linked).get()
    assert (alert.uid, alert.device_id, alert.device_name, alert.state, alert.ticket) == (
        "series-disk-1042", "1042", "ACME-SRV01", AlertState.OPEN, ticket)  # fmt: skip
    assert alert.triggered_at == TRIGGERED_AT
    event = WebhookEvent.objects.get()
    assert (event.provider_event_id, event.organization, event.outcome, event.alert) == (
        "880000", acme_linked, Outcome.OPENED, alert)  # fmt: skip
    assert NinjaOneSettings.objects.get(organization=acme_linked).resolve_on_reset is True


@pytest.mark.parametrize(
    ("severity", "priority"),
    [("CRITICAL", "P1"), ("MAJOR", "P2"), ("MODERATE", "P3"), ("MINOR", "P4"), ("NONE", "P4"), (None, "P3")],
)
def test_the_ticket_priority_follows_the_severity(client, acme_linked, severity, priority):
    assert deliver(client, activity(severity=severity)).status_code == 200
    assert Ticket.objects.for_org(acme_linked).get().priority == priority


def test_the_synced_device_fills_in_what_the_delivery_leaves_out(client, acme_linked):
    from integrations.ninjaone.models import Device

    Device.objects.create(organization=acme_linked, ninja_id="1042", display_name="ACME-SRV01",
                          node_class="WINDOWS_SERVER", os_name="Windows Server 2022 Standard")  # fmt: skip
    body = activity()
    del body["device"]
    assert deliver(client, body).status_code == 200
    description = Ticket.objects.get().description
    assert "Device: ACME-SRV01 (Windows server), NinjaOne device 1042" in description
    assert "Operating system: Windows Server 2022 Standard" in description


# -- dedupe and reset -----------------------------------------------------------------------------------------------


def notes(ticket: Ticket) -> list[str]:
    return list(Comment.objects.for_org(ticket.organization_id).filter(ticket=ticket).values_list("body", flat=True))


def test_ninjaone_dedupe_and_reset(client, acme_linked):
    first = activity()
    assert deliver(client, first).json()["outcome"] == "opened"
    ticket = Ticket.objects.for_org(acme_linked).get()

    # NinjaOne repeats the delivery: the same activity id changes nothing.
    repeat = deliver(client, first)
    assert (repeat.status_code, repeat.json()["duplicate"], repeat.json()["outcome"]) == (200, True, "opened")
    # The same alert (its seriesUid) delivered again as a new activity: still active, nothing new.
    again = deliver(client, activity(at=TRIGGERED_AT + timedelta(minutes=1)))
    assert again.json()["outcome"] == "joined"
    assert notes(ticket) == []
    # Another alert of the same condition on the same device while the ticket is open joins it, with a note.
    sibling = deliver(client, activity(series="series-disk-1042-b", at=TRIGGERED_AT + timedelta(minutes=5)))
    assert (sibling.json()["outcome"], sibling.json()["ticket"]) == ("joined", ticket.reference)
    assert Ticket.objects.for_org(acme_linked).count() == 1
    assert len(notes(ticket)) == 1 and "triggered again" in notes(ticket)[0]

    # The first alert resets: noted, but the ticket stays open while the other alert is active.
    reset_first = activity(status="RESET", at=TRIGGERED_AT + timedelta(minutes=20), message="C: has 31% free space")
    answer = deliver(client, reset_first)
    assert (answer.json()["outcome"], answer.json()["detail"]) == (
        "commented", f"Noted on {ticket.reference}; another alert on it is still active.")  # fmt: skip
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.NEW
    # The second resets: noted and resolved.
    answer = deliver(
        client, activity(status="RESET", series="series-disk-1042-b", at=TRIGGERED_AT + timedelta(minutes=25))
    )
    assert answer.json()["outcome"] == "resolved"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED
    comments = Comment.objects.for_org(acme_linked).filter(ticket=ticket)
    assert comments.count() == 3
    assert all(comment.internal and comment.by_staff and comment.channel == Channel.NINJAONE for comment in comments)
    assert "NinjaOne reset the alert on ACME-SRV01 at 2 Mar 2026, 20:20 AEDT" in notes(ticket)[1]
    assert ticket.first_responded_at is None  # automated notes are not a technician's response
    # A repeated RESET delivery adds nothing.
    assert deliver(client, reset_first).json()["duplicate"] is True
    assert comments.count() == 3
    assert set(Alert.objects.for_org(acme_linked).values_list("state", flat=True)) == {AlertState.RESET}


def test_a_reset_leaves_the_ticket_to_a_technician_when_the_organization_says_so(client, acme_linked):
    NinjaOneSettings.objects.create(organization=acme_linked, resolve_on_reset=False)
    deliver(client, activity())
    ticket = Ticket.objects.get()
    assert "a technician resolves this ticket." in ticket.description
    answer = deliver(client, activity(status="RESET", at=TRIGGERED_AT + timedelta(minutes=3)))
    assert answer.json()["outcome"] == "commented"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.NEW
    assert len(notes(ticket)) == 1
    # Triggering again while that ticket is still open joins it.
    again = deliver(client, activity(at=TRIGGERED_AT + timedelta(minutes=9)))
    assert (again.json()["outcome"], Ticket.objects.count()) == ("joined", 1)
    assert Alert.objects.get().state == AlertState.OPEN


def test_a_retrigger_after_the_ticket_was_resolved_opens_a_new_ticket_naming_the_old(client, acme_linked):
    deliver(client, activity())
    deliver(client, activity(status="RESET", at=TRIGGERED_AT + timedelta(minutes=10)))
    first = Ticket.objects.get()
    assert first.status == TicketStatus.RESOLVED
    answer = deliver(client, activity(at=TRIGGERED_AT + timedelta(hours=2)))
    assert answer.json()["outcome"] == "opened"
    second = Ticket.objects.exclude(pk=first.pk).get()
    assert f"Previous ticket for this alert: {first.reference} (Resolved)" in second.description
    first.refresh_from_db()
    assert first.status == TicketStatus.RESOLVED
    alert = Alert.objects.get()
    assert (alert.state, alert.ticket, alert.reset_at) == (AlertState.OPEN, second, None)


def test_a_new_alert_of_a_condition_whose_ticket_was_closed_opens_a_new_ticket(client, acme_linked):
    from tickets.services import ticket_set_status

    deliver(client, activity())
    ticket_set_status(ticket=Ticket.objects.get(), status=TicketStatus.CLOSED)
    answer = deliver(client, activity(series="series-disk-1042-b", at=TRIGGERED_AT + timedelta(hours=1)))
    assert answer.json()["outcome"] == "opened"
    assert Ticket.objects.count() == 2


def test_a_more_severe_alert_joining_a_ticket_raises_its_priority(client, acme_linked):
    deliver(client, activity(severity="MINOR"))
    deliver(client, activity(series="series-disk-1042-b", severity="CRITICAL", at=TRIGGERED_AT + timedelta(minutes=2)))
    deliver(client, activity(series="series-disk-1042-c", severity="MODERATE", at=TRIGGERED_AT + timedelta(minutes=3)))
    assert Ticket.objects.get().priority == "P1"


def test_a_different_condition_or_device_opens_its_own_ticket(client, acme_linked):
    deliver(client, activity())
    deliver(client, activity(series="cpu", condition="cond-cpu", condition_name="CPU usage"))
    deliver(client, activity(series="disk-ws", device=2001, device_name="ACME-WS01"))
    assert Ticket.objects.for_org(acme_linked).count() == 3


def test_a_reset_before_its_trigger_is_remembered_and_the_late_trigger_opens_nothing(client, acme_linked):
    reset = deliver(client, activity(status="RESET", at=TRIGGERED_AT + timedelta(minutes=5)))
    assert (reset.status_code, reset.json()["outcome"]) == (202, "ignored")
    late = deliver(client, activity(at=TRIGGERED_AT))
    assert (late.status_code, late.json()["detail"]) == (202, "Older than the reset already received for this alert.")
    assert not Ticket.objects.exists()
    assert Alert.objects.get().state == AlertState.RESET


def test_a_reset_older_than_the_latest_trigger_is_ignored(client, acme_linked):
    deliver(client, activity())
    deliver(client, activity(status="RESET", at=TRIGGERED_AT + timedelta(minutes=5)))
    deliver(client, activity(at=TRIGGERED_AT + timedelta(hours=1)))  # a new ticket for the retrigger
    stale = deliver(client, activity(status="RESET", at=TRIGGERED_AT + timedelta(minutes=30)))
    assert stale.json()["detail"] == "Older than the alert's latest trigger."
    assert Alert.objects.get().state == AlertState.OPEN
    assert Ticket.objects.filter(status=TicketStatus.NEW).count() == 1


def test_a_reset_reaches_the_ticket_an_alert_ticket_was_merged_into(client, acme_linked):
    from tickets.services import ticket_create, ticket_merge

    deliver(client, activity())
    alert_ticket = Ticket.objects.get()
    keeper = ticket_create(organization=acme_linked, subject="Server is slow", description="Since this morning")
    ticket_merge(ticket=alert_ticket, into=keeper)
    answer = deliver(client, activity(status="RESET", at=TRIGGERED_AT + timedelta(minutes=5)))
    assert (answer.json()["outcome"], answer.json()["detail"]) == ("resolved", f"Resolved {keeper.reference}.")
    keeper.refresh_from_db()
    assert keeper.status == TicketStatus.RESOLVED


# -- tenant isolation -----------------------------------------------------------------------------------------------


@pytest.mark.isolation("ninjaone-webhook")
def test_a_delivery_reaches_only_the_organization_its_ninjaone_organization_is_linked_to(
    client, alice, acme_linked, globex_linked
):
    # Not a tenant route: a portal session grants nothing, and the NinjaOne organization in the body alone decides.
    client.force_login(alice)
    assert deliver(client, activity(series="shared-uid"), secret=None).status_code == 401
    assert deliver(client, activity(series="shared-uid", org=GLOBEX_NINJA, device=9001)).status_code == 200
    globex_ticket = Ticket.objects.for_org(globex_linked).get()
    assert not Ticket.objects.for_org(acme_linked).exists()
    # The same alert id in Acme's NinjaOne organization is Acme's own alert, with its own ticket.
    assert deliver(client, activity(series="shared-uid")).json()["outcome"] == "opened"
    acme_ticket = Ticket.objects.for_org(acme_linked).get()
    # A Globex alert on the device id and condition of Acme's open ticket opens Globex's own ticket.
    assert deliver(client, activity(series="globex-2", org=GLOBEX_NINJA)).json()["outcome"] == "opened"
    assert Ticket.objects.for_org(globex_linked).count() == 2
    assert not Comment.objects.for_org(acme_linked).exists()
    # Acme's reset resolves Acme's ticket only; Globex's alerts stay active and their tickets open.
    deliver(client, activity(series="shared-uid", status="RESET", at=TRIGGERED_AT + timedelta(minutes=1)))
    acme_ticket.refresh_from_db()
    globex_ticket.refresh_from_db()
    assert (acme_ticket.status, globex_ticket.status) == (TicketStatus.RESOLVED, TicketStatus.NEW)
    assert list(Alert.objects.for_org(globex_linked).values_list("state", flat=True)) == [AlertState.OPEN] * 2
    assert set(WebhookEvent.objects.values_list("organization__slug", flat=True)) == {"acme", "globex"}
    assert not Comment.objects.for_org(globex_linked).exists()


# -- concurrent deliveries ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_activity_open_one_ticket(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    link(acme, "7")
    body = json.dumps(activity()).encode()

    outcomes = race(lambda: activity_receive(body=body), 4)

    assert all(not isinstance(outcome, Exception) for outcome in outcomes), outcomes
    assert sorted(outcome.duplicate for outcome in outcomes) == [False, True, True, True]
    assert Ticket.objects.count() == 1
    assert WebhookEvent.objects.count() == 1
    assert Alert.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_alerts_of_one_condition_share_one_ticket(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    link(acme, "7")
    bodies = iter([json.dumps(activity(series=f"series-{n}")).encode() for n in range(4)])

    def post() -> int:
        response = deliver(Client(), next(bodies))
        return response.json()["outcome"]

    outcomes = race(post, 4)

    assert sorted(outcomes) == ["joined", "joined", "joined", "opened"]
    assert Ticket.objects.count() == 1
    assert Alert.objects.filter(ticket=Ticket.objects.get()).count() == 4
