"""POST /webhooks/twilio/inbound/: opt-out keywords put the number on the do-not-contact list before the answer
leaves, opt-in keywords take it off and record consent again, help keywords answer with a way to reach the sender,
anything else is a reply kept in the timeline and emailed to the people who run messaging. Every message is stored
once; a redelivered webhook gets the same answer and changes nothing."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import connection
from django.test import Client

from sms.models import (
    Campaign,
    ConsentEvent,
    ConsentKind,
    Contact,
    DoNotContact,
    InboundKind,
    InboundMessage,
    JobState,
    SendingNumber,
    SendJob,
    SmsSettings,
)
from sms.models.contacts import DEFAULT_OPT_OUT
from sms.services.contacts import contact_create
from sms.services.inbound import inbound_receive
from sms.signatures import twilio_signature
from tenancy.models import Role
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import race

pytestmark = pytest.mark.django_db

TOKEN = "test-twilio-auth-token"
SITE = "https://keel.example.com"
PATH = "/webhooks/twilio/inbound/"
ACCOUNT = "AC" + "1" * 32
ACME_NUMBER = "+61480000001"
ANN = "+61412345678"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OPT_OUT_ANSWER = "Acme Pty Ltd: you will get no more messages. Reply START to opt back in."
OPT_IN_ANSWER = "Acme Pty Ltd: you will get our messages again. Reply STOP to opt out."
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@pytest.fixture(autouse=True)
def _twilio(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.SITE_URL = SITE


def twiml(message: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{message}</Message></Response>'


_sids = iter(range(1, 1_000_000))


def text(client: Client, body: str, *, from_: str = ANN, to: str = ACME_NUMBER, sid: str | None = None) -> Any:
    """The webhook Twilio posts when ``from_`` texts ``body`` to ``to``, signed for the public URL."""
    form = {
        "MessageSid": sid or f"SM{next(_sids):032x}",
        "SmsSid": sid or "",
        "AccountSid": ACCOUNT,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    form["SmsSid"] = form["MessageSid"]
    signature = twilio_signature(SITE + PATH, form, TOKEN)
    return client.post(
        PATH, urlencode(form), content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=signature
    )


def answer_of(response: Any) -> str:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    return response.content.decode()


@pytest.fixture
def number(acme: Any) -> SendingNumber:
    return SendingNumber.objects.create(organization=acme, phone_e164=ACME_NUMBER, warmup_start=date(2026, 1, 1))


@pytest.fixture
def ann(acme: Any) -> Contact:
    return contact_create(
        organization=acme,
        phone=ANN,
        data={"first_name": "Ann", "last_name": "Lee"},
        consent={"source": "web form", "text": "Yes, text me offers."},
    )


@pytest.fixture
def globex_number(globex: Any) -> SendingNumber:
    return SendingNumber.objects.create(organization=globex, phone_e164="+61480000009", warmup_start=date(2026, 1, 1))


@pytest.fixture
def managers(acme: Any, alice: Any, bob: Any) -> list[str]:
    """Acme's owner (alice), an admin and a manager, who hear of replies; bob is a plain member and does not."""
    for email, role in (("adam@acme.test", Role.ADMIN), ("mia@acme.test", Role.MANAGER)):
        MembershipFactory(user=UserFactory(email=email), organization=acme, role=role)
    gone = UserFactory(email="gone@acme.test", is_active=False)
    MembershipFactory(user=gone, organization=acme, role=Role.OWNER)
    return ["adam@acme.test", "alice@acme.test", "mia@acme.test"]


KEYWORDS = sorted(SmsSettings.keywords(DEFAULT_OPT_OUT))


@pytest.mark.parametrize("keyword", KEYWORDS)
@pytest.mark.parametrize("spelling", ["upper", "lower", "title", "spaced"])
def test_every_default_opt_out_keyword_blocks_the_number_before_the_answer(
    client, number, ann, acme, keyword, spelling
):
    body = {
        "upper": keyword,
        "lower": keyword.lower(),
        "title": keyword.title(),
        "spaced": f"  {keyword.lower()} \n\t",
    }[spelling]
    # No on-commit callbacks run here: what the test sees was written before the webhook answered.
    assert answer_of(text(client, body)) == twiml(OPT_OUT_ANSWER)
    entry = DoNotContact.objects.for_org(acme).get()
    assert (entry.phone_e164, entry.reason, entry.source) == (ANN, "stop_keyword", "sms reply")
    ann.refresh_from_db()
    assert (ann.consent_at, ann.consent_source, ann.consent_text) == (None, "", "")
    assert list(ConsentEvent.objects.for_org(acme).order_by("id").values_list("kind", "source")) == [
        (ConsentKind.GIVEN, "web form"),
        (ConsentKind.DNC_ADDED, "sms reply"),
        (ConsentKind.WITHDRAWN, "sms reply"),
    ]
    message = InboundMessage.objects.for_org(acme).get()
    assert (message.kind, message.contact, message.body, message.from_e164, message.to_e164) == (
        InboundKind.OPT_OUT,
        ann,
        body,
        ANN,
        ACME_NUMBER,
    )
    assert mail.outbox == []


