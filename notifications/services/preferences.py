"""Who wants to hear about what, and how: each person's channels per event type, and the organization's Slack.

A person without a saved choice for an event type gets the defaults of their role in the organization
(``notifications.catalogue.ROLE_DEFAULTS``). Saving the settings page stores a row for every event type shown, so
later changes to the defaults do not change what a person chose. An event type's required channels are on whatever
was chosen or saved: an attempt to turn one off is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from notifications.catalogue import EVENT_TYPES, SMS, USER_CHANNELS, default_channels, known, with_required
from notifications.models import NotificationPreference, SlackWebhook
from sms.phones import e164
from tenancy.audit import audit_record
from tenancy.crypto import encrypt
from tenancy.errors import ServiceValidationError, field_error
from tenancy.models import Membership, Organization, User

# Slack's incoming webhooks live on these hosts only; no other address is posted to (no requests into our own
# network, whatever an organization's admin types).
SLACK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
URL_MAX = 500


def sms_number(user: User, organization: Organization) -> str | None:
    """The person's mobile number (their profile's) as E.164, read in the organization's country; None without a
    valid one."""
    try:
        return e164(user.phone, organization.country)
    except ValueError:
        return None


def roles_of(organization: Organization, users: Iterable[User]) -> dict[Any, str]:
    """Each member's role in ``organization`` by user id (partner admins who are not members are absent)."""
    ids = [user.pk for user in users]
    rows = Membership.objects.filter(organization=organization, user_id__in=ids).values_list("user_id", "role")
    return dict(rows)


def channels_for(*, organization: Organization, users: list[User], event_type: str) -> dict[Any, frozenset[str]]:
    """The channels each of ``users`` wants ``event_type`` on, by user id (two queries whatever the number)."""
    roles = roles_of(organization, users)
    saved = {
        row.user_id: row.channels
        for row in NotificationPreference.objects.for_org(organization).filter(
            user__in=[user.pk for user in users], event_type=event_type
        )
    }
    return {
        user.pk: with_required(event_type, saved[user.pk])
        if user.pk in saved
        else default_channels(roles.get(user.pk), event_type)
        for user in users
    }


def preferences_table(*, organization: Organization, user: User) -> dict[str, frozenset[str]]:
    """Every event type with the channels the person gets it on (their choice, else their role's default)."""
    role = roles_of(organization, [user]).get(user.pk)
    saved = {
        row.event_type: row.channels for row in NotificationPreference.objects.for_org(organization).filter(user=user)
    }
    return {
        name: with_required(name, saved[name]) if name in saved else default_channels(role, name)
        for name in EVENT_TYPES
    }


def preferences_update(
    *, organization: Organization, user: User, choices: Mapping[str, Iterable[str]]
) -> dict[str, frozenset[str]]:
    """Save the person's channels for the event types in ``choices`` (others keep theirs). Unknown event types or
    channels are refused by field; SMS needs a valid mobile number in the person's profile. Required channels stay on
    (leaving one out of ``choices`` does not turn it off)."""
    if not Organization.objects.visible_to(user).filter(pk=organization.pk).exists():
        raise field_error("user", "This person is not in the organization.")
    errors: dict[str, list[str]] = {}
    clean: dict[str, frozenset[str]] = {}
    for event_type, channels in choices.items():
        if not known(event_type):
            errors.setdefault("event_type", []).append(f"Unknown event type {event_type!r}.")
            continue
        chosen = frozenset(channels)
        unknown = sorted(chosen - set(USER_CHANNELS))
        if unknown:
            errors.setdefault("channels", []).append(f"Unknown channel(s): {', '.join(unknown)}.")
            continue
        clean[event_type] = chosen
    if any(SMS in chosen for chosen in clean.values()) and sms_number(user, organization) is None:
        errors.setdefault(SMS, []).append("Add a valid mobile number to your profile to get notifications by SMS.")
    if errors:
        raise ServiceValidationError(errors)
    clean = {event_type: with_required(event_type, chosen) for event_type, chosen in clean.items()}
    rows = [
        NotificationPreference(
            organization=organization,
            user=user,
            event_type=event_type,
            in_app="in_app" in chosen,
            email="email" in chosen,
            sms=SMS in chosen,
        )
        for event_type, chosen in sorted(clean.items())
    ]
    NotificationPreference.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["organization", "user", "event_type"],
        update_fields=["in_app", "email", "sms", "updated_at"],
    )
    return preferences_table(organization=organization, user=user)


# -- Slack ---------------------------------------------------------------------------------------------------------


def slack_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the organization's Slack webhook, or None when it can."""
    if len(url) > URL_MAX:
        return f"At most {URL_MAX} characters."
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "Use the https:// address Slack gives for the incoming webhook."
    if parts.username or parts.password or parts.port not in (None, 443):
        return "Use the address exactly as Slack gives it."
    if (parts.hostname or "") not in SLACK_HOSTS:
        return "Slack incoming webhooks start with https://hooks.slack.com/."
    if len(parts.path.strip("/")) < 10:
        return "The address is incomplete: copy all of it from Slack."
    return None


def _hint(url: str) -> str:
    parts = urlsplit(url)
    secret = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return f"{parts.hostname}/…{secret[-4:]}"


def slack_webhook(organization: Organization) -> SlackWebhook | None:
    return SlackWebhook.objects.for_org(organization).first()


@transaction.atomic
def slack_webhook_set(
    *,
    organization: Organization,
    event_types: Iterable[str],
    url: str | None = None,
    actor: User | None = None,
    ip: str | None = None,
) -> SlackWebhook:
    """Set the organization's Slack webhook and the event types posted to it. ``url`` None keeps the current address
    (which must then exist). Audited: the address decides where the organization's news goes."""
    chosen = sorted(set(event_types))
    errors: dict[str, list[str]] = {}
    unknown = [name for name in chosen if not known(name) or not EVENT_TYPES[name].choosable]
    if unknown:
        errors["event_types"] = [f"Unknown event type(s): {', '.join(unknown)}."]
    existing = SlackWebhook.objects.for_org(organization).select_for_update().first()
    address = (url or "").strip()
    if url is not None:
        problem = "Paste the incoming webhook address from Slack." if not address else slack_url_problem(address)
        if problem:
            errors["url"] = [problem]
    elif existing is None:
        errors["url"] = ["Paste the incoming webhook address from Slack."]
    if errors:
        raise ServiceValidationError(errors)
    webhook = existing or SlackWebhook(organization=organization)
    changes: dict[str, Any] = {"event_types": chosen}
    if url is not None:
        webhook.url_encrypted = encrypt(address)
        webhook.hint = _hint(address)
        changes["url"] = webhook.hint
    webhook.event_types = chosen
    webhook.updated_by = actor
    webhook.save()
    audit_record(
        action="notifications.slack_set", organization=organization, actor=actor, target=webhook, changes=changes,
        ip=ip,
    )  # fmt: skip
    return webhook


@transaction.atomic
def slack_webhook_remove(*, organization: Organization, actor: User | None = None, ip: str | None = None) -> bool:
    """Stop posting to Slack; True when there was a webhook."""
    webhook = SlackWebhook.objects.for_org(organization).first()
    if webhook is None:
        return False
    webhook.delete()
    audit_record(
        action="notifications.slack_removed", organization=organization, actor=actor, changes={"url": webhook.hint},
        ip=ip,
    )  # fmt: skip
    return True
