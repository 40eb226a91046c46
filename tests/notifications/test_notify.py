"""notify(): who is told (explicit people, roles, everyone), on which channels (their choice, else their role's
defaults), in which words (the event type's templates, else the generic ones, or an existing email template), once
per key, only after commit, and bad input refused by field."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.db import connection, transaction

from notifications.catalogue import EMAIL, IN_APP, SMS
from notifications.models import Delivery, DeliveryStatus, Notice, Notification, Reason
from notifications.services import notify
from notifications.services.preferences import preferences_update
from tenancy.errors import ServiceValidationError
from tenancy.models import Role
from tests.helpers import race

pytestmark = pytest.mark.django_db

OVERDUE = {"number": "INV-000184", "currency": "AUD", "amount_due": "1650.00", "due_on": "2026-12-05",
           "url": "/billing/invoices/"}  # fmt: skip


@pytest.fixture(autouse=True)
def _site(settings: Any, frozen: Any) -> None:
    settings.SITE_URL = "https://portal.keel.test"


def deliveries(notice: Notice) -> list[tuple[str, str, str]]:
    return sorted((d.channel, d.to, d.status) for d in Delivery.objects.filter(notice=notice))


def test_role_defaults_decide_who_hears_of_a_billing_event_and_how(send, acme, alice, bob, dan):
    notice = send(organization=acme, event_type="invoice.overdue", context=OVERDUE)

    # Owners: email + in-app; managers: in-app; members (technicians): nothing about billing.
    told = {n.user.email: n.in_app for n in Notification.objects.for_org(acme).select_related("user")}
    assert told == {"alice@acme.test": True, "dan@acme.test": True}
    assert deliveries(notice) == [(EMAIL, "alice@acme.test", DeliveryStatus.SENT)]
    assert (notice.recipients, notice.notified) == (3, 2)
    [message] = mail.outbox
    assert message.to == ["alice@acme.test"]
    assert message.subject == "Invoice INV-000184 is overdue"
    assert message.body.startswith(
        "Hello Alice,\n\nInvoice INV-000184 of Acme Pty Ltd for AUD 1650.00 was due on 2026-12-05"
    )
    assert "Open it: https://portal.keel.test/billing/invoices/" in message.body
    html = message.alternatives[0][0]  # type: ignore[attr-defined]
    assert "<p>Hello Alice,</p>" in html and 'href="https://portal.keel.test/billing/invoices/"' in html
    alices = Notification.objects.get(user=alice)
    assert (alices.title, alices.body) == ("Invoice INV-000184 is overdue", "AUD 1650.00 was due on 2026-12-05.")


def test_technicians_hear_of_ticket_events_in_the_portal_only(send, acme, alice, bob):
    context = {"reference": "T-1042", "subject": "Printer offline", "assignee": "Bob Technician"}
    notice = send(organization=acme, event_type="ticket.assigned", context=context, roles=[Role.MEMBER])
    [notification] = Notification.objects.for_org(acme)
    assert (notification.user, notification.in_app) == (bob, True)
    assert notification.title == "T-1042 is assigned to Bob Technician"
    assert notification.body == "Printer offline"
    assert deliveries(notice) == [] and mail.outbox == []


def test_a_channel_turned_off_is_never_sent(send, acme, alice, number):
    alice.phone = "0412 000 111"
    alice.save(update_fields=["phone"])
    preferences_update(organization=acme, user=alice, choices={"invoice.overdue": {SMS}})

    notice = send(organization=acme, event_type="invoice.overdue", context=OVERDUE, users=[alice])

    assert deliveries(notice) == [(SMS, "+61412000111", DeliveryStatus.SENT)]
    assert mail.outbox == []
    notification = Notification.objects.get(notice=notice)
    assert notification.in_app is False  # kept as the record of the SMS, but not shown in the portal
    from notifications.tasks import retry_due

    retry_due()
    assert mail.outbox == [] and Delivery.objects.count() == 1


def test_everything_off_means_not_told(send, acme, alice):
    preferences_update(organization=acme, user=alice, choices={"payment.failed": set()})
    notice = send(organization=acme, event_type="payment.failed", context={"amount": "10.00"}, users=[alice])
    assert (notice.recipients, notice.notified) == (1, 0)
    assert not Notification.objects.exists() and not Delivery.objects.exists()


def test_the_same_key_creates_the_notice_once(send, acme, alice):
    first = send(organization=acme, event_type="invoice.overdue", context=OVERDUE, key="invoice-184-overdue-1")
    again = send(organization=acme, event_type="invoice.overdue", context=OVERDUE, key="invoice-184-overdue-1")
    assert again.pk == first.pk
    assert Notice.objects.count() == 1 and Notification.objects.count() == 1
    assert len(mail.outbox) == 1
    # Another event type with the same key is another notice.
    send(organization=acme, event_type="invoice.issued", context={}, key="invoice-184-overdue-1")
    assert Notice.objects.count() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and concurrent writers need PostgreSQL")
def test_concurrent_calls_with_one_key_create_one_notice(acme, alice):
    def work() -> str:
        with transaction.atomic():
            return str(notify(organization=acme, event_type="invoice.issued", context={}, key="k-1").pk)

    outcomes = race(work, workers=4)
    assert len(set(outcomes)) == 1, outcomes
    assert Notice.objects.count() == 1 and Notification.objects.count() == 1


def test_nothing_is_sent_when_the_callers_transaction_rolls_back(acme, alice, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        notify(organization=acme, event_type="invoice.overdue", context=OVERDUE)
        raise RuntimeError("the caller failed")
    assert callbacks == [] and mail.outbox == []
    assert not Notice.objects.exists() and not Delivery.objects.exists()


def test_explicit_people_include_the_partners_admin_with_owner_defaults(send, acme, alice, pat):
    notice = send(organization=acme, event_type="security.api_key_created", context={}, users=[pat])
    assert deliveries(notice) == [(EMAIL, "pat@summit.test", DeliveryStatus.SENT)]
    [notification] = Notification.objects.all()
    # No template of its own: the generic one, titled with the event's name.
    assert (notification.user, notification.title, notification.body) == (pat, "API key created", "")
    [message] = mail.outbox
    assert message.subject == "API key created"
    assert message.body.startswith("Hello Pat,\n\nThere is news in Acme Pty Ltd: api key created.")


def test_text_from_the_context_is_escaped_in_email_html(send, acme, alice):
    context = {"title": "Heads up", "message": "<script>alert(1)</script> & more"}
    send(organization=acme, event_type="platform.maintenance", context=context, users=[alice])
    [message] = mail.outbox
    assert message.subject == "[Planned maintenance] Heads up"
    assert message.body == "Hello Alice,\n\n<script>alert(1)</script> & more\n"  # plain text stays as written
    html = message.alternatives[0][0]  # type: ignore[attr-defined]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html and "<script>" not in html


def test_an_existing_email_template_can_be_used_instead(send, acme, alice):
    context = {"headline": "New ticket", "reference": "T-7", "subject": "VPN down", "organization_name": "Acme",
               "priority": "P1", "detail": "Nobody can connect.", "path": "/support/tickets/7/"}  # fmt: skip
    send(organization=acme, event_type="security.login_locked", context=context, users=[alice], template="ticket_alert")
    [message] = mail.outbox
    assert message.subject == "[T-7] New ticket"
    assert "Open it: https://portal.keel.test/support/tickets/7/" in message.body


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"event_type": "invoice.exploded"}, "event_type"),
        ({"roles": ["KING"]}, "roles"),
        ({"context": {"when": object()}}, "context"),
        ({"context": ["not", "a", "dict"]}, "context"),
        ({"context": {"url": "javascript:alert(1)"}}, "context"),
        ({"context": {"url": "//evil.test/"}}, "context"),
        ({"template": "../secrets"}, "template"),
        ({"template": "no_such_email"}, "template"),
        ({"key": "k" * 201}, "key"),
    ],
)
def test_bad_input_is_refused_by_field(acme, alice, arguments, field):
    values = {"organization": acme, "event_type": "invoice.issued", "context": {}, **arguments}
    with pytest.raises(ServiceValidationError) as refused:
        notify(**values)
    assert field in refused.value.message_dict
    assert not Notice.objects.exists()


def test_people_outside_the_organization_are_refused(acme, alice, carol):
    with pytest.raises(ServiceValidationError) as refused:
        notify(organization=acme, event_type="invoice.issued", context={}, users=[alice, carol])
    assert refused.value.message_dict == {"users": ["Not in Acme Pty Ltd: carol@globex.test."]}
    assert not Notification.objects.exists()


def test_people_without_a_mobile_number_get_no_sms(send, acme, alice, number):
    alice.phone = "12"
    alice.save(update_fields=["phone"])
    preferences_update(organization=acme, user=alice, choices={"ticket.created": {IN_APP}})
    # A saved SMS choice from when the number was valid still finds no number today.
    from notifications.models import NotificationPreference

    NotificationPreference.objects.filter(user=alice, event_type="ticket.created").update(sms=True)
    notice = send(organization=acme, event_type="ticket.created", context={}, users=[alice])
    [delivery] = Delivery.objects.filter(notice=notice)
    assert (delivery.channel, delivery.status, delivery.reason) == (SMS, DeliveryStatus.SKIPPED, Reason.NO_PHONE)
