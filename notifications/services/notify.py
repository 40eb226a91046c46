"""``notify()``: the one call other apps make to tell people something.

It runs in the caller's transaction: the notice, one notification per person told and one delivery per channel are
written with the caller's other writes, and the sends are queued only once that transaction commits (a rolled back
write tells nobody). Each delivery is then sent by its own Celery task (``notifications.tasks.send_delivery``).

Besides members, a notice may go to plain email ``addresses``: people without an account (an invitee, a ticket's
requester, a billing contact) or outside the organization's membership (the MSP's staff). Each gets one email, with
no in-app notification and no preferences. A *platform notice* (``organization=None``) goes to addresses only.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import timezone

from notifications.attachments import problems as attachment_problems
from notifications.catalogue import EMAIL, EVENT_TYPES, IN_APP, SLACK, SMS, known
from notifications.models import (
    BulkSend,
    Channel,
    Delivery,
    DeliveryStatus,
    Notice,
    Notification,
    Reason,
)
from notifications.rendering import render
from notifications.services.preferences import channels_for, slack_webhook, sms_number
from tenancy.crypto import encrypt
from tenancy.emails import branding_context
from tenancy.errors import ServiceValidationError
from tenancy.models import Organization, Role, User

logger = logging.getLogger(__name__)

KEY_MAX = 200
# Characters of JSON (written without escaping non-ASCII letters): room for a ticket reply of up to 100,000.
CONTEXT_MAX = 250_000
ADDRESS_MAX = 254  # the longest email address that can be delivered (RFC 5321 path)
ADDRESSES_MAX = 100
# An address has no name to greet in the event type's own email words.
ADDRESS_GREETING = "there"
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,100}")


def _clean_context(context: Any) -> dict[str, Any]:
    """The context as stored (JSON: dates, decimals and UUIDs become strings), or a 400 naming ``context``."""
    if not isinstance(context, dict):
        raise ServiceValidationError({"context": ["Give the context as a dictionary."]})
    try:
        text = json.dumps(context, cls=DjangoJSONEncoder, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ServiceValidationError({"context": [f"Use plain values (text, numbers, dates): {exc}."]}) from None
    if len(text) > CONTEXT_MAX:
        raise ServiceValidationError({"context": [f"At most {CONTEXT_MAX:,} characters once written as JSON."]})
    stored: dict[str, Any] = json.loads(text)
    url = stored.get("url")
    if url not in (None, "") and not (
        isinstance(url, str) and ((url.startswith("/") and not url.startswith("//")) or url.startswith("https://"))
    ):
        raise ServiceValidationError({"context": ["url must be a path (/support/) or an https:// address."]})
    return stored


def _check_template(template: str) -> None:
    if not _TEMPLATE_NAME.fullmatch(template):
        raise ServiceValidationError({"template": ["Name an email template: lower case letters, digits and _."]})
    for suffix in ("subject.txt", "txt", "html"):
        try:
            get_template(f"email/{template}.{suffix}")
        except TemplateDoesNotExist:
            raise ServiceValidationError({"template": [f"There is no email template {template!r}."]}) from None


def recipients(
    *, organization: Organization, users: Iterable[User] | None = None, roles: Iterable[str] | None = None
) -> list[User]:
    """The active people to tell: ``users`` (members of the organization or admins of its partner), plus the members
    with one of ``roles``; every member when neither is given. Sorted by email, each once."""
    wanted = list(users) if users is not None else None
    wanted_roles = sorted(set(roles)) if roles is not None else None
    if wanted_roles is not None:
        unknown = [role for role in wanted_roles if role not in Role.values]
        if unknown:
            raise ServiceValidationError({"roles": [f"Unknown role(s): {', '.join(unknown)}."]})
    belongs = Q(memberships__organization=organization)
    if organization.partner_id is not None:
        belongs |= Q(partner_memberships__partner_id=organization.partner_id)
    found: dict[Any, User] = {}
    if wanted:
        allowed = {
            user.pk: user
            for user in User.objects.filter(belongs, pk__in=[user.pk for user in wanted], is_active=True).distinct()
        }
        outsiders = sorted(user.email for user in wanted if user.pk not in allowed and user.is_active)
        if outsiders:
            raise ServiceValidationError({"users": [f"Not in {organization.name}: {', '.join(outsiders)}."]})
        found.update(allowed)
    if wanted_roles or (wanted is None and wanted_roles is None):
        members = User.objects.filter(memberships__organization=organization, is_active=True)
        if wanted_roles:
            members = members.filter(memberships__role__in=wanted_roles)
        found.update({user.pk: user for user in members})
    return sorted(found.values(), key=lambda user: user.email)


def _queue(delivery_ids: list[str]) -> None:
    from notifications.tasks import send_delivery

    for delivery_id in delivery_ids:
        try:
            send_delivery.delay(delivery_id)
        except Exception:  # the broker is down: retry_due sends them once it is back
            logger.warning("could not queue %d notification deliveries", len(delivery_ids), exc_info=True)
            return


def is_email_address(value: Any) -> bool:
    """Whether ``notify`` takes ``value`` as an address (callers holding addresses they did not check use it to leave
    out a bad one rather than fail their own work)."""
    address = value.strip() if isinstance(value, str) else ""
    if not address or len(address) > ADDRESS_MAX:
        return False
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


def _clean_addresses(addresses: Iterable[str] | str) -> list[str]:
    """The addresses, each once (ignoring case), in the order given; a 400 naming ``addresses`` for a bad one."""
    given = [addresses] if isinstance(addresses, str) else list(addresses)
    clean: dict[str, str] = {}
    bad: list[str] = []
    for value in given:
        if not is_email_address(value):
            bad.append(repr(value)[:80])
            continue
        address = value.strip()
        clean.setdefault(address.lower(), address)
    if bad:
        raise ServiceValidationError({"addresses": [f"Not an email address: {', '.join(bad)}."]})
    if len(clean) > ADDRESSES_MAX:
        raise ServiceValidationError({"addresses": [f"At most {ADDRESSES_MAX} addresses."]})
    return list(clean.values())


def _clean_sealed(sealed: Mapping[str, Any] | None, template: str | None) -> str:
    """The sealed values encrypted as JSON ("" without any); they travel only in a template email."""
    if not sealed:
        return ""
    if not template:
        raise ServiceValidationError({"sealed": ["Sealed values travel only in an email template: name one."]})
    if not all(isinstance(name, str) and isinstance(value, str) for name, value in sealed.items()):
        raise ServiceValidationError({"sealed": ["Give sealed values as text."]})
    return encrypt(json.dumps(dict(sealed)))


def _notices(organization: Organization | None) -> Any:
    """The notices of ``organization``, or the platform notices (no organization)."""
    if organization is None:
        return Notice.objects.filter(organization__isnull=True)
    return Notice.objects.for_org(organization)


def keys_used(event_type: str, wanted: Iterable[tuple[Any, str]]) -> set[tuple[Any, str]]:
    """Which ``(organization id, key)`` pairs of ``wanted`` already have a notice of ``event_type`` (one query): a
    caller about to build many keyed notices skips the ones made already instead of building each to be refused."""
    pairs = set(wanted)
    if not pairs:
        return set()
    found = Notice.objects.filter(
        organization_id__in={organization for organization, _ in pairs},
        event_type=event_type,
        key__in={key for _, key in pairs},
    ).values_list("organization_id", "key")
    return {pair for pair in found if pair in pairs}


def notify(
    *,
    organization: Organization | None,
    event_type: str,
    context: dict[str, Any],
    users: Iterable[User] | None = None,
    roles: Iterable[str] | None = None,
    addresses: Iterable[str] = (),
    key: str | None = None,
    template: str | None = None,
    sealed: Mapping[str, str] | None = None,
    auto_reply: bool = False,
    attachments: list[dict[str, str]] | None = None,
    bulk_send: BulkSend | None = None,
) -> Notice:
    """Tell people of ``organization`` about ``event_type``: ``users``, or the members with ``roles``, or every
    member (see :func:`recipients`); with ``addresses`` and neither ``users`` nor ``roles``, only the addresses.
    Each person is told on the channels they chose for the event type (else their role's defaults), always with the
    event type's required channels; a person with every channel off is not told. The organization's Slack gets it
    too when the event type is routed there.

    ``addresses`` are plain email addresses (people without an account, or outside the membership: a ticket's
    requester, a billing contact, the MSP's staff). Each is emailed once, whatever anyone chose, unless it is the
    address of a person this call already emails. ``organization=None`` makes a platform notice, which goes to
    ``addresses`` only (no people, roles, Slack or SMS).

    ``context`` (plain values) fills the event type's templates; ``context["url"]`` (a path or an https address)
    is where the notification leads. ``template`` names an existing email template (``templates/email/<name>.*``)
    to send instead of the event type's email. It is rendered when the email is sent, from the context as stored
    (JSON: dates and decimals become text, so callers pass them already written as the email shows them).
    ``attachments`` (``[{"kind", "id"}]``, see ``notifications.attachments``) are made and attached when the
    template email is sent. ``sealed`` values (text: a one-time sign-in or invitation link) are added to the
    template email's context only: stored encrypted, never in the notice's context, an in-app notification or the
    admin. ``auto_reply`` marks the emails as automatic answers (``Auto-Submitted: auto-replied``). With ``key``, the
    notice is created once per organization (or once among platform notices) and event type: a second call with the
    same key returns the first notice and creates nothing.

    Bad input (unknown event type or role, a user outside the organization, a bad address, a context that is not
    plain values, an unknown template, people for a platform notice) is a ServiceValidationError naming the field.
    """
    errors: dict[str, list[str]] = {}
    if not known(event_type):
        errors["event_type"] = [f"Unknown event type {event_type!r}."]
    key = (key or "").strip()
    if len(key) > KEY_MAX:
        errors["key"] = [f"At most {KEY_MAX} characters."]
    wanted = list(users) if users is not None else None
    wanted_roles = list(roles) if roles is not None else None
    if organization is None:
        for name, given in (("users", wanted), ("roles", wanted_roles)):
            if given:
                errors[name] = ["A platform notice (no organization) goes to addresses only."]
        if bulk_send is not None:
            errors["bulk_send"] = ["A bulk send tells organizations."]
    if errors:
        raise ServiceValidationError(errors)
    extra = _clean_addresses(addresses)
    if organization is None and not extra:
        raise ServiceValidationError({"addresses": ["A platform notice (no organization) needs an address."]})
    stored = _clean_context(context)
    if template:
        _check_template(template)
    secret = _clean_sealed(sealed, template)
    if attachments:
        wrong = attachment_problems(attachments) or (
            [] if template else ["Attachments travel only in a template email."]
        )
        if wrong:
            raise ServiceValidationError({"attachments": wrong})
        stored["attachments"] = attachments
    with transaction.atomic():
        if key:
            existing = _notices(organization).filter(event_type=event_type, key=key).first()
            if existing is not None:
                return existing
        people: list[User] = []
        channels: dict[Any, frozenset[str]] = {}
        if organization is not None and not (extra and wanted is None and wanted_roles is None):
            people = recipients(organization=organization, users=wanted, roles=wanted_roles)
            if people:
                channels = channels_for(organization=organization, users=people, event_type=event_type)
        told = [person for person in people if channels[person.pk]]
        emailed = {person.email.lower() for person in told if EMAIL in channels[person.pk]}
        extra = [address for address in extra if address.lower() not in emailed]
        listed = {person.email.lower() for person in people}
        reached = {person.email.lower() for person in told}
        now = timezone.now()
        notice = Notice(
            organization=organization,
            event_type=event_type,
            key=key,
            context=stored,
            template=template or "",
            sealed=secret,
            auto_reply=auto_reply,
            bulk_send=bulk_send,
            recipients=len(people) + len([address for address in extra if address.lower() not in listed]),
            notified=len(told) + len([address for address in extra if address.lower() not in reached]),
            created_at=now,
        )
        try:
            with transaction.atomic():  # a savepoint: a concurrent call with the same key may have won
                notice.save(force_insert=True)
        except IntegrityError:
            if not key:
                raise
            return _notices(organization).get(event_type=event_type, key=key)

        notifications: list[Notification] = []
        deliveries: list[Delivery] = []
        common = {"organization": organization, "notice": notice, "created_at": now, "next_attempt_at": now}
        brand = organization.display_name if organization is not None else branding_context(None)["brand_name"]
        base = {**stored, "organization": brand}
        if organization is not None:  # people belong to an organization
            for person in told:
                chosen = channels[person.pk]
                personal = {**base, "recipient": person.get_short_name()}
                shown = render(event_type=event_type, channel=IN_APP, context=personal)
                notification = Notification(
                    organization=organization,
                    notice=notice,
                    user=person,
                    event_type=event_type,
                    title=shown.title or EVENT_TYPES[event_type].label,
                    body=shown.body,
                    url=str(stored.get("url") or ""),
                    in_app=IN_APP in chosen,
                    created_at=now,
                )
                notifications.append(notification)
                if EMAIL in chosen:
                    deliveries.append(_email(common, template, personal, to=person.email, notification=notification))
                if SMS in chosen:
                    number = sms_number(person, organization)
                    sms: dict[str, Any] = {
                        **common,
                        "notification": notification,
                        "channel": Channel.SMS,
                        "to": number or "",
                        "body": render(event_type=event_type, channel=SMS, context=personal).body,
                    }
                    if number is None:
                        sms.update(status=DeliveryStatus.SKIPPED, reason=Reason.NO_PHONE, next_attempt_at=None)
                    deliveries.append(Delivery(**sms))
        for address in extra:
            deliveries.append(_email(common, template, {**base, "recipient": ADDRESS_GREETING}, to=address))
        webhook = slack_webhook(organization) if organization is not None else None
        if webhook is not None and event_type in webhook.event_types:
            text = render(event_type=event_type, channel=SLACK, context={**base, "recipient": ""})
            deliveries.append(Delivery(**common, channel=Channel.SLACK, body=text.body))

        Notification.objects.bulk_create(notifications)
        Delivery.objects.bulk_create(deliveries)
        pending = [str(item.pk) for item in deliveries if item.status == DeliveryStatus.PENDING]
        if pending:
            transaction.on_commit(lambda: _queue(pending))
    return notice


def _email(
    common: dict[str, Any],
    template: str | None,
    context: dict[str, Any],
    *,
    to: str,
    notification: Notification | None = None,
) -> Delivery:
    """An email delivery: the event type's words rendered now, or (with ``template``) rendered when sent."""
    email = render(event_type=common["notice"].event_type, channel=EMAIL, context=context) if not template else None
    return Delivery(
        **common,
        notification=notification,
        channel=Channel.EMAIL,
        to=to,
        subject=email.title if email else "",
        body=email.body if email else "",
    )
