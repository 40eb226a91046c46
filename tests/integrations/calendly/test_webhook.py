"""POST /webhooks/calendly/: signature, idempotency, and the qualification's discovery-call status."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection

from events.models import Event
from integrations.calendly.models import Booking, BookingStatus, WebhookEvent
from integrations.calendly.signing import sign
from qualification.services import qualification_review
from tenancy.models import AuditEvent
from tests.helpers import race
from tests.integrations.calendly.conftest import KEY, deliver, invitee, make, post

pytestmark = pytest.mark.django_db

SCHEDULED = "DISCOVERY_CALL_SCHEDULED"


def status_changes():
    return [
        (event.payload["previous_status"], event.payload["status"])
        for event in Event.objects.filter(type="qualification.status_changed").order_by("created_at")
    ]


def nothing_written():
    return not (WebhookEvent.objects.exists() or Booking.objects.exists() or Event.objects.exists())


@pytest.mark.isolation("calendly-webhook")
def test_the_webhook_is_calendlys_alone_and_reveals_nothing(client, alice, acme, globex):
    # Not a tenant route: a session changes nothing, and the answer is the same whether the invitee is a prospect we
    # know or nobody, so a delivery cannot probe who our prospects are. Both spellings of the path are served.
    known = make()
    client.force_login(alice)
    first = deliver(client, invitee(known.customer_email, name="A"), path="/webhooks/calendly")
    second = deliver(client, invitee("nobody@globex.test", name="B"), path="/webhooks/calendly/")
    assert [(r.status_code, r.json()) for r in (first, second)] == [(200, {"received": True, "duplicate": False})] * 2
    assert "globex" not in second.content.decode().lower() and "acme" not in first.content.decode().lower()
    known.refresh_from_db()
    assert known.status == SCHEDULED and known.organization is None
    assert client.get("/webhooks/calendly/").status_code == 405


def test_invitee_created_schedules_the_call_and_publishes_the_change(client):
    qualification = make(email="Pat@Prospect.test")
    response = deliver(client, invitee("PAT@prospect.test"))
    assert response.status_code == 200
    qualification.refresh_from_db()
    assert qualification.status == SCHEDULED
    booking = Booking.objects.get()
    assert (booking.qualification, booking.status, booking.previous_status) == (
        qualification, BookingStatus.SCHEDULED, "DISCOVERY_CALL")  # fmt: skip
    assert booking.start_time.isoformat() == "2030-12-01T23:00:00+00:00"
    assert (booking.timezone, booking.invitee_email) == ("Australia/Sydney", "pat@prospect.test")
    event = Event.objects.get(type="qualification.status_changed")
    assert event.payload == {"id": str(qualification.id), "tier": "premium", "status": SCHEDULED,
                             "previous_status": "DISCOVERY_CALL"}  # fmt: skip
    audit = AuditEvent.objects.get(action="qualification.call_scheduled")
    assert (audit.actor_label, audit.changes["status"]) == ("Calendly", ["DISCOVERY_CALL", SCHEDULED])
    assert WebhookEvent.objects.get().outcome == "scheduled"


@pytest.mark.parametrize("status", ["DISCOVERY_CALL", "MANUAL_REVIEW", "CONDITIONAL_APPROVAL", "SUBMITTED"])
def test_a_call_can_be_booked_from_every_status_waiting_for_a_person(client, status):
    qualification = make(status=status)
    deliver(client, invitee(qualification.customer_email))
    deliver(client, invitee(qualification.customer_email, event="invitee.canceled", created_at="2030-11-21T00:00:00Z"))
    qualification.refresh_from_db()
    assert qualification.status == status
    assert status_changes() == [(status, SCHEDULED), (SCHEDULED, status)]


@pytest.mark.parametrize(
    "tamper", ["wrong_key", "body_changed", "stale", "future", "no_header", "garbage_header", "no_key_configured"]
)
def test_a_bad_signature_is_401_and_writes_nothing(client, calendly_settings, tamper):
    qualification = make()
    body = json.dumps(invitee(qualification.customer_email)).encode()
    now = int(time.time())
    signature: str | None = {
        "wrong_key": sign(body, "not-the-key", now),
        "body_changed": sign(body.replace(b"Discovery call", b"Discovery calm"), KEY, now),
        "stale": sign(body, KEY, now - 181),
        "future": sign(body, KEY, now + 200),  # beyond the 180 s tolerance even a second later
        "no_header": None,
        "garbage_header": "v1=deadbeef",
        "no_key_configured": sign(body, "", now),
    }[tamper]
    if tamper == "no_key_configured":
        calendly_settings.CALENDLY_WEBHOOK_SIGNING_KEY = ""
    response = post(client, body, signature)
    assert response.status_code == 401
    assert response.json()["detail"]
    qualification.refresh_from_db()
    assert qualification.status == "DISCOVERY_CALL"
    assert nothing_written()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: "not json", "body"),
        (lambda d: [d], "body"),
        (lambda d: {**d, "event": None}, "event"),
        (lambda d: {**d, "created_at": "yesterday"}, "created_at"),
        (lambda d: {**d, "payload": "x"}, "payload"),
        (lambda d: {**d, "payload": {**d["payload"], "email": "not-an-email"}}, "payload.email"),
        (lambda d: {**d, "payload": {**d["payload"], "uri": ""}}, "payload.uri"),
        (lambda d: {**d, "payload": {**d["payload"], "scheduled_event": None}}, "payload.scheduled_event"),
        (lambda d: {**d, "payload": {**d["payload"], "scheduled_event": {"start_time": "2030-12-01T23:00:00"}}},
         "payload.scheduled_event.start_time"),  # no offset
        (lambda d: {**d, "payload": {**d["payload"], "rescheduled": "yes"}}, "payload.rescheduled"),
    ],
)  # fmt: skip
def test_a_malformed_body_is_400_naming_the_field_and_writes_nothing(client, mutate, field):
    qualification = make()
    document = mutate(invitee(qualification.customer_email))
    body = document.encode() if isinstance(document, str) else json.dumps(document).encode()
    response = post(client, body, sign(body, KEY, int(time.time())))
    assert response.status_code == 400
    assert field in response.json()
    qualification.refresh_from_db()
    assert qualification.status == "DISCOVERY_CALL"
    assert nothing_written()


def test_an_event_type_we_do_not_handle_is_acknowledged_and_ignored(client):
    make()
    response = deliver(client, {"event": "routing_form_submission.created", "payload": {}})
    assert response.status_code == 200
    assert nothing_written()


def test_a_redelivery_changes_nothing(client):
    qualification = make()
    document = invitee(qualification.customer_email)
    first, again = deliver(client, document), deliver(client, document)  # signed afresh, as Calendly retries
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert (WebhookEvent.objects.count(), Booking.objects.count()) == (1, 1)
    assert status_changes() == [("DISCOVERY_CALL", SCHEDULED)]


def test_canceling_moves_the_qualification_back(client):
    qualification = make(status="MANUAL_REVIEW", tier="core_plus")
    deliver(client, invitee(qualification.customer_email))
    deliver(client, invitee(qualification.customer_email, event="invitee.canceled", created_at="2030-11-22T09:30:00Z"))
    qualification.refresh_from_db()
    booking = Booking.objects.get()
    assert qualification.status == "MANUAL_REVIEW"
    assert (booking.status, booking.rescheduled) == (BookingStatus.CANCELED, False)
    assert booking.canceled_at is not None and booking.canceled_at.isoformat() == "2030-11-22T09:30:00+00:00"
    assert status_changes() == [("MANUAL_REVIEW", SCHEDULED), (SCHEDULED, "MANUAL_REVIEW")]
    assert AuditEvent.objects.filter(action="qualification.call_canceled").count() == 1


@pytest.mark.parametrize("cancel_first", [True, False])
def test_a_reschedule_keeps_the_call_scheduled_at_the_new_time(client, cancel_first):
    qualification = make()
    email = qualification.customer_email
    deliver(client, invitee(email, name="OLD"))
    cancel = invitee(email, name="OLD", event="invitee.canceled", rescheduled=True, created_at="2030-11-21T00:00:00Z")
    new = invitee(email, name="NEW", start="2030-12-03T01:00:00Z", end="2030-12-03T01:30:00Z",
                  created_at="2030-11-21T00:00:00Z")  # fmt: skip
    for document in (cancel, new) if cancel_first else (new, cancel):
        assert deliver(client, document).status_code == 200
    qualification.refresh_from_db()
    assert qualification.status == SCHEDULED
    bookings = {b.invitee_uri.rsplit("/", 1)[1]: b for b in Booking.objects.all()}
    assert (bookings["INOLD"].status, bookings["INOLD"].rescheduled) == (BookingStatus.CANCELED, True)
    assert (bookings["INNEW"].status, bookings["INNEW"].previous_status) == (BookingStatus.SCHEDULED, "DISCOVERY_CALL")
    assert status_changes() == [("DISCOVERY_CALL", SCHEDULED)]
    # Canceling the new booking outright takes the qualification back to where it was before any call.
    deliver(client, invitee(email, name="NEW", event="invitee.canceled", created_at="2030-11-22T00:00:00Z"))
    qualification.refresh_from_db()
    assert qualification.status == "DISCOVERY_CALL"


def test_a_cancellation_arriving_before_its_booking_wins(client):
    qualification = make()
    email = qualification.customer_email
    deliver(client, invitee(email, event="invitee.canceled", created_at="2030-11-21T00:00:00Z"))
    late = deliver(client, invitee(email, created_at="2030-11-20T01:00:00Z"))
    assert late.status_code == 200
    qualification.refresh_from_db()
    assert qualification.status == "DISCOVERY_CALL"
    assert Booking.objects.get().status == BookingStatus.CANCELED
    assert status_changes() == []
    assert WebhookEvent.objects.get(event_type="invitee.created").outcome.startswith("ignored")


def test_cancelling_one_of_two_booked_calls_keeps_the_other(client):
    qualification = make()
    deliver(client, invitee(qualification.customer_email, name="ONE"))
    deliver(client, invitee(qualification.customer_email, name="TWO", start="2030-12-05T01:00:00Z",
                            end="2030-12-05T01:30:00Z"))  # fmt: skip
    deliver(client, invitee(qualification.customer_email, name="ONE", event="invitee.canceled"))
    qualification.refresh_from_db()
    assert qualification.status == SCHEDULED
    assert Booking.objects.filter(status=BookingStatus.SCHEDULED).count() == 1


def test_an_unknown_email_is_acknowledged_and_changes_nothing(client):
    qualification = make()
    response = deliver(client, invitee("stranger@elsewhere.test"))
    assert response.status_code == 200
    qualification.refresh_from_db()
    assert qualification.status == "DISCOVERY_CALL"
    assert not Booking.objects.exists() and not Event.objects.exists()
    assert WebhookEvent.objects.get().outcome == "ignored: no qualification for this invitee"


@pytest.mark.parametrize("status", ["AUTO_APPROVED", "APPROVED", "QUALIFIED", "NOT_QUALIFIED"])
def test_a_final_status_is_never_changed(client, status):
    qualification = make(status=status)
    deliver(client, invitee(qualification.customer_email))
    deliver(client, invitee(qualification.customer_email, event="invitee.canceled", created_at="2030-11-21T00:00:00Z"))
    qualification.refresh_from_db()
    assert qualification.status == status
    assert Booking.objects.get().previous_status == ""  # recorded for staff, nothing to restore
    assert status_changes() == []


def test_a_staff_decision_after_booking_stands_when_the_call_is_canceled(client):
    qualification = make()
    deliver(client, invitee(qualification.customer_email))
    qualification_review(qualification=qualification, status="QUALIFIED", actor=None)
    deliver(client, invitee(qualification.customer_email, event="invitee.canceled", created_at="2030-11-21T00:00:00Z"))
    qualification.refresh_from_db()
    assert qualification.status == "QUALIFIED"
    assert status_changes() == [("DISCOVERY_CALL", SCHEDULED), (SCHEDULED, "QUALIFIED")]


def test_a_customer_already_is_not_moved(client):
    qualification = make(status="MANUAL_REVIEW", converted=True)
    deliver(client, invitee(qualification.customer_email))
    qualification.refresh_from_db()
    assert qualification.status == "MANUAL_REVIEW"
    assert status_changes() == []


def test_with_several_tiers_the_one_waiting_for_a_call_is_moved(client):
    approved = make(tier="core_plus", status="AUTO_APPROVED")
    reviewing = make(tier="enterprise", status="SUBMITTED")
    waiting = make(tier="premium", status="DISCOVERY_CALL")
    deliver(client, invitee("PAT@prospect.test"))
    for qualification in (approved, reviewing, waiting):
        qualification.refresh_from_db()
    statuses = {q.tier: q.status for q in (approved, reviewing, waiting)}
    assert statuses == {"core_plus": "AUTO_APPROVED", "enterprise": "SUBMITTED", "premium": SCHEDULED}


def test_the_status_page_link_names_its_qualification_whatever_email_is_typed(client):
    waiting = make(tier="premium", status="DISCOVERY_CALL")
    reviewing = make(email="ceo@bigger.test", tier="enterprise", status="SUBMITTED")
    deliver(client, invitee(waiting.customer_email, utm_content=str(reviewing.id)))
    waiting.refresh_from_db()
    reviewing.refresh_from_db()
    assert (waiting.status, reviewing.status) == ("DISCOVERY_CALL", SCHEDULED)


@pytest.mark.django_db(transaction=True)
def test_concurrent_redeliveries_apply_once(client):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    qualification = make()
    document = invitee(qualification.customer_email)
    outcomes = race(lambda: deliver(client.__class__(), document).json()["duplicate"], workers=3)
    assert sorted(outcomes) == [False, True, True]
    assert (WebhookEvent.objects.count(), Booking.objects.count()) == (1, 1)
    assert status_changes() == [("DISCOVERY_CALL", SCHEDULED)]