@pytest.mark.parametrize("body", ["stop please", "STOP STOP", "Please stop", "stop.", "S T O P", ""])
def test_a_message_that_only_contains_a_keyword_is_a_reply(client, number, ann, acme, body):
    assert answer_of(text(client, body)) == EMPTY
    assert not DoNotContact.objects.for_org(acme).exists()
    ann.refresh_from_db()
    assert ann.has_consent
    assert InboundMessage.objects.for_org(acme).get().kind == InboundKind.REPLY


def test_stop_from_a_number_that_is_not_a_contact_still_blocks_it(client, number, acme):
    assert answer_of(text(client, "Stop", from_="+61413999888")) == twiml(OPT_OUT_ANSWER)
    entry = DoNotContact.objects.for_org(acme).get()
    assert (entry.phone_e164, entry.reason) == ("+61413999888", "stop_keyword")
    message = InboundMessage.objects.for_org(acme).get()
    assert (message.contact, message.kind, message.campaign) == (None, InboundKind.OPT_OUT, None)
    assert not Contact.objects.for_org(acme).exists()


def test_keywords_are_the_organizations_own(client, number, globex_number, acme, globex, ann):
    SmsSettings.objects.create(
        organization=acme,
        business_name="Acme IT",
        opt_out_keywords="STOP, Parar ,ALTO",
        opt_in_keywords="START,VOLVER",
        help_keywords="AYUDA",
        reply_contact="1300 226 300",
    )
    # Globex keeps the defaults (created on its first message): PARAR is only a reply there.
    assert answer_of(text(client, "parar", to=globex_number.phone_e164)) == EMPTY
    assert not DoNotContact.objects.exists()
    assert SmsSettings.objects.get(organization=globex).opt_out_keywords == DEFAULT_OPT_OUT

    assert answer_of(text(client, "parar")) == twiml(
        "Acme IT: you will get no more messages. Reply START to opt back in."
    )
    assert list(DoNotContact.objects.values_list("organization__slug", "phone_e164")) == [("acme", ANN)]
    # UNSUBSCRIBE is a default word, not one of Acme's any more.
    assert answer_of(text(client, "UNSUBSCRIBE")) == EMPTY
    assert answer_of(text(client, "ayuda")) == twiml("Acme IT: contact us at 1300 226 300. Reply STOP to opt out.")
    assert answer_of(text(client, "help")) == EMPTY
    assert answer_of(text(client, "Volver")) == twiml(
        "Acme IT: you will get our messages again. Reply STOP to opt out."
    )
    assert not DoNotContact.objects.for_org(acme).exists()
    kinds = list(InboundMessage.objects.for_org(acme).order_by("received_at", "id").values_list("kind", flat=True))
    assert kinds == ["opt_out", "reply", "help", "reply", "opt_in"]


def test_a_word_on_two_lists_counts_as_an_opt_out(client, number, acme, ann):
    SmsSettings.objects.create(organization=acme, opt_out_keywords="STOP,END", opt_in_keywords="START,END")
    assert answer_of(text(client, "end")) == twiml(OPT_OUT_ANSWER)
    assert DoNotContact.objects.for_org(acme).exists()


