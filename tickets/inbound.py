"""Email-to-ticket. SendGrid Inbound Parse posts each message to ``/anymail/sendgrid/inbound/`` with the basic-auth
credentials of ``ANYMAIL["WEBHOOK_SECRET"]``; anymail turns the post into an ``AnymailInboundMessage`` and sends its
``inbound`` signal, which :func:`inbound_receive` answers. Importing this module connects the receiver (``msp.urls``
imports it for the view).

What happens to a message, in order (the outcome string is what :func:`inbound_receive` returns):

1. Unreadable (no usable From address, a part that cannot be decoded): logged and dropped, ``dropped:malformed``.
2. Loop protection, dropped without a reply: ``Auto-Submitted`` other than ``no``, ``Precedence: bulk|junk|list|
   auto_reply``, ``X-Autoreply`` / ``X-Autorespond``, an empty envelope sender (a bounce), a mailer-daemon /
   postmaster / no-reply style sender, or one of Keel's own addresses.
3. Sender to organization: a user who is a member of one organization belongs to it; a member of several belongs to
   the one that also verified the address's domain, else to the one joined most recently. Anyone else belongs to the
   organization whose support settings list the address's domain (exactly, ignoring case) — if two organizations
   list it, to neither.
4. Unknown senders: ``SUPPORT_INBOUND_UNKNOWN_SENDER=reject`` replies politely (at most once a day per address) and
   keeps nothing, ``rejected``; ``queue`` keeps a ``QueuedEmail`` for staff, ``queued``.
5. The same Message-ID again creates nothing: ``duplicate``. A reply is recognised by its Message-ID on a comment;
   an opening message by an email ticket of the same requester, subject and description within
   ``DUPLICATE_WINDOW`` (tickets do not store the Message-ID that opened them).
6. A reply — ``[T-1042]`` in the subject naming a ticket of the sender's organization, else ``In-Reply-To`` /
   ``References`` naming the Message-ID of one of its comments — becomes the customer's comment on that ticket (on
   the ticket it was merged into, if it was merged), without the quoted text. It reopens a ticket waiting on the
   customer or resolved; on a closed ticket it opens a follow-up ticket instead. A reference to another
   organization's ticket is ignored.
7. Anything else opens an email ticket and acknowledges it (``ticket_received``, the reference in the subject; at
   most ``ACK_LIMIT`` an hour per address, so a misbehaving autoresponder cannot keep a conversation going).

Attachments are kept through ``attachment_add``; one that is too big or of a refused type is left out and named in a
line under the text. Each message is one transaction: nothing is half-written, and mail goes out after the commit.
The automatic answers (acknowledgements, unknown-sender replies) are notices (``notifications.services.notify``) to
the sender's address, marked ``Auto-Submitted: auto-replied`` so that other systems do not answer them (RFC 3834).
A database failure propagates (SendGrid retries on a 5xx); bad mail never does.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from html.parser import HTMLParser
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.inbound import AnymailInboundMessage
from anymail.signals import inbound
from anymail.webhooks.sendgrid import SendGridInboundWebhookView
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import BadRequest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.validators import validate_email
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from notifications.services import notify
from tenancy.errors import ServiceValidationError
from tenancy.models import Membership, Organization, User
from tickets.attachments import attachment_refusal
from tickets.models import Channel, Comment, QueuedEmail, SupportSettings, Ticket, TicketStatus, UnknownSender
from tickets.services import (
    MAX_BODY,
    attachment_add,
    comment_add,
    ticket_create,
)

logger = logging.getLogger(__name__)

DUPLICATE_WINDOW = timedelta(hours=24)
ACK_LIMIT = 5  # acknowledgements per address per hour
UNKNOWN_REPLY_LIMIT = 1  # unknown-sender replies per address per day
MAX_TEXT = MAX_BODY - 5_000  # room for the note about attachments left out

REFERENCE = re.compile(r"\[T-(\d{1,9})\]", re.IGNORECASE)
MESSAGE_ID = re.compile(r"<[^<>\s]{1,298}>")
SYSTEM_SENDER = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?)([-+_.].*)?$", re.IGNORECASE
)
BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond")


@dataclass(frozen=True)
class Mail:
    """The parts of an inbound message Keel uses, read and cleaned once."""

    sender: str  # lower-cased address
    subject: str
    text: str
    message_id: str  # "<...>"; made up from the content when the message has none
    references: tuple[str, ...]  # In-Reply-To and References, most recent first
    headers: dict[str, list[str]]  # the loop-protection headers present
    envelope_sender: str | None  # None: not told
    envelope_recipient: str
    attachments: tuple[SimpleUploadedFile, ...]
    unreadable: tuple[str, ...] = ()  # attachments that could not be decoded, as notes


# -- reading ---------------------------------------------------------------------------------------------------------


def _clean(value: Any) -> str:
    """Text without NUL and other control characters PostgreSQL or the templates should not see."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", str(value or "")).replace("\r\n", "\n").replace("\r", "\n")


