"""Email-to-ticket: which organization a message belongs to, replies threaded by reference or headers, quoted text,
attachments, loop protection, unknown senders, duplicates and bad mail; and the SendGrid inbound URL behind basic
auth, where mail for Acme never lands on Globex."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from email.utils import make_msgid
from typing import Any

import pytest
import time_machine
from anymail.inbound import AnymailInboundMessage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from tests.factories import MembershipFactory, UserFactory
from tests.helpers import race
from tickets.attachments import ATTACHMENT_MAX_BYTES
from tickets.inbound import ACK_LIMIT, html_to_text, inbound_receive, strip_quoted
from tickets.models import Attachment, Channel, Comment, QueuedEmail, SupportSettings, Ticket, TicketStatus
from tickets.services import comment_add, ticket_create, ticket_merge, ticket_set_status

pytestmark = [
    pytest.mark.django_db,
    # anymail warns on every SendGrid webhook view that it no longer tests SendGrid upstream; Keel tests it here.
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

URL = "/anymail/sendgrid/inbound/"
SECRET = "sendgrid:s3cret-for-tests"


def message(
    *,
    sender: str = "Alice Owner <alice@acme.test>",
    subject: str = "Printer is on fire",
    text: str | None = "It smokes.",
    html: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    attachments: list[Any] | None = None,
    message_id: str | None = None,
    envelope_sender: str | None = None,
) -> AnymailInboundMessage:
    if message_id is None:
        message_id = make_msgid(domain="mail.test")
    msg = AnymailInboundMessage.construct(
        from_email=sender,
        to="support@keel.test",
        subject=subject,
        text=text,
        html=html,
        headers=([("Message-ID", message_id)] if message_id else []) + (headers or []),
        attachments=attachments,
    )
    msg.envelope_sender = envelope_sender
    return msg


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    """inbound_receive, with the mail it sends after commit delivered to mailoutbox."""

    def run(msg: AnymailInboundMessage) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            return inbound_receive(msg)

    return run


def sent_to(mailoutbox: list[Any], address: str) -> list[Any]:
    return [sent for sent in mailoutbox if address in sent.to]


@pytest.fixture
def acme_domain(acme):
    return SupportSettings.objects.create(organization=acme, verified_domains=["Acme.TEST"])


# -- who writes ------------------------------------------------------------------------------------------------------


def test_a_members_mail_opens_an_email_ticket_in_their_organization_and_is_acknowledged(
    deliver, mailoutbox, acme, alice, globex, carol
):
    assert deliver(message(text="It smokes.\n\n> a forwarded error, kept in a new ticket")) == "opened:T-1001"
    ticket = Ticket.objects.for_org(acme).get()
    assert (ticket.subject, ticket.channel, ticket.requester, ticket.requester_email) == (
        "Printer is on fire",
        Channel.EMAIL,
        alice,
        "alice@acme.test",
    )
    assert ticket.description == "It smokes.\n\n> a forwarded error, kept in a new ticket"
    assert not Ticket.objects.for_org(globex).exists()
    [ack] = sent_to(mailoutbox, "alice@acme.test")
    assert ack.subject == "[T-1001] Printer is on fire"
    assert "/support/tickets/1001/" in ack.body
    assert "keep [T-1001] in the subject" in ack.body
    assert ack.extra_headers["Auto-Submitted"] == "auto-replied"  # so the sender's own robot does not answer it


def test_an_address_at_a_verified_domain_opens_a_ticket_without_an_account(deliver, mailoutbox, acme, acme_domain):
    assert deliver(message(sender="Dave <Dave@ACME.test>")) == "opened:T-1001"
    ticket = Ticket.objects.for_org(acme).get()
    assert ticket.requester is None
    assert ticket.requester_email == "dave@acme.test"
    [ack] = sent_to(mailoutbox, "dave@acme.test")
    assert ack.subject.startswith("[T-1001] ")
    assert "/support/tickets/" not in ack.body  # no portal account to follow it with
    # Only the exact domain: a subdomain, or a name that merely contains it, is someone else.
    assert deliver(message(sender="eve@mail.acme.test")) == "rejected"
    assert deliver(message(sender="eve@notacme.test")) == "rejected"
    assert Ticket.objects.count() == 1


def test_a_domain_two_organizations_list_belongs_to_neither(deliver, acme, globex, acme_domain):
    SupportSettings.objects.create(organization=globex, verified_domains=["acme.test"])
    assert deliver(message(sender="dave@acme.test")) == "rejected"
    assert not Ticket.objects.exists()


def test_a_member_of_several_organizations_writes_for_the_one_at_their_domain_else_the_latest_joined(
    deliver, acme, globex
):
    sam = UserFactory(email="sam@shared.test")
    MembershipFactory(user=sam, organization=acme, created_at=timezone.now() - timedelta(days=30))
    MembershipFactory(user=sam, organization=globex)
    assert deliver(message(sender="sam@shared.test", subject="One")) == "opened:T-1001"
    assert Ticket.objects.for_org(globex).get().requester == sam
    SupportSettings.objects.create(organization=acme, verified_domains=["shared.test"])
    assert deliver(message(sender="sam@shared.test", subject="Two")) == "opened:T-1001"
    assert Ticket.objects.for_org(acme).get().subject == "Two"


# -- replies ---------------------------------------------------------------------------------------------------------


def test_a_reply_naming_the_ticket_becomes_a_comment_and_reopens_a_ticket_waiting_on_the_customer(
    deliver, mailoutbox, acme, alice
):
    ticket = ticket_create(organization=acme, subject="Printer", requester=alice, channel=Channel.EMAIL)
    ticket_set_status(ticket=ticket, status=TicketStatus.PENDING_CUSTOMER)
    reply = message(
        subject="RE: [t-1001] Printer",
        text="Still smoking.\n\nOn Mon, 2 Mar 2026 at 09:00, Keel Support <support@keel.test> wrote:\n"
        "> Have you tried turning it off?\n",
        message_id="<reply-1@mail.test>",
    )
    assert deliver(reply) == "commented:T-1001"
    comment = Comment.objects.for_org(acme).get(ticket=ticket)
    assert (comment.body, comment.author, comment.by_staff, comment.internal) == ("Still smoking.", alice, False, False)
    assert (comment.channel, comment.message_id) == (Channel.EMAIL, "<reply-1@mail.test>")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert Ticket.objects.count() == 1
    assert sent_to(mailoutbox, "alice@acme.test") == []  # replies are not acknowledged


@pytest.mark.parametrize(
    ("header", "value"),
    [("In-Reply-To", "<bob-1@mail.test>"), ("References", "<older@mail.test> <bob-1@mail.test>")],
)
def test_a_reply_is_threaded_by_its_headers(deliver, acme, alice, bob, header, value):
    ticket = ticket_create(organization=acme, subject="VPN", requester=alice)
    comment_add(ticket=ticket, body="Any news?", author=bob, channel=Channel.EMAIL, message_id="<bob-1@mail.test>")
    reply = message(subject="Re: VPN", text="Works now, thanks.", headers=[(header, value)])
    assert deliver(reply) == "commented:T-1001"
    assert list(ticket.comments.values_list("body", flat=True)) == ["Any news?", "Works now, thanks."]


def test_another_organizations_reference_or_header_never_attaches(deliver, acme, alice, globex, carol):
    ticket_create(organization=globex, subject="Globex one", requester=carol)
    theirs = ticket_create(organization=globex, subject="Globex secret", requester=carol)
    comment_add(ticket=theirs, body="Globex note", author=carol, channel=Channel.EMAIL, message_id="<gx-1@mail.test>")
    assert deliver(message(subject="Re: [T-1002] Globex secret", text="Let me in")) == "opened:T-1001"
    assert deliver(message(subject="Hello", text="Me too", headers=[("In-Reply-To", "<gx-1@mail.test>")])) == (
        "opened:T-1002"
    )
    assert list(theirs.comments.values_list("body", flat=True)) == ["Globex note"]
    # The foreign reference is taken out of the new ticket's subject.
    assert [t.subject for t in Ticket.objects.for_org(acme).order_by("number")] == ["Re: Globex secret", "Hello"]


def test_a_reply_reopens_a_resolved_ticket_and_follows_a_merge(deliver, acme, alice):
    first = ticket_create(organization=acme, subject="Printer", requester=alice)
    second = ticket_create(organization=acme, subject="Printer again", requester=alice)
    ticket_merge(ticket=second, into=first)
    ticket_set_status(ticket=first, status=TicketStatus.RESOLVED)
    assert deliver(message(subject="Re: [T-1002] Printer again", text="Back again")) == "commented:T-1001"
    first.refresh_from_db()
    assert first.status == TicketStatus.OPEN
    assert first.comments.get().body == "Back again"


def test_a_reply_to_a_closed_ticket_opens_a_follow_up(deliver, acme, alice):
    old = ticket_create(organization=acme, subject="Printer", requester=alice)
    ticket_set_status(ticket=old, status=TicketStatus.CLOSED)
    assert deliver(message(subject="Re: [T-1001] Printer", text="It is back")) == "opened:T-1002"
    new = Ticket.objects.for_org(acme).get(number=1002)
    assert new.subject == "Re: Printer"
    assert new.description == "Follow-up to T-1001, which was closed.\n\nIt is back"
    assert not old.comments.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks!\n\nOn Tue, 3 Mar 2026 at 10:00, Keel <support@keel.test> wrote:\n> old\n> older", "Thanks!"),
        ("Thanks!\n\nOn Tue, 3 Mar 2026 at 10:00, Keel Support\n<support@keel.test> wrote:\n> old", "Thanks!"),
        ("Top\n> quoted line\n  > indented quote\nBottom", "Top\nBottom"),
        ("Fixed.\n\n-----Original Message-----\nFrom: Keel\nSubject: old", "Fixed."),
        ("Fixed.\n\nFrom: Keel <support@keel.test>\nSent: Tuesday, 3 March 2026 10:00\nTo: Alice\n\nold", "Fixed."),
        ("Fixed.\n________________________________\nFrom: Keel\nold", "Fixed."),
        ("On second thought, it works.\nFrom: me", "On second thought, it works.\nFrom: me"),
    ],
)
def test_quoted_text_is_cut_from_replies(text, expected):
    assert strip_quoted(text) == expected


def test_html_only_mail_is_read_as_text(deliver, acme, alice):
    html = (
        "<html><head><style>p {color: red}</style></head><body><p>Screen is <b>blank</b> &amp;\n dark.</p>"
        "<div>Second line</div><script>alert(1)</script></body></html>"
    )
    assert deliver(message(text=None, html=html)) == "opened:T-1001"
    assert Ticket.objects.get().description == "Screen is blank & dark.\n\nSecond line"
    # Quoted HTML is marked as quoted, so a reply loses it like a quoted plain-text line.
    assert html_to_text("<p>New</p><blockquote><p>Old</p></blockquote>") == "New\n\n> Old"
    assert strip_quoted(html_to_text("<p>New</p><blockquote><p>Old</p></blockquote>")) == "New"


# -- attachments -----------------------------------------------------------------------------------------------------


def test_attachments_are_kept_and_refused_ones_are_named_in_the_text(deliver, acme, alice):
    attachments = [
        AnymailInboundMessage.construct_attachment("application/pdf", b"%PDF-1.4 report", filename="report.pdf"),
        # Declared as octet-stream (as some clients do): the file name tells the type.
        AnymailInboundMessage.construct_attachment("application/octet-stream", b"\x89PNG fake", filename="screen.png"),
        AnymailInboundMessage.construct_attachment(
            "application/pdf", b"0" * (ATTACHMENT_MAX_BYTES + 1), filename="huge.pdf"
        ),
        AnymailInboundMessage.construct_attachment("application/x-msdownload", b"MZ", filename="fix.exe"),
    ]
    assert deliver(message(attachments=attachments)) == "opened:T-1001"
    ticket = Ticket.objects.for_org(acme).get()
    kept = {row.filename: (row.content_type, row.size, row.file.open("rb").read()) for row in ticket.attachments.all()}
    assert kept == {
        "report.pdf": ("application/pdf", 15, b"%PDF-1.4 report"),
        "screen.png": ("image/png", 9, b"\x89PNG fake"),
    }
    assert ticket.description == (
        "It smokes.\n\nAttachments not kept:\n- huge.pdf: larger than 10 MB\n"
        "- fix.exe: files of type application/x-msdownload are not accepted"
    )


def test_a_replys_attachments_belong_to_its_comment(deliver, acme, alice):
    ticket = ticket_create(organization=acme, subject="Printer", requester=alice)
    log = AnymailInboundMessage.construct_attachment("text/plain", b"error 42", filename="printer.log.txt")
    assert deliver(message(subject="[T-1001] log", text="Log attached", attachments=[log])) == "commented:T-1001"
    attachment = Attachment.objects.for_org(acme).get()
    assert attachment.ticket == ticket
    assert attachment.comment is not None and attachment.comment.body == "Log attached"


# -- loop protection -------------------------------------------------------------------------------------------------

LOOPS = [
    pytest.param({"headers": [("Auto-Submitted", "auto-replied")]}, "dropped:auto-submitted", id="auto-replied"),
    pytest.param({"headers": [("Auto-Submitted", "auto-generated")]}, "dropped:auto-submitted", id="auto-generated"),
    pytest.param({"headers": [("Precedence", "bulk")]}, "dropped:precedence", id="precedence-bulk"),
    pytest.param({"headers": [("Precedence", "junk")]}, "dropped:precedence", id="precedence-junk"),
    pytest.param({"headers": [("Precedence", "List")]}, "dropped:precedence", id="precedence-list"),
    pytest.param({"headers": [("X-Autoreply", "yes")]}, "dropped:autoreply", id="x-autoreply"),
    pytest.param({"headers": [("X-Autorespond", "Out of office")]}, "dropped:autoreply", id="x-autorespond"),
    pytest.param({"envelope_sender": ""}, "dropped:bounce", id="empty-envelope-sender"),
    pytest.param({"sender": "MAILER-DAEMON@{domain}"}, "dropped:system-sender", id="mailer-daemon"),
    pytest.param({"sender": "postmaster@{domain}"}, "dropped:system-sender", id="postmaster"),
    pytest.param({"sender": "No-Reply <no-reply@{domain}>"}, "dropped:system-sender", id="no-reply"),
    pytest.param({"sender": "noreply+alerts@{domain}"}, "dropped:system-sender", id="noreply-tagged"),
    pytest.param({"sender": "donotreply@{domain}"}, "dropped:system-sender", id="donotreply"),
    pytest.param({"sender": "Keel <SUPPORT@keel.test>"}, "dropped:own-address", id="our-own-address"),
]


@pytest.mark.parametrize(("overrides", "outcome"), LOOPS)
@pytest.mark.parametrize("domain", ["acme.test", "elsewhere.test"])  # a known organization's, and an unknown one
def test_automatic_mail_gets_neither_a_ticket_nor_a_reply(
    deliver, mailoutbox, settings, acme, alice, acme_domain, overrides, outcome, domain
):
    settings.SUPPORT_INBOUND_UNKNOWN_SENDER = "reject"  # the setting that would otherwise answer an unknown sender
    kwargs = {"sender": f"alice@{domain}" if domain == "acme.test" else f"robot@{domain}", **overrides}
    kwargs["sender"] = kwargs["sender"].format(domain=domain)
    assert deliver(message(**kwargs)) == outcome
    assert not Ticket.objects.exists()
    assert not QueuedEmail.objects.exists()
    assert mailoutbox == []


def test_auto_submitted_no_is_a_person_writing(deliver, acme, alice):
    assert deliver(message(headers=[("Auto-Submitted", "No"), ("Precedence", "first-class")])) == "opened:T-1001"


def test_acknowledgements_are_limited_per_address_so_robots_cannot_loop(deliver, mailoutbox, acme, alice):
    for n in range(ACK_LIMIT + 2):
        assert deliver(message(subject=f"Alert {n}")) == f"opened:T-{1001 + n}"
    assert len(sent_to(mailoutbox, "alice@acme.test")) == ACK_LIMIT


# -- unknown senders -------------------------------------------------------------------------------------------------


def test_an_unknown_sender_is_rejected_politely_once_a_day_and_nothing_is_kept(deliver, mailoutbox, settings, acme):
    settings.SUPPORT_INBOUND_UNKNOWN_SENDER = "reject"
    assert deliver(message(sender="Stranger <stranger@elsewhere.test>", subject="Hello?")) == "rejected"
    assert deliver(message(sender="stranger@elsewhere.test", subject="Hello again?")) == "rejected"
    [reply] = mailoutbox
    assert reply.to == ["stranger@elsewhere.test"]
    assert reply.subject == "We could not open a ticket for: Hello?"
    assert "no ticket was opened" in reply.body
    assert reply.extra_headers["Auto-Submitted"] == "auto-replied"
    assert not Ticket.objects.exists()
    assert not QueuedEmail.objects.exists()


def test_an_unknown_sender_is_queued_for_staff_when_configured(deliver, mailoutbox, settings, acme):
    settings.SUPPORT_INBOUND_UNKNOWN_SENDER = "queue"
    msg = message(sender="Stranger <stranger@elsewhere.test>", subject="Quote", text="How much?", message_id="<q@m.t>")
    assert deliver(msg) == "queued"
    assert deliver(msg) == "duplicate"
    queued = QueuedEmail.objects.get()
    assert (queued.sender, queued.subject, queued.body, queued.message_id, queued.handled) == (
        "stranger@elsewhere.test",
        "Quote",
        "How much?",
        "<q@m.t>",
        False,
    )
    assert mailoutbox == []
    assert not Ticket.objects.exists()


# -- duplicates ------------------------------------------------------------------------------------------------------


def test_the_same_message_delivered_twice_creates_nothing_new(deliver, mailoutbox, acme, alice):
    opening = message(message_id="<open-1@mail.test>")
    assert deliver(opening) == "opened:T-1001"
    assert deliver(opening) == "duplicate"
    reply = message(subject="Re: [T-1001] Printer is on fire", text="More smoke", message_id="<reply-1@mail.test>")
    assert deliver(reply) == "commented:T-1001"
    assert deliver(reply) == "duplicate"
    # Without a Message-ID, one is made up from the content, so a redelivery is still recognised.
    bare = message(subject="Re: [T-1001] Printer is on fire", text="Even more smoke", message_id="")
    assert deliver(bare) == "commented:T-1001"
    assert deliver(bare) == "duplicate"
    assert Ticket.objects.count() == 1
    assert Comment.objects.count() == 2
    assert len(sent_to(mailoutbox, "alice@acme.test")) == 1


def test_the_same_words_a_day_later_open_a_new_ticket(deliver, acme, alice):
    assert deliver(message()) == "opened:T-1001"
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert deliver(message()) == "opened:T-1002"


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_message_at_the_same_time_open_one_ticket(acme, alice):
    if connection.vendor != "postgresql":
        pytest.skip("row and advisory locks need PostgreSQL")
    outcomes = race(lambda: inbound_receive(message(message_id="<same@mail.test>")), 3)
    assert sorted(outcomes) == ["duplicate", "duplicate", "opened:T-1001"]
    assert Ticket.objects.count() == 1


# -- bad mail --------------------------------------------------------------------------------------------------------

UNREADABLE = [
    pytest.param(lambda: AnymailInboundMessage.construct(subject="No sender", text="?"), id="no-from"),
    pytest.param(lambda: message(sender="not an address"), id="from-without-address"),
    pytest.param(
        lambda: AnymailInboundMessage.parse_raw_mime_bytes(b"From: alice@\r\nSubject: Hi\r\n\r\nHello"),
        id="from-without-domain",
    ),
    pytest.param(
        lambda: AnymailInboundMessage.parse_raw_mime_bytes(b"From: <<@>>, (\r\nSubject: Hi\r\n\r\nHello"),
        id="from-unparseable",
    ),
    pytest.param(lambda: AnymailInboundMessage.parse_raw_mime_bytes(b"\xff\xfe\x00garbage\r\n\r\n\x00\x01"), id="junk"),
]


@pytest.mark.parametrize("build", UNREADABLE)
def test_unreadable_mail_is_dropped_without_raising(deliver, acme, alice, build):
    assert deliver(build()) == "dropped:malformed"
    assert not Ticket.objects.exists()


def test_odd_but_readable_mail_still_opens_a_ticket(deliver, acme, alice):
    raw = (
        b"From: alice@acme.test\r\nSubject: Odd\x00 one\r\nMessage-ID: <odd@mail.test>\r\n"
        b"Content-Type: text/plain; charset=x-klingon\r\n\r\nNUL\x00 inside \xe2\x9c\x93\r\n"
    )
    assert deliver(AnymailInboundMessage.parse_raw_mime_bytes(raw)) == "opened:T-1001"
    ticket = Ticket.objects.get()
    assert ticket.subject == "Odd one"
    assert ticket.description == "NUL inside \u2713"


def test_a_broken_attachment_costs_only_itself(deliver, acme, alice):
    broken = AnymailInboundMessage.construct_attachment("multipart/mixed", b"", filename="broken.bin")
    assert deliver(message(attachments=[broken])) == "opened:T-1001"
    assert Ticket.objects.get().description == "It smokes.\n\nAttachments not kept:\n- broken.bin: could not be read"


# -- the SendGrid inbound URL ----------------------------------------------------------------------------------------


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def raw_mime(*, sender: str, subject: str, body: str, message_id: str) -> str:
    return (
        f"From: {sender}\r\nTo: support@keel.test\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )


def envelope(sender: str) -> str:
    return json.dumps({"from": sender, "to": ["support@keel.test"]})


@pytest.fixture
def inbound_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


@pytest.mark.isolation("anymail:sendgrid_inbound_webhook")
def test_the_inbound_url_refuses_posts_without_the_credentials(client, inbound_secret, acme, alice):
    data = {
        "email": raw_mime(sender="alice@acme.test", subject="Hi", body="Let me in", message_id="<a@mail.test>"),
        "envelope": envelope("alice@acme.test"),
    }
    for headers in ({}, {"HTTP_AUTHORIZATION": basic("sendgrid:wrong")}, {"HTTP_AUTHORIZATION": "Bearer x"}):
        response = client.post(URL, data, **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Basic ")
    assert not Ticket.objects.exists()


@pytest.mark.isolation("anymail:sendgrid_inbound_webhook")
def test_mail_for_acme_lands_in_acme_and_never_on_globex(
    client, inbound_secret, django_capture_on_commit_callbacks, mailoutbox, acme, alice, globex, carol
):
    theirs = ticket_create(organization=globex, subject="Globex only", requester=carol)  # Globex's T-1001
    data = {
        "email": raw_mime(
            sender="Alice Owner <alice@acme.test>",
            subject="Re: [T-1001] Printer",
            body="Printer jammed.",
            message_id="<acme-1@mail.test>",
        ),
        "envelope": envelope("alice@acme.test"),
        "spam_score": "0.1",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, data, HTTP_AUTHORIZATION=basic(SECRET))
    assert response.status_code == 200
    mine = Ticket.objects.for_org(acme).get()
    assert (mine.subject, mine.description, mine.requester) == ("Re: Printer", "Printer jammed.", alice)
    assert list(Ticket.objects.for_org(globex)) == [theirs]
    assert not theirs.comments.exists()
    assert [sent.subject for sent in sent_to(mailoutbox, "alice@acme.test")] == ["[T-1001] Re: Printer"]
    assert sent_to(mailoutbox, "carol@globex.test") == []


@pytest.mark.isolation("anymail:sendgrid_inbound_webhook")
def test_sendgrids_parsed_fields_and_their_attachments_are_accepted_too(client, inbound_secret, acme, alice):
    data = {
        "headers": "From: Alice Owner <alice@acme.test>\nTo: support@keel.test\nSubject: Parsed\n"
        "Message-ID: <parsed@mail.test>\n",
        "text": "Parsed body",
        "from": "Alice Owner <alice@acme.test>",
        "subject": "Parsed",
        "envelope": envelope("alice@acme.test"),
        "charsets": json.dumps({"text": "utf-8", "subject": "utf-8", "from": "utf-8"}),
        "attachments": "1",
        "attachment-info": json.dumps({"attachment1": {"filename": "notes.txt", "type": "text/plain"}}),
        "attachment1": SimpleUploadedFile("notes.txt", b"call me", content_type="text/plain"),
    }
    assert client.post(URL, data, HTTP_AUTHORIZATION=basic(SECRET)).status_code == 200
    ticket = Ticket.objects.for_org(acme).get()
    assert (ticket.subject, ticket.description) == ("Parsed", "Parsed body")
    assert [(row.filename, row.size) for row in ticket.attachments.all()] == [("notes.txt", 7)]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param({"nothing": "here"}, 400, id="not-a-message"),
        pytest.param({"email": "From: a@b.test\r\n\r\nhi", "envelope": "{}"}, 400, id="envelope-without-sender"),
        pytest.param({"email": "\x00\x01 not mail at all"}, 200, id="unreadable-mail-is-dropped"),
    ],
)
def test_a_bad_post_is_a_4xx_or_dropped_never_a_500(client, inbound_secret, acme, data, status):
    assert client.post(URL, data, HTTP_AUTHORIZATION=basic(SECRET)).status_code == status
    assert not Ticket.objects.exists()
