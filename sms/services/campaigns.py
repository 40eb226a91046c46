"""Templates and campaigns: create them, launch a campaign (one send job per audience contact), pause, resume and
cancel it. Only an organization's owners, admins and managers may launch, pause and resume (``LAUNCH_ROLES``)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from events.services import publish
from sms.messages import placeholders_of
from sms.models import (
    Campaign,
    CampaignNumber,
    CampaignStatus,
    CampaignTemplate,
    Contact,
    JobState,
    SendingNumber,
    SendJob,
    Template,
)
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Membership, Organization, PartnerMembership, Role, User

LAUNCH_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MANAGER})
MAX_TEMPLATES = 10


def may_launch(*, user: User | None, organization: Organization) -> bool:
    """Staff, the organization's owners, admins and managers, and the admins of its partner (API keys are checked by
    scope instead)."""
    if user is None:
        return True
    if user.is_staff:
        return True
    if Membership.objects.filter(user=user, organization=organization, role__in=LAUNCH_ROLES).exists():
        return True
    partner_id = organization.partner_id
    return partner_id is not None and PartnerMembership.objects.filter(user=user, partner_id=partner_id).exists()


def _require_launcher(user: User | None, organization: Organization) -> None:
    if not may_launch(user=user, organization=organization):
        raise PermissionDenied("Only owners, admins and managers launch, pause and resume campaigns.")


def _body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ServiceValidationError({"body": ["A template needs some text."]})
    if len(body) > 1600:
        raise ServiceValidationError({"body": ["At most 1,600 characters (ten message parts)."]})
    try:
        placeholders_of(body)
    except ValueError as bad:
        raise ServiceValidationError({"body": [str(bad)]}) from None
    return body


def template_create(*, organization: Organization, name: str, body: str) -> Template:
    name = (name or "").strip()[:120]
    if not name:
        raise ServiceValidationError({"name": ["A name is required."]})
    return Template.objects.create(organization=organization, name=name, body=_body(body))


def template_update(*, template: Template, name: str | None = None, body: str | None = None) -> Template:
    fields = []
    if name is not None:
        if not name.strip():
            raise ServiceValidationError({"name": ["A name is required."]})
        template.name = name.strip()[:120]
        fields.append("name")
    if body is not None:
        template.body = _body(body)
        fields.append("body")
    if fields:
        template.save(update_fields=[*fields, "updated_at"])
    return template


def campaign_create(
    *,
    organization: Organization,
    name: str,
    template_ids: Sequence[uuid.UUID | str],
    number_ids: Sequence[uuid.UUID | str],
    audience_tags: Sequence[str] = (),
    link_url: str = "",
    start_at: datetime | None = None,
    actor: User | None = None,
) -> Campaign:
    """A draft campaign: its templates (used in turn, in the order given), its sending numbers and its audience."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()[:120]
    if not name:
        errors["name"] = ["A name is required."]
    templates = list(Template.objects.for_org(organization).filter(pk__in=_ids(template_ids, "template_ids", errors)))
    by_id = {str(template.pk): template for template in templates}
    ordered = [by_id[str(pk)] for pk in dict.fromkeys(str(pk) for pk in template_ids) if str(pk) in by_id]
    if not template_ids:
        errors["template_ids"] = ["Choose at least one template."]
    elif len(ordered) != len(set(map(str, template_ids))):
        errors["template_ids"] = ["A template is not one of this organization's."]
    elif len(ordered) > MAX_TEMPLATES:
        errors["template_ids"] = [f"At most {MAX_TEMPLATES} templates."]
    numbers = list(
        SendingNumber.objects.filter(
            organization=organization, active=True, pk__in=_ids(number_ids, "number_ids", errors)
        )
    )
    if not number_ids:
        errors["number_ids"] = ["Choose at least one sending number."]
    elif len(numbers) != len(set(map(str, number_ids))):
        errors["number_ids"] = ["A number is not one of this organization's active sending numbers."]
    if "{link}" in "".join(template.body for template in ordered) and not link_url:
        errors["link_url"] = ["A template uses {link}: say where it leads."]
    if link_url and not link_url.startswith(("https://", "http://")):
        errors["link_url"] = ["Give a full web address (https://...)."]
    if start_at is not None and timezone.is_naive(start_at):
        errors["start_at"] = ["Give the time with its offset or zone."]
    if errors:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            organization=organization,
            name=name,
            audience_tags=Contact.tags_text(list(audience_tags)),
            link_url=link_url,
            start_at=start_at,
            created_by=actor,
        )
        CampaignTemplate.objects.bulk_create(
            CampaignTemplate(campaign=campaign, template=template, position=position)
            for position, template in enumerate(ordered)
        )
        CampaignNumber.objects.bulk_create(CampaignNumber(campaign=campaign, number=number) for number in numbers)
    return campaign


def _ids(values: Sequence[uuid.UUID | str], field: str, errors: dict[str, list[str]]) -> list[uuid.UUID]:
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            errors[field] = [f"{value!r} is not an id."]
    return ids


def audience(campaign: Campaign) -> Any:
    """The contacts a campaign goes to: those with recorded consent and, when it names tags, any of them."""
    contacts = Contact.objects.for_org(campaign.organization_id).filter(consent_at__isnull=False)
    tags = [tag for tag in campaign.audience_tags.split(",") if tag]
    if tags:
        match = Q()
        for tag in tags:
            match |= Q(tags__contains=f",{tag},")
        contacts = contacts.filter(match)
    return contacts


