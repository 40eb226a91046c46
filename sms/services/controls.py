"""An organization's sending controls: the kill switch, its messaging settings, releasing the jobs the kill switch
held, and deleting templates no launched campaign uses.

Like launching, these are for the organization's owners, admins and managers (and staff; API keys are checked by
scope): anyone else gets PermissionDenied. Each function is one transaction that takes the organization's
``SmsSettings`` row lock where it changes settings, the lock the dispatcher holds while it sends, so a kill switch
turned on is seen by the next batch and never in the middle of one.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from sms.gates import Gate
from sms.models import Campaign, CampaignStatus, CampaignTemplate, JobState, SendJob, SmsSettings, Template
from sms.phones import e164
from sms.services.campaigns import may_launch
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization, User

SETTINGS_FIELDS = (
    "business_name",
    "reply_contact",
    "daily_budget",
    "monthly_budget",
    "messages_per_minute",
    "suppression_days",
    "opt_out_keywords",
    "opt_in_keywords",
    "help_keywords",
)
KEYWORD_FIELDS = {"opt_out_keywords": "an opt-out", "opt_in_keywords": "an opt-in", "help_keywords": "a help"}
MAX_PER_MINUTE = 6000
MAX_SUPPRESSION_DAYS = 365
MAX_BUDGET = Decimal("9999999999.99")  # the column holds 12 digits, 2 after the point
# Every message ends "Reply STOP to opt out" (sms.messages.OPT_OUT_LINE), so STOP must always opt out.
REQUIRED_OPT_OUT = "STOP"
_WORD = re.compile(r"[A-Z0-9]+")


def _require_manager(actor: User | None, organization: Organization) -> None:
    if not may_launch(user=actor, organization=organization):
        raise PermissionDenied("Only owners, admins and managers change how the organization sends messages.")


def _locked_settings(organization: Organization) -> SmsSettings:
    """The organization's settings row, created with the defaults when missing, locked until the transaction ends."""
    SmsSettings.objects.get_or_create(organization=organization)
    return SmsSettings.objects.select_for_update().get(organization=organization)


# -- the kill switch ---------------------------------------------------------------------------------------------


def held_jobs_release(*, organization: Organization, campaign: Campaign | None = None) -> int:
    """Hand the dispatcher at once the queued jobs the ``kill_switch`` gate held (``deferred_until`` cleared), of
    ``campaign`` or of every campaign of the organization; returns how many.

    Only when nothing holds them any more: while the organization's kill switch is on nothing is released, and jobs
    of a paused, completed or canceled campaign stay where they are (a pause holds through the same gate; resuming
    releases them). Releasing them anyway would only have the dispatcher hold them again, and count the gate again.
    """
    if SmsSettings.objects.filter(organization=organization, kill_switch=True).exists():
        return 0
    jobs = SendJob.objects.for_org(organization).filter(
        state=JobState.QUEUED,
        reason=Gate.KILL_SWITCH.value,
        deferred_until__isnull=False,
        campaign__status__in=(CampaignStatus.RUNNING, CampaignStatus.SCHEDULED),
    )
    if campaign is not None:
        jobs = jobs.filter(campaign=campaign)
    return jobs.update(deferred_until=None, updated_at=timezone.now())


def kill_switch_set(*, organization: Organization, enabled: bool, actor: User | None = None) -> SmsSettings:
    """Turn the organization's kill switch on (nothing is sent until it is turned off) or off.

    Idempotent: setting it to what it already is records nothing. Turning it off releases the jobs it held
    (:func:`held_jobs_release`), so sending resumes at once rather than when their next check was due; the audit
    log records who turned it on or off and how many jobs that released.
    """
    _require_manager(actor, organization)
    if not isinstance(enabled, bool):
        raise ServiceValidationError({"enabled": ["Must be true or false."]})
    with transaction.atomic():
        settings = _locked_settings(organization)
        changed = settings.kill_switch != enabled
        if changed:
            settings.kill_switch = enabled
            settings.save(update_fields=["kill_switch", "updated_at"])
        # Released even when it was already off: jobs a crashed worker held under the switch then go too.
        released = 0 if enabled else held_jobs_release(organization=organization)
        if changed:
            audit_record(
                action="sms.kill_switch_on" if enabled else "sms.kill_switch_off",
                organization=organization,
                actor=actor,
                target=settings,
                changes={"kill_switch": [not enabled, enabled], "released_jobs": released},
            )
    return settings


# -- settings ----------------------------------------------------------------------------------------------------