def test_start_takes_the_number_off_the_list_and_records_consent_again(client, number, ann, acme):
    with time_machine.travel(NOW, tick=False):
        text(client, "STOP")
    later = NOW + timedelta(days=2)
    with time_machine.travel(later, tick=False):
        assert answer_of(text(client, " start ")) == twiml(OPT_IN_ANSWER)
    assert not DoNotContact.objects.for_org(acme).exists()
    ann.refresh_from_db()
    assert (ann.consent_at, ann.consent_source, ann.consent_text) == (later, "sms reply", "START")
    assert list(ConsentEvent.objects.for_org(acme).order_by("id").values_list("kind", "source", "text")) == [
        (ConsentKind.GIVEN, "web form", "Yes, text me offers."),
        (ConsentKind.DNC_ADDED, "sms reply", ""),
        (ConsentKind.WITHDRAWN, "sms reply", ""),
        (ConsentKind.DNC_REMOVED, "sms reply", ""),
        (ConsentKind.GIVEN, "sms reply", "START"),
    ]


def test_start_from_a_number_that_is_not_a_contact_unblocks_it(client, number, acme):
    text(client, "STOP", from_="+61413999888")
    assert answer_of(text(client, "yes", from_="+61413999888")) == twiml(OPT_IN_ANSWER)
    assert not DoNotContact.objects.for_org(acme).exists()
    assert not Contact.objects.for_org(acme).exists()


@pytest.mark.parametrize(
    ("reply_contact", "support_email", "expected"),
    [
        ("help@acme-it.test or 1300 226 300", "", "Acme Pty Ltd: contact us at help@acme-it.test or 1300 226 300."),
        ("", "support@acme.test", "Acme Pty Ltd: contact us at support@acme.test."),
        ("", "", "Acme Pty Ltd: reply to this number to reach us."),
    ],
)
def test_help_names_the_sender_and_how_to_reach_them(client, number, acme, ann, reply_contact, support_email, expected):
    SmsSettings.objects.create(organization=acme, reply_contact=reply_contact)
    acme.brand_support_email = support_email
    acme.save(update_fields=["brand_support_email"])
    for body in ("HELP", "info "):
        assert answer_of(text(client, body)) == twiml(f"{expected} Reply STOP to opt out.")
    assert not DoNotContact.objects.exists()
    ann.refresh_from_db()
    assert ann.has_consent
    assert list(InboundMessage.objects.for_org(acme).values_list("kind", flat=True)) == ["help", "help"]
    assert mail.outbox == []


def test_answers_are_xml_escaped(client, number, acme):
    SmsSettings.objects.create(organization=acme, business_name="Smith & <Sons>")
    assert answer_of(text(client, "STOP")) == twiml(
        "Smith &amp; &lt;Sons&gt;: you will get no more messages. Reply START to opt back in."
    )


def send_job(
    organization: Any, contact: Contact, name: str, state: str, sent_at: datetime | None, **fields: Any
) -> Any:
    campaign = Campaign.objects.create(organization=organization, name=name)
    SendJob.objects.create(
        organization=organization, campaign=campaign, contact=contact, state=state, sent_at=sent_at, **fields
    )
    return campaign


def test_a_reply_is_kept_with_its_campaign_and_emailed_to_owners_admins_and_managers(
    client, number, acme, ann, managers, django_capture_on_commit_callbacks
):
    send_job(acme, ann, "Winter", JobState.DELIVERED, NOW - timedelta(days=30), number=number)
    spring = send_job(acme, ann, "Spring", JobState.FAILED, NOW - timedelta(days=1), number=number)
    send_job(acme, ann, "Queued", JobState.QUEUED, None, number=number)
    send_job(acme, ann, "Skipped", JobState.SKIPPED, None, number=number)
    body = "Is the 20% off still on? <b>Thanks</b> & bye"
    with django_capture_on_commit_callbacks(execute=True), time_machine.travel(NOW, tick=False):
        assert answer_of(text(client, body)) == EMPTY

    message = InboundMessage.objects.for_org(acme).get()
    assert (message.kind, message.contact, message.campaign, message.body, message.received_at) == (
        InboundKind.REPLY,
        ann,
        spring,
        body,
        NOW,
    )
    assert list(ann.replies.all()) == [message]
    assert sorted(to for sent in mail.outbox for to in sent.to) == managers  # each as they chose: email by default
    email = mail.outbox[0]
    assert isinstance(email, EmailMultiAlternatives)
    assert email.subject == "SMS reply from Ann Lee"
    assert email.body.startswith(
        f"Ann Lee ({ANN}) replied to Acme Pty Ltd's messages (campaign: Spring):\n\n{body}\n\n"
        f"Sent to {ACME_NUMBER}. It is kept in the contact's timeline."
    )
    html = str(email.alternatives[0][0])
    assert "Is the 20% off still on? &lt;b&gt;Thanks&lt;/b&gt; &amp; bye" in html
    assert "<b>Thanks</b>" not in html
    assert not DoNotContact.objects.exists()