def _one_line(value: Any) -> str:
    return " ".join(_clean(value).split())


class _HtmlText(HTMLParser):
    """HTML to plain text: blocks become lines, scripts and styles vanish, ``<blockquote>`` lines get ``> ``."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "table", "ul", "ol", "pre", "hr", "h1", "h2", "h3", "h4", "h5"})
    HIDDEN = frozenset({"script", "style", "head", "title"})
    QUOTE_START, QUOTE_END = "\n\x01\n", "\n\x02\n"

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag == "blockquote":
            self.parts.append(self.QUOTE_START)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "blockquote":
            self.parts.append(self.QUOTE_END)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(_clean(data).replace("\n", " "))

    def text(self) -> str:
        lines: list[str] = []
        depth = 0
        for line in "".join(self.parts).split("\n"):
            if line == "\x01":
                depth += 1
            elif line == "\x02":
                depth = max(0, depth - 1)
            else:
                words = " ".join(line.split())
                lines.append(("> " * depth + words) if words else "")
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.text()


def _body_part(message: AnymailInboundMessage, content_type: str) -> str | None:
    for part in message.walk():
        if part.get_content_type() == content_type and not part.is_attachment():
            try:
                return str(part.get_content_text() or "")
            except LookupError:  # a charset Python does not know: read it as UTF-8
                return str(part.get_content_text(charset="utf-8") or "")
    return None


def _attachment(part: AnymailInboundMessage) -> SimpleUploadedFile:
    name = _one_line(part.get_filename() or "").replace("\\", "/").rsplit("/", 1)[-1][-200:] or "attachment"
    content_type = part.get_content_type()
    if content_type in {"application/octet-stream", "", "application/x-unknown"}:
        content_type = mimetypes.guess_type(name)[0] or content_type
    return SimpleUploadedFile(name, part.get_content_bytes() or b"", content_type)


def read_mail(message: AnymailInboundMessage) -> Mail:
    """Read what Keel needs from ``message``; raises on mail that cannot be read."""
    sender_header = message.from_email
    if isinstance(sender_header, list):  # several From addresses (legal, rare): the first one speaks
        sender_header = sender_header[0]
    if sender_header is None:
        raise ValueError("no From address")
    sender = _one_line(sender_header.addr_spec).lower()
    validate_email(sender)
    if len(sender) > 254:
        raise ValueError("From address too long")
    subject = _one_line(message.subject)
    text = _body_part(message, "text/plain")
    if text is None:
        html = _body_part(message, "text/html")
        text = html_to_text(html) if html else ""
    text = _clean(text).strip()
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT].rstrip() + "\n[… the rest of this message was too long to keep]"
    raw_id = _one_line(message["Message-ID"])
    found = MESSAGE_ID.search(raw_id)
    message_id = found.group(0) if found else (f"<{raw_id.strip('<>')[:298]}>" if raw_id.strip("<>") else "")
    if not message_id:
        digest = hashlib.sha256("\n".join([sender, _one_line(message["Date"]), subject, text]).encode()).hexdigest()
        message_id = f"<{digest[:40]}@no-message-id.keel.invalid>"
    threading = " ".join(
        _one_line(value) for name in ("In-Reply-To", "References") for value in message.get_all(name) or []
    )
    references = tuple(dict.fromkeys(reversed(MESSAGE_ID.findall(threading))))[:50]
    headers = {
        name: [_one_line(value) for value in message.get_all(name) or []]
        for name in ("Auto-Submitted", "Precedence", *AUTOREPLY_HEADERS)
        if message.get_all(name)
    }
    attachments: list[SimpleUploadedFile] = []
    unreadable: list[str] = []
    for part in message.attachments:
        try:
            attachments.append(_attachment(part))
        except Exception:  # one broken part costs that part, not the message
            logger.warning("inbound attachment unreadable", exc_info=True)
            unreadable.append(f"{_one_line(part.get_filename()) or 'attachment'}: could not be read")
    envelope_sender = message.envelope_sender
    return Mail(
        sender=sender,
        subject=subject,
        text=text,
        message_id=message_id,
        references=references,
        headers=headers,
        envelope_sender=None if envelope_sender is None else _one_line(envelope_sender),
        envelope_recipient=_one_line(message.envelope_recipient).lower(),
        attachments=tuple(attachments),
        unreadable=tuple(unreadable),
    )


# -- deciding --------------------------------------------------------------------------------------------------------


def _own_addresses() -> set[str]:
    return {parseaddr(address)[1].lower() for address in (settings.DEFAULT_FROM_EMAIL, settings.SERVER_EMAIL)} - {""}


def loop_reason(mail: Mail) -> str | None:
    """Why this message must get neither a ticket nor a reply (an autoresponder, a bounce, a list), or None."""
    if any(value.lower() != "no" for value in mail.headers.get("Auto-Submitted", [])):
        return "auto-submitted"
    if any(value.lower() in BULK_PRECEDENCE for value in mail.headers.get("Precedence", [])):
        return "precedence"
    if any(name in mail.headers for name in AUTOREPLY_HEADERS):
        return "autoreply"
    if mail.envelope_sender is not None and mail.envelope_sender.strip("<> ") == "":
        return "bounce"
    if SYSTEM_SENDER.match(mail.sender.rsplit("@", 1)[0]):
        return "system-sender"
    if mail.sender in _own_addresses() or mail.sender == mail.envelope_recipient:
        return "own-address"
    return None


def _domain_organizations(domain: str) -> list[Organization]:
    # The JSON text search narrows the rows; the exact, case-insensitive comparison decides.
    rows = SupportSettings.objects.filter(verified_domains__icontains=domain).select_related("organization")
    return [
        row.organization
        for row in rows
        if isinstance(row.verified_domains, list)
        and domain in {str(item).strip().lower() for item in row.verified_domains}
    ]


def organization_for(sender: str) -> tuple[Organization | None, User | None]:
    """The organization ``sender`` writes for, and the user (a member of it) if the address is one."""
    domain = sender.rsplit("@", 1)[1]
    user = User.objects.filter(email__iexact=sender, is_active=True).first()
    memberships = (
        list(Membership.objects.filter(user=user).select_related("organization").order_by("-created_at"))
        if user
        else []
    )
    if len(memberships) == 1:
        return memberships[0].organization, user
    by_domain = _domain_organizations(domain)
    if memberships:
        verified = {organization.pk for organization in by_domain}
        chosen = next((row for row in memberships if row.organization_id in verified), memberships[0])
        return chosen.organization, user
    if len(by_domain) == 1:
        return by_domain[0], None
    return None, None


def _follow_merges(ticket: Ticket) -> Ticket:
    for _ in range(10):
        if ticket.merged_into_id is None:
            break
        target = Ticket.objects.for_org(ticket.organization_id).filter(pk=ticket.merged_into_id).first()
        if target is None:
            break
        ticket = target
    return ticket


def thread_ticket(organization: Organization, mail: Mail) -> Ticket | None:
    """The ticket of ``organization`` this message answers: by ``[T-n]`` in the subject, else by its headers."""
    tickets = Ticket.objects.for_org(organization)
    for number in REFERENCE.findall(mail.subject):
        ticket = tickets.filter(number=int(number)).first()
        if ticket is not None:
            return _follow_merges(ticket)
    if mail.references:
        ids = {*mail.references, *(item.strip("<>") for item in mail.references)}
        comment = Comment.objects.for_org(organization).filter(message_id__in=ids).order_by("-created_at").first()
        if comment is not None:
            return _follow_merges(tickets.get(pk=comment.ticket_id))
    return None


QUOTE_HEADER = re.compile(r"^(-{2,}\s*original message\s*-{2,}|_{10,})$", re.IGNORECASE)


def _reply_header(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if QUOTE_HEADER.match(line):
        return True
    if line.startswith("On "):  # "On <date>, <someone> wrote:", which clients often wrap onto a second line
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        return line.endswith("wrote:") or following.endswith("wrote:")
    return line.startswith("From:") and any(
        other.strip().startswith(("Sent:", "Date:")) for other in lines[index + 1 : index + 4]
    )


def strip_quoted(text: str) -> str:
    """The new part of a reply: everything above the first "On … wrote:" / "-----Original Message-----" / Outlook
    "From: … Sent:" block, without lines quoted with ``>``."""
    lines = text.split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _reply_header(lines, index):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    return "\n".join(kept).strip()


def _refusal(upload: SimpleUploadedFile) -> str | None:
    """Why ``attachment_add`` would refuse this file (the same checks), or None."""
    refusal = attachment_refusal(upload)
    return refusal.rstrip(".") if refusal else None


def _with_notes(text: str, refused: list[str]) -> str:
    body = text or "(no text)"
    if refused:
        body += "\n\nAttachments not kept:\n" + "\n".join(f"- {reason}" for reason in refused)
    return body


def _reply_allowed(kind: str, address: str, limit: int, seconds: int) -> bool:
    """At most ``limit`` automatic replies of ``kind`` to ``address`` per ``seconds``: two robots cannot loop."""
    key = f"tickets:inbound:{kind}:{hashlib.sha256(address.encode()).hexdigest()}"
    if cache.add(key, 1, seconds):
        return True
    try:
        return cache.incr(key) <= limit
    except ValueError:  # expired in between
        return cache.add(key, 1, seconds)


def _lock(message_id: str) -> None:
    """Serialise concurrent deliveries of one message, so the duplicate checks below see each other's work.
    (SQLite's IMMEDIATE transactions serialise all writers already.)"""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:4], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x4B31, key])


# -- placing ---------------------------------------------------------------------------------------------------------


def _unknown(mail: Mail) -> str:
    if settings.SUPPORT_INBOUND_UNKNOWN_SENDER == UnknownSender.QUEUE:
        if QueuedEmail.objects.filter(message_id=mail.message_id).exists():
            return "duplicate"
        QueuedEmail.objects.create(
            sender=mail.sender, subject=mail.subject[:300], body=mail.text, message_id=mail.message_id
        )
        return "queued"
    if _reply_allowed("unknown", mail.sender, UNKNOWN_REPLY_LIMIT, 86400):
        # No customer: a platform notice, answered once per message however often the message is delivered.
        notify(
            organization=None,
            event_type="ticket.sender_unknown",
            addresses=[mail.sender],
            template="ticket_unknown_sender",
            key=f"inbound:{hashlib.sha256(mail.message_id.encode()).hexdigest()}:unknown",
            context={"subject": mail.subject or "(no subject)", "sender": mail.sender},
            auto_reply=True,
        )
    return "rejected"


def _place(mail: Mail) -> str:
    _lock(mail.message_id)
    organization, user = organization_for(mail.sender)
    if organization is None:
        return _unknown(mail)
    if Comment.objects.for_org(organization).filter(message_id=mail.message_id).exists():
        return "duplicate"
    verdicts = [(upload, _refusal(upload)) for upload in mail.attachments]
    refused = [*mail.unreadable, *(reason for _, reason in verdicts if reason)]
    kept = [upload for upload, reason in verdicts if reason is None]
    ticket = thread_ticket(organization, mail)

    if ticket is not None and ticket.status != TicketStatus.CLOSED:
        body = _with_notes(strip_quoted(mail.text) or mail.text, refused)
        comment = comment_add(
            ticket=ticket,
            body=body,
            author=user,
            author_email=mail.sender,
            channel=Channel.EMAIL,
            message_id=mail.message_id,
        )
        for upload in kept:
            attachment_add(ticket=comment.ticket, upload=upload, comment=comment)
        return f"commented:{comment.ticket.reference}"

    subject = " ".join(REFERENCE.sub(" ", mail.subject).split())[:200] or "(no subject)"
    description = _with_notes(mail.text, refused)
    if ticket is not None:  # a reply on a closed ticket starts a new one
        description = f"Follow-up to {ticket.reference}, which was closed.\n\n{description}"
    same = Ticket.objects.for_org(organization).filter(
        channel=Channel.EMAIL, requester_email__iexact=mail.sender, subject=subject, description=description
    )
    if same.filter(created_at__gte=timezone.now() - DUPLICATE_WINDOW).exists():
        return "duplicate"
    created = ticket_create(
        organization=organization,
        subject=subject,
        description=description,
        requester=user,
        requester_email=mail.sender,
        channel=Channel.EMAIL,
        actor=user,
    )
    for upload in kept:
        attachment_add(ticket=created, upload=upload)
    if _reply_allowed("received", mail.sender, ACK_LIMIT, 3600):
        # The acknowledgement answers the sender's address (a member or not) whatever they chose for tickets.
        notify(
            organization=organization,
            event_type="ticket.received",
            addresses=[mail.sender],
            template="ticket_received",
            key=f"ticket:{created.pk}:received",
            context={
                "reference": created.reference,
                "subject": created.subject,
                "path": f"/support/tickets/{created.number}/" if user else "",
            },
            auto_reply=True,
        )
    return f"opened:{created.reference}"


def inbound_receive(message: AnymailInboundMessage) -> str:
    """Turn one inbound message into a ticket, a comment, a queued message or nothing; say which (see the module
    docstring for the rules and the outcomes)."""
    try:
        mail = read_mail(message)
    except Exception:  # bad mail is dropped, never a 500 that SendGrid would retry for days
        logger.warning("inbound mail dropped: unreadable", exc_info=True)
        return "dropped:malformed"
    reason = loop_reason(mail)
    if reason:
        logger.info("inbound mail %s from %s dropped: %s", mail.message_id, mail.sender, reason)
        return f"dropped:{reason}"
    try:
        with transaction.atomic():
            outcome = _place(mail)
    except ServiceValidationError as exc:
        logger.warning("inbound mail %s from %s dropped: %s", mail.message_id, mail.sender, exc.messages)
        return "dropped:invalid"
    logger.info("inbound mail %s from %s: %s", mail.message_id, mail.sender, outcome)
    return outcome


def _on_inbound(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    inbound_receive(event.message)


inbound.connect(_on_inbound, dispatch_uid="tickets.inbound")


class SendGridInboundView(SendGridInboundWebhookView):
    """anymail's SendGrid inbound webhook, answering missing or wrong credentials with 401 and a Basic challenge,
    and a post that is not an inbound message with 400 (anymail answers 400 and 500)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().post(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Basic realm="inbound mail", charset="UTF-8"'
            return response

    def parse_events(self, request: HttpRequest) -> list[Any]:
        try:
            return super().parse_events(request)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:  # e.g. "null" for a JSON field
            logger.warning("inbound post refused: not a SendGrid inbound message (%s)", exc)
            raise BadRequest("Not a SendGrid inbound message.") from exc
