"""Telling an organization's people about SMS replies without burying them: a campaign to thousands of contacts can
bring hundreds of replies within minutes, and one email each would drown everything else in the inbox.

Replies are told by the quarter of an hour (:data:`WINDOW`, on the UTC clock: 09:00-09:15, 09:15-09:30, ...):

- the **first** reply an organization receives in a quarter is told at once, as it is: who sent it, to which
  campaign, what it says (:func:`reply_tell`);
- the **others** of that quarter are not told one by one: once the quarter is over, :func:`replies_tell_more` (every
  few minutes, from Celery beat) tells the same people, once, how many more came, with the latest of them and a link
  to the replies page, where every reply is.

So a person hears of replies at most twice a quarter of an hour, however many arrive, and a single reply is still
told the moment it lands. Each notice is keyed by the organization and its quarter, so a job that runs twice, two
workers at once, or a webhook Twilio delivers again tell nobody twice. Quarters that ended more than
:data:`LOOKBACK` ago are not told any more (Celery beat stopped for that long); their replies are on the page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count
from django.utils import timezone

from notifications.rendering import absolute_url
from notifications.services import notify
from notifications.services.notify import keys_used
from sms.models import Campaign, Contact, InboundKind, InboundMessage
from tenancy.models import Organization

EVENT_TYPE = "sms.reply_received"
WINDOW = timedelta(minutes=15)
LOOKBACK = timedelta(hours=2)
LATEST_SHOWN = 10  # replies quoted in the notice of the others
REPLIES_URL = "/messaging/replies/"


def window_start(at: datetime) -> datetime:
    """The start of the quarter of an hour (UTC) ``at`` falls in."""
    at = at.astimezone(UTC)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def _key(kind: str, start: datetime) -> str:
    return f"sms-replies-{kind}:{start:%Y%m%dT%H%M}"


def _sender(contact: Contact | None, phone: str) -> str:
    return contact.name if contact is not None and contact.name else phone


def reply_tell(organization: Organization, *, message: InboundMessage) -> None:
    """Tell the organization's people about ``message`` (a reply, just stored) if it is the first of its quarter of
    an hour; the others wait for :func:`replies_tell_more`. People hear of it on the channels each chose for
    ``sms.reply_received``: by default owners, admins and managers, by email (``email/sms_reply``) and in the
    portal."""
    key = _key("first", window_start(message.received_at))
    if keys_used(EVENT_TYPE, [(organization.pk, key)]):  # one query, rather than building a notice to be refused
        return
    contact, campaign = message.contact, message.campaign
    sender = _sender(contact, message.from_e164)
    notify(
        organization=organization,
        event_type=EVENT_TYPE,
        template="sms_reply",
        key=key,
        context={
            "title": f"SMS reply from {sender}"[:200],
            "message": message.body[:500],
            "url": f"/messaging/contacts/{contact.pk}/" if contact is not None else REPLIES_URL,
            "organization_name": organization.display_name,
            "sender": sender,
            "phone": message.from_e164,
            "to": message.to_e164,
            "body": message.body,
            "campaign": campaign.name if campaign is not None else "",
            "known_contact": contact is not None,
            "replies_link": absolute_url(REPLIES_URL),
        },
    )


def replies_tell_more(*, now: datetime | None = None) -> int:
    """Tell each organization that had more than one reply in a quarter of an hour that ended within
    :data:`LOOKBACK` how many more there were (the first was told at once); returns the notices made. Safe to run
    often and from several workers: each organization and quarter is told once."""
    end = window_start(now or timezone.now())
    busy: dict[tuple[Any, datetime], int] = {}
    start = end - LOOKBACK
    while start < end:
        counts = (
            InboundMessage.objects.filter(
                kind=InboundKind.REPLY, received_at__gte=start, received_at__lt=start + WINDOW
            )
            .values("organization_id")
            .annotate(replies=Count("id"))
            .filter(replies__gt=1)
            .order_by()
        )
        for row in counts:
            busy[(row["organization_id"], start)] = row["replies"]
        start += WINDOW
    if not busy:
        return 0
    told = keys_used(EVENT_TYPE, [(organization, _key("more", start)) for organization, start in busy])
    organizations = Organization.objects.in_bulk({organization for organization, _ in busy})
    made = 0
    for (organization_id, start), replies in sorted(busy.items(), key=lambda item: item[0][1]):
        organization = organizations.get(organization_id)
        if organization is None or (organization_id, _key("more", start)) in told:
            continue
        _tell_more(organization, start, replies - 1)
        made += 1
    return made


def _tell_more(organization: Organization, start: datetime, more: int) -> None:
    """One notice: ``more`` replies after the first of the quarter starting at ``start``, the latest quoted."""
    end = start + WINDOW
    replies = (
        InboundMessage.objects.for_org(organization)
        .filter(kind=InboundKind.REPLY, received_at__gte=start, received_at__lt=end)
        .select_related("contact", "campaign")
        .order_by("-received_at", "-id")[: min(more, LATEST_SHOWN)]  # the first, told already, is the earliest
    )
    zone = ZoneInfo(organization.timezone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    between = (
        f"{local_start:%H:%M} and {local_end:%H:%M} on {local_start.day} {local_start:%b %Y} ({organization.timezone})"
    )
    latest = [
        {
            "sender": _sender(reply.contact, reply.from_e164),
            "phone": reply.from_e164,
            "campaign": _campaign_name(reply.campaign),
            "body": reply.body[:500],
        }
        for reply in replies
    ]
    plural = "reply" if more == 1 else "replies"
    notify(
        organization=organization,
        event_type=EVENT_TYPE,
        template="sms_replies",
        key=_key("more", start),
        context={
            "title": f"{more} more SMS {plural}",
            "message": f"{more} more SMS {plural} came between {between}, after the one you were told about.",
            "url": REPLIES_URL,
            "replies_link": absolute_url(REPLIES_URL),
            "organization_name": organization.display_name,
            "more": more,
            "between": between,
            "latest": latest,
            "shown": len(latest),
        },
    )


def _campaign_name(campaign: Campaign | None) -> str:
    return campaign.name if campaign is not None else ""