def campaign_launch(*, campaign: Campaign, actor: User | None = None, now: datetime | None = None) -> int:
    """Create one send job per audience contact, in one statement; returns how many were created. The jobs are
    unique per (organization, campaign, contact), so launching again creates none. The campaign is SCHEDULED until
    its start time, then RUNNING; the dispatcher does the rest."""
    organization = campaign.organization
    _require_launcher(actor, organization)
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.for_org(campaign.organization_id).select_for_update().get(pk=campaign.pk)
        if locked.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELED):
            raise ConflictError(f"The campaign is {locked.get_status_display().lower()}.")
        if not locked.template_links.exists() or not locked.number_links.exists():
            raise ConflictError("The campaign needs a template and a sending number.")
        start = locked.start_at or now
        created = _create_jobs(locked, now, start if start > now else None)
        locked.status = CampaignStatus.SCHEDULED if start > now else CampaignStatus.RUNNING
        locked.launched_at = locked.launched_at or now
        locked.save(update_fields=["status", "launched_at", "updated_at"])
        audit_record(
            action="campaign.launched", organization=organization, actor=actor, target=locked, changes={"jobs": created}
        )
        publish(organization, "campaign.launched", {"id": str(locked.pk), "name": locked.name, "jobs": created})
    campaign.refresh_from_db()
    return created


def _create_jobs(campaign: Campaign, now: datetime, not_before: datetime | None) -> int:
    """INSERT … SELECT the audience into send jobs, numbered in contact order after the jobs the campaign has;
    the unique constraint makes a second launch create nothing. A scheduled campaign's jobs wait for its start."""
    contacts = audience(campaign).values("pk")
    sql, params = contacts.query.sql_with_params()
    quote = connection.ops.quote_name
    job, contact = SendJob._meta.db_table, Contact._meta.db_table
    first = SendJob.objects.for_org(campaign.organization_id).filter(campaign=campaign).count()
    meta = SendJob._meta
    organization_id = meta.get_field("organization").get_db_prep_value(campaign.organization_id, connection)
    campaign_id = meta.get_field("campaign").get_db_prep_value(campaign.pk, connection)
    stamp = meta.get_field("created_at").get_db_prep_value(now, connection)
    start = meta.get_field("deferred_until").get_db_prep_value(not_before, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(job)} (organization_id, campaign_id, contact_id, position, state, reason, body, "  # noqa: S608 - names from the models
            f"segments, cost, error_code, attempts, deferred_until, created_at, updated_at) "
            f"SELECT %s, %s, c.id, %s + ROW_NUMBER() OVER (ORDER BY c.created_at, c.id) - 1, 'QUEUED', '', '', "
            f"0, 0, '', 0, %s, %s, %s FROM {quote(contact)} c WHERE c.id IN ({sql}) "
            f"AND NOT EXISTS (SELECT 1 FROM {quote(job)} j WHERE j.campaign_id = %s AND j.contact_id = c.id) "
            f"ON CONFLICT DO NOTHING",
            [organization_id, campaign_id, first, start, stamp, stamp, *params, campaign_id],
        )
        return cursor.rowcount


def campaign_pause(*, campaign: Campaign, actor: User | None = None) -> Campaign:
    _require_launcher(actor, campaign.organization)
    return _move(campaign, {CampaignStatus.SCHEDULED, CampaignStatus.RUNNING}, CampaignStatus.PAUSED, actor)


def campaign_resume(*, campaign: Campaign, actor: User | None = None) -> Campaign:
    """Resume a paused campaign (SCHEDULED again when its start is still ahead), and hand the dispatcher at once the
    jobs the pause held: a pause holds them through the ``kill_switch`` gate. While the organization's kill switch
    is on they stay held; turning it off releases them (``sms.services.controls.held_jobs_release``)."""
    # Imported here: sms.services.controls imports this module (may_launch).
    from sms.services.controls import held_jobs_release

    _require_launcher(actor, campaign.organization)
    now = timezone.now()
    target = CampaignStatus.SCHEDULED if campaign.start_at and campaign.start_at > now else CampaignStatus.RUNNING
    with transaction.atomic():
        resumed = _move(campaign, {CampaignStatus.PAUSED}, target, actor)
        held_jobs_release(organization=resumed.organization, campaign=resumed)
    return resumed


def campaign_cancel(*, campaign: Campaign, actor: User | None = None) -> Campaign:
    _require_launcher(actor, campaign.organization)
    allowed = {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED}
    return _move(campaign, allowed, CampaignStatus.CANCELED, actor)


def _move(campaign: Campaign, sources: Collection[str], target: str, actor: User | None) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.for_org(campaign.organization_id).select_for_update().get(pk=campaign.pk)
        if locked.status == target:
            return locked
        if locked.status not in sources:
            raise ConflictError(f"A {locked.get_status_display().lower()} campaign cannot be {target.lower()}.")
        locked.status = target
        fields = ["status", "updated_at"]
        if target == CampaignStatus.CANCELED:
            locked.completed_at = timezone.now()
            fields.append("completed_at")
            # What has not gone yet never will; a job being sent right now finishes.
            SendJob.objects.for_org(locked.organization_id).filter(campaign=locked, state=JobState.QUEUED).update(
                state=JobState.SKIPPED, reason="canceled", deferred_until=None, updated_at=timezone.now()
            )
        locked.save(update_fields=fields)
        audit_record(action=f"campaign.{target.lower()}", organization=locked.organization, actor=actor, target=locked)
    return locked