def _text(value: Any, field: str, limit: int, errors: dict[str, list[str]]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[field] = ["Must be text."]
        return ""
    text = value.strip()
    if len(text) > limit:
        errors[field] = [f"At most {limit} characters."]
    return text


def _reply_contact(value: Any, organization: Organization, errors: dict[str, list[str]]) -> str:
    text = _text(value, "reply_contact", 120, errors)
    if not text or "reply_contact" in errors:
        return text
    if "@" in text:
        try:
            validate_email(text)
        except ValidationError:
            errors["reply_contact"] = ["Give a phone number or an email address; this email address is not valid."]
        return text
    try:
        return e164(text, organization.country)
    except ValueError as bad:
        errors["reply_contact"] = [f"Give a phone number or an email address: {bad}"]
        return text


def _budget(value: Any, field: str, errors: dict[str, list[str]]) -> Decimal | None:
    """An amount with at most two decimals, 0 or more; None (or an empty string) is no budget."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        errors[field] = ["Give an amount such as 50.00, or null for no budget."]
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        errors[field] = ["Give an amount such as 50.00, or null for no budget."]
        return None
    if not amount.is_finite():
        errors[field] = ["Give an amount such as 50.00, or null for no budget."]
    elif amount < 0:
        errors[field] = ["A budget cannot be negative."]
    elif amount > MAX_BUDGET:
        errors[field] = [f"At most {MAX_BUDGET:,}."]
    elif amount != amount.quantize(Decimal("0.01")):
        errors[field] = ["At most two decimal places."]
    else:
        return amount.quantize(Decimal("0.01"))
    return None


def _whole(value: Any, field: str, low: int, high: int, errors: dict[str, list[str]]) -> int:
    message = f"A whole number from {low} to {high:,}."
    if isinstance(value, bool):
        errors[field] = [message]
        return low
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not low <= value <= high:
        errors[field] = [message]
        return low
    return value


def _keywords(value: Any, field: str, errors: dict[str, list[str]]) -> list[str]:
    """Comma-separated words (or a list of words), each letters A-Z and digits only; upper-cased, duplicates
    dropped, in the order given."""
    if isinstance(value, list | tuple):
        if not all(isinstance(word, str) for word in value):
            errors[field] = ["Give words separated by commas."]
            return []
        words = [word.strip().upper() for word in value]
    elif isinstance(value, str):
        words = [word.strip().upper() for word in value.split(",")]
    else:
        errors[field] = ["Give words separated by commas."]
        return []
    words = list(dict.fromkeys(word for word in words if word))
    bad = [word for word in words if not _WORD.fullmatch(word)]
    if bad:
        errors[field] = [f"{bad[0]!r} is not a keyword: use one word of letters A-Z and digits only."]
    elif len(",".join(words)) > 300:
        errors[field] = ["At most 300 characters in all."]
    elif field == "opt_out_keywords" and REQUIRED_OPT_OUT not in words:
        errors[field] = ["STOP must stay an opt-out keyword: every message tells contacts to reply STOP."]
    return words


def settings_update(*, organization: Organization, actor: User | None = None, **fields: Any) -> SmsSettings:
    """Change the organization's messaging settings (any of :data:`SETTINGS_FIELDS`); all or nothing.

    - ``business_name`` (at most 60 characters; the organization's name when empty) and ``reply_contact`` (a phone
      number, stored as E.164 read in the organization's country, or an email address; at most 120 characters);
    - ``daily_budget`` / ``monthly_budget``: amounts of 0 or more with at most two decimals, or None for no cap;
    - ``messages_per_minute``: 1 to 6,000; ``suppression_days``: 0 (off) to 365;
    - ``opt_out_keywords``, ``opt_in_keywords``, ``help_keywords``: comma-separated words (or lists), each of
      letters A-Z and digits only, stored upper-case. A word may be in one list only (checked against the lists
      left as they are, too), and STOP always opts out.

    Bad input raises ServiceValidationError naming every bad field; a field that is not a setting is one of them.
    Changes are audited with their old and new values.
    """
    _require_manager(actor, organization)
    errors: dict[str, list[str]] = {}
    for name in sorted(set(fields) - set(SETTINGS_FIELDS)):
        errors[name] = ["This field cannot be changed here."]
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "business_name":
            clean[name] = _text(value, name, 60, errors)
        elif name == "reply_contact":
            clean[name] = _reply_contact(value, organization, errors)
        elif name in ("daily_budget", "monthly_budget"):
            clean[name] = _budget(value, name, errors)
        elif name == "messages_per_minute":
            clean[name] = _whole(value, name, 1, MAX_PER_MINUTE, errors)
        elif name == "suppression_days":
            clean[name] = _whole(value, name, 0, MAX_SUPPRESSION_DAYS, errors)
        elif name in KEYWORD_FIELDS:
            clean[name] = ",".join(_keywords(value, name, errors))
    if errors:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        settings = _locked_settings(organization)
        _check_keyword_overlap(settings, clean)
        changes = {
            name: [_shown(getattr(settings, name)), _shown(value)]
            for name, value in clean.items()
            if getattr(settings, name) != value
        }
        if changes:
            for name in changes:
                setattr(settings, name, clean[name])
            settings.save(update_fields=[*changes, "updated_at"])
            audit_record(
                action="sms.settings_updated", organization=organization, actor=actor, target=settings, changes=changes
            )
    return settings


def _shown(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _check_keyword_overlap(settings: SmsSettings, clean: dict[str, Any]) -> None:
    """A reply word must mean one thing: refuse a word in two lists, naming the changed list(s) it is in."""
    lists = {name: SmsSettings.keywords(clean.get(name, getattr(settings, name))) for name in KEYWORD_FIELDS}
    errors: dict[str, list[str]] = {}
    for name in KEYWORD_FIELDS:
        if name not in clean:
            continue
        for other, label in KEYWORD_FIELDS.items():
            shared = sorted(lists[name] & lists[other]) if other != name else []
            if shared:
                errors.setdefault(name, []).append(f"Also {label} keyword: {', '.join(shared)}.")
    if errors:
        raise ServiceValidationError(errors)


# -- templates ---------------------------------------------------------------------------------------------------


def template_delete(*, template: Template) -> None:
    """Delete a template that no launched campaign uses (ConflictError otherwise: its campaigns keep it for their
    history and for jobs still to send). Draft campaigns that use it lose it from their list of templates.

    The campaigns using it are locked first, so a draft launched at the same moment either launches before (and the
    delete is refused) or after (without this template; with none left, the launch is refused)."""
    with transaction.atomic():
        users = CampaignTemplate.objects.filter(template=template).values("campaign_id")
        statuses = set(
            Campaign.objects.for_org(template.organization_id)
            .select_for_update()
            .filter(pk__in=users)
            .values_list("status", flat=True)
        )
        if statuses - {CampaignStatus.DRAFT}:
            raise ConflictError("A launched campaign uses this template, so it cannot be deleted.")
        CampaignTemplate.objects.filter(template=template).delete()
        template.delete()