def test_a_reply_is_told_as_each_person_chose(client, number, acme, ann, managers,
                                             django_capture_on_commit_callbacks):  # fmt: skip
    from notifications.models import Notification
    from notifications.services.preferences import preferences_update
    from tenancy.models import User

    mia = User.objects.get(email="mia@acme.test")
    preferences_update(organization=acme, user=mia, choices={"sms.reply_received": {"in_app"}})
    with django_capture_on_commit_callbacks(execute=True):
        with time_machine.travel(NOW, tick=False):
            text(client, "Still on?")
        with time_machine.travel(NOW + timedelta(minutes=15), tick=False):  # the next quarter: told at once too
            text(client, "Still on?", sid="SM" + "8" * 32)
    assert sorted(to for sent in mail.outbox for to in sent.to) == ["adam@acme.test"] * 2 + ["alice@acme.test"] * 2
    notes = Notification.objects.filter(user=mia, event_type="sms.reply_received")
    assert [(note.title, note.body, note.url) for note in notes] == [
        ("SMS reply from Ann Lee", "Still on?", f"/messaging/contacts/{ann.pk}/")
    ] * 2


def test_a_reply_is_published_for_partner_webhooks_and_a_keyword_is_not(client, number, acme, ann):
    from events.models import Event

    spring = send_job(acme, ann, "Spring", JobState.DELIVERED, NOW - timedelta(days=1), number=number)
    with time_machine.travel(NOW, tick=False):
        text(client, "Still on?")
        text(client, "Who is this?", from_="+61412000999")
        text(client, "HELP")
        text(client, "STOP")
    first, second = InboundMessage.objects.for_org(acme).filter(kind=InboundKind.REPLY).order_by("id")
    published = Event.objects.filter(organization=acme, type="contact.replied")
    assert sorted((event.payload for event in published), key=lambda payload: payload["id"]) == [
        {"id": first.pk, "phone": ANN, "to": ACME_NUMBER, "body": "Still on?", "contact": str(ann.pk),
         "campaign": str(spring.pk), "received_at": "2026-03-02T09:00:00Z"},
        {"id": second.pk, "phone": "+61412000999", "to": ACME_NUMBER, "body": "Who is this?", "contact": None,
         "campaign": None, "received_at": "2026-03-02T09:00:00Z"},
    ]  # fmt: skip


def test_a_reply_is_linked_to_the_last_campaign_from_the_number_it_came_to(client, number, acme, ann):
    other = SendingNumber.objects.create(organization=acme, phone_e164="+61480000002", warmup_start=date(2026, 1, 1))
    winter = send_job(acme, ann, "Winter", JobState.DELIVERED, NOW - timedelta(days=30), number=number)
    send_job(acme, ann, "Spring", JobState.DELIVERED, NOW - timedelta(days=1), number=other)
    text(client, "Which offer was this?")
    assert InboundMessage.objects.for_org(acme).get().campaign == winter


def test_a_reply_from_a_stranger_is_kept_without_contact_or_campaign(
    client, number, acme, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert answer_of(text(client, "who is this?", from_="+61413999888")) == EMPTY
    message = InboundMessage.objects.for_org(acme).get()
    assert (message.contact, message.campaign, message.from_e164) == (None, None, "+61413999888")
    [email] = mail.outbox
    assert email.to == ["alice@acme.test"]
    assert email.subject == "SMS reply from +61413999888"
    assert "The number is not one of your contacts." in email.body


@pytest.mark.parametrize(("body", "expected"), [("STOP", twiml(OPT_OUT_ANSWER)), ("hello?", EMPTY)])
def test_a_redelivered_message_gets_the_same_answer_and_changes_nothing(
    client, number, acme, ann, managers, django_capture_on_commit_callbacks, body, expected
):
    sid = "SM" + "7" * 32
    with django_capture_on_commit_callbacks(execute=True):
        first = answer_of(text(client, body, sid=sid))
        events = ConsentEvent.objects.count()
        # Twilio redelivers; meanwhile the number was taken off the list by hand.
        DoNotContact.objects.for_org(acme).delete()
        again = answer_of(text(client, body, sid=sid))
    assert first == again == expected
    assert InboundMessage.objects.count() == 1
    assert ConsentEvent.objects.count() == events
    assert not DoNotContact.objects.exists()
    assert len(mail.outbox) == (len(managers) if body == "hello?" else 0)  # each told once, not again


def test_a_message_to_a_number_nobody_owns_is_logged_and_gets_no_answer(client, number, ann, caplog):
    with caplog.at_level(logging.WARNING, logger="sms.services.inbound"):
        assert answer_of(text(client, "STOP", to="+61480000077")) == EMPTY
    assert "to +61480000077: no organization owns that number" in caplog.text
    assert not InboundMessage.objects.exists()
    assert not DoNotContact.objects.exists()


@pytest.mark.parametrize("tamper", ["wrong_token", "no_header", "body_changed"])
def test_a_bad_signature_is_403_and_changes_nothing(client, number, ann, tamper):
    form = {"MessageSid": "SM" + "1" * 32, "From": ANN, "To": ACME_NUMBER, "Body": "STOP"}
    signature = twilio_signature(SITE + PATH, form, "other-token" if tamper == "wrong_token" else TOKEN)
    if tamper == "body_changed":
        form["Body"] = "START"
    headers = {} if tamper == "no_header" else {"HTTP_X_TWILIO_SIGNATURE": signature}
    response = client.post(PATH, urlencode(form), content_type="application/x-www-form-urlencoded", **headers)
    assert response.status_code == 403
    assert not InboundMessage.objects.exists()
    assert not DoNotContact.objects.exists()


@pytest.mark.parametrize(("missing", "field"), [("MessageSid", "MessageSid"), ("From", "From"), ("To", "To")])
def test_a_signed_message_without_a_required_parameter_is_400_naming_it(client, number, missing, field):
    form = {"MessageSid": "SM" + "2" * 32, "From": ANN, "To": ACME_NUMBER, "Body": "STOP"}
    del form[missing]
    signature = twilio_signature(SITE + PATH, form, TOKEN)
    response = client.post(
        PATH, urlencode(form), content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=signature
    )
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not InboundMessage.objects.exists()


def test_a_sender_that_is_not_a_phone_number_is_kept_as_sent(number, acme):
    assert inbound_receive(sid="SM" + "3" * 32, from_="GoodCo", to=ACME_NUMBER, body="hi") is None
    assert InboundMessage.objects.for_org(acme).get().from_e164 == "GoodCo"


def test_only_post_is_served(client):
    assert client.get(PATH).status_code == 405


@pytest.mark.isolation("sms-twilio-inbound")
def test_a_message_to_globexs_number_touches_only_globex(client, alice, number, globex_number, acme, globex, ann):
    # Ann is also a contact of Acme; her STOP to Globex's number opts her out of Globex only, and the answer names
    # Globex, not Acme. A session changes nothing: the route is Twilio's.
    client.force_login(alice)
    gus = contact_create(organization=globex, phone=ANN, consent={"source": "shop counter"})
    assert answer_of(text(client, "STOP", to=globex_number.phone_e164)) == twiml(
        "Globex Corporation: you will get no more messages. Reply START to opt back in."
    )
    assert list(DoNotContact.objects.values_list("organization__slug", "phone_e164")) == [("globex", ANN)]
    ann.refresh_from_db()
    gus.refresh_from_db()
    assert (ann.has_consent, gus.has_consent) == (True, False)
    message = InboundMessage.objects.get()
    assert (message.organization_id, message.contact) == (globex.pk, gus)
    assert "acme" not in answer_of(text(client, "help", to=globex_number.phone_e164)).lower()


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_stop_apply_it_once(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    SendingNumber.objects.create(organization=acme, phone_e164=ACME_NUMBER, warmup_start=date(2026, 1, 1))
    contact_create(organization=acme, phone=ANN, consent={"source": "web form"})
    sid = "SM" + "8" * 32

    answers = race(lambda: inbound_receive(sid=sid, from_=ANN, to=ACME_NUMBER, body="STOP"), 3)

    assert answers == [OPT_OUT_ANSWER] * 3
    assert InboundMessage.objects.count() == 1
    assert DoNotContact.objects.for_org(acme).count() == 1
    assert SmsSettings.objects.filter(organization=acme).count() == 1
    kinds = sorted(ConsentEvent.objects.for_org(acme).values_list("kind", flat=True))
    assert kinds == sorted([ConsentKind.GIVEN, ConsentKind.DNC_ADDED, ConsentKind.WITHDRAWN])
