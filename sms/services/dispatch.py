"""The dispatcher: takes due send jobs through the seven gates and hands the ones that pass to the SMS provider.

A run (:func:`dispatch`, started by Celery beat every few seconds) works an organization at a time:

1. **Gate** (one transaction). Lock the organization's ``SmsSettings`` row with ``SKIP LOCKED`` (another worker
   busy with the same organization means this one moves on), claim up to ``limit`` due QUEUED jobs with
   ``SKIP LOCKED``, read everything the gates need in a fixed number of queries (campaigns, templates, numbers,
   contacts, the DNC list, each contact's last campaign message, the counters, the credit balance), and decide each
   job with :func:`sms.gates.decide`. Jobs that pass become SENDING with a lease, their body, number, segments and
   cost; the others are SKIPPED or deferred with the gate's reason. The counters (spend per day and month, messages
   per minute, per number per second and per day) are written in the same transaction. Because every change to an
   organization's counters happens while its lock is held, a worker always reads exact values: caps are never
   exceeded, however many workers run.
2. **Send** (``sms.services.handover``), outside any transaction, one provider call per job.
3. **Record** the answers in small chunks: SENT with the provider's sid, or FAILED with the provider's error code
   when it refused the message. A retryable error (timeout, outage, rate limit) leaves the job SENDING: the provider
   may have accepted it. It is looked up (see below) after a wait that doubles with each failed attempt (2, 4, 8 …
   minutes), or after the wait the provider asked for in its ``Retry-After`` header when that is longer, at most
   ``RETRY_MOST`` either way, so an outage or a rate limit is not met with the same pace of retries.

   When the provider refuses for a while (HTTP 429, or a retryable refusal naming a wait), the rest of the batch is
   not sent: those jobs go back to QUEUED, due after the same wait (reason ``provider_wait``), as if they had never
   been claimed: their attempt, counters, credits and short links are given back. The run then sends nothing more,
   to any organization: they all share the provider's account.

A job found SENDING after its lease ran out (the worker died, or the provider's answer was lost) is **reconciled**
first: the provider is asked whether it already has that exact message (``find``); if so the job becomes SENT with
that sid, and only if not is it queued again. No contact gets a message twice.

Money: a message costs its segments times the destination's per-segment price (``SmsPrice``, longest prefix).
SMS credits bought in packs pay for segments first; only what credits do not cover is spent from the daily and
monthly budgets, and the ``budget_cap`` gate compares that amount with what is left. A message the provider refuses
outright still counts against the day's budget and rates (the provider was asked).
"""

from __future__ import annotations

import logging
import secrets
import time as clock
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.models import SmsCreditEntry
from sms import counters
from sms.gates import Action, Check, decide, sending_day, warmup_cap
from sms.messages import compose
from sms.models import (
    Campaign,
    CampaignNumber,
    CampaignStatus,
    CampaignTemplate,
    Contact,
    DoNotContact,
    JobState,
    SendCounter,
    SendJob,
    ShortLink,
    SmsSettings,
)
from sms.providers import get_provider
from sms.providers.base import MessageProvider, OutboundMessage
from sms.sandbox_callbacks import status_callback_url
from sms.segments import count as segment_count
from sms.services.handover import Batch, Number, Send, send_batch
from sms.services.lookups import Prices, last_messages, warmup_curve, zone_or_none
from sms.services.settle import (
    JOB_FIELDS,
    Outcome,
    complete_finished,
    provider_pause,
    provider_paused,
    reconcile,
)
from sms.services.tallies import add_gate_hits, add_to_counters, budget_alert
from tenancy.models import Organization
from tenancy.recordset import among, insert_rows, update_rows

logger = logging.getLogger(__name__)

__all__ = ["BATCH", "Outcome", "Prices", "dispatch", "reconcile"]

BATCH = 500  # jobs claimed per organization per transaction
LEASE = timedelta(minutes=10)  # how long a SENDING job is left to its worker before it is reconciled
HOLD = timedelta(minutes=1)  # a job held by the kill switch or a paused campaign is looked at again after this
NO_PRICE = "no_price"  # reason of a job whose destination has no price (staff must add one)
CANCELED = "canceled"  # reason of a job whose campaign was canceled or completed before it went


@dataclass
class _Campaign:
    status: str
    link_url: str
    start_at: datetime | None
    templates: list[str] = field(default_factory=list)
    numbers: list[Number] = field(default_factory=list)


def dispatch(
    *,
    provider: MessageProvider | None = None,
    limit: int = BATCH,
    seconds: float | None = None,
) -> Outcome:
    """Reconcile stale SENDING jobs, start scheduled campaigns, then gate and send due jobs, organization by
    organization, until nothing is due now or ``seconds`` have passed (``None``: until nothing is due). While the
    provider has asked to be left alone (``provider_paused``), only the scheduled campaigns start; a wait the provider
    asks for during the run is kept for every later run (``provider_pause``)."""
    provider = provider or get_provider()
    # While the provider has asked to be left alone (a 429 met by any run), it is asked nothing.
    kept = provider_paused(timezone.now())
    outcome = Outcome(paused_until=kept)
    if kept is None:
        reconcile(provider=provider, outcome=outcome)
    _start_scheduled(timezone.now())
    prices = Prices()
    deadline = None if seconds is None else clock.monotonic() + seconds
    while outcome.paused_until is None:
        progressed = False
        for organization_id in _due_organizations(timezone.now()):
            while outcome.paused_until is None:
                batch = _gate(organization_id, timezone.now(), limit, prices, outcome)
                if batch is None:
                    break
                progressed = True
                send_batch(batch, provider, outcome)
                if batch.claimed < limit or (deadline is not None and clock.monotonic() > deadline):
                    break
            if outcome.paused_until is not None or (deadline is not None and clock.monotonic() > deadline):
                break
        if outcome.paused_until is not None or (deadline is not None and clock.monotonic() > deadline):
            break
        if not progressed and (deadline is None or not _wait_for_next(deadline)):
            break
    if outcome.paused_until is not None and outcome.paused_until != kept:
        provider_pause(outcome.paused_until, timezone.now())
    outcome.completed += complete_finished()
    return outcome


def _wait_for_next(deadline: float) -> bool:
    """Within a run that has time left, sleep until the next held job falls due when that is before the deadline
    (a rate limit's next second or minute); False when nothing falls due in time."""
    now = timezone.now()
    soonest = (
        SendJob.objects.filter(state=JobState.QUEUED, deferred_until__gt=now)
        .order_by("deferred_until")
        .values_list("deferred_until", flat=True)
        .first()
    )
    if soonest is None:
        return False
    wait = (soonest - now).total_seconds()
    if clock.monotonic() + wait > deadline:
        return False
    clock.sleep(wait)
    return True


def _due_organizations(now: datetime) -> list[uuid.UUID]:
    due = (
        SendJob.objects.filter(state=JobState.QUEUED)
        .filter(Q(deferred_until__isnull=True) | Q(deferred_until__lte=now))
        .order_by()
        .values_list("organization_id", flat=True)
        .distinct()
    )
    found = list(due)
    if found:
        SmsSettings.objects.bulk_create(
            [SmsSettings(organization_id=pk) for pk in found], ignore_conflicts=True
        )  # every organization sending has settings to lock
    return found


def _start_scheduled(now: datetime) -> None:
    Campaign.objects.filter(status=CampaignStatus.SCHEDULED, start_at__lte=now).update(
        status=CampaignStatus.RUNNING, updated_at=now
    )


def _gate(organization_id: uuid.UUID, now: datetime, limit: int, prices: Prices, outcome: Outcome) -> Batch | None:
    """Claim and decide up to ``limit`` of the organization's due jobs in one transaction; None when another worker
    holds the organization or nothing is due."""
    with transaction.atomic():
        locked = (
            SmsSettings.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("organization")
            .filter(organization_id=organization_id)
            .first()
        )
        if locked is None:
            return None
        jobs = list(
            SendJob.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(organization_id=organization_id, state=JobState.QUEUED)
            .filter(Q(deferred_until__isnull=True) | Q(deferred_until__lte=now))
            .order_by("id")
            .values_list("id", "campaign_id", "contact_id", "position", "attempts")[:limit]
        )
        if not jobs:
            return None
        planner = _Planner(locked, now, prices)
        planner.load(jobs)
        for job in jobs:
            planner.decide(*job)
        planner.write()
    outcome.skipped += planner.skipped
    outcome.held += planner.held
    outcome.gates.update({gate: hits for (_, gate), hits in planner.gate_hits.items()})
    return Batch(
        organization_id=organization_id,
        claimed=len(jobs),
        sends=planner.sends,
        lease_until=now + LEASE,
        windows=planner.keys,
    )


class _Planner:
    """Decides one claimed batch of an organization's jobs and writes the result: job rows, counters, gate counts,
    short links and credits used. Reads and writes a fixed number of queries whatever the batch size."""

    def __init__(self, sms_settings: SmsSettings, now: datetime, prices: Prices) -> None:
        self.settings = sms_settings
        self.organization: Organization = sms_settings.organization
        self.now = now
        self.prices = prices
        self.zone = zone_or_none(self.organization.timezone) or settings.TIME_ZONE
        self.sender = sms_settings.business_name or self.organization.display_name
        self.rows: list[list[object]] = []
        self.sends: list[Send] = []
        self.links: list[list[object]] = []
        self.gate_hits: Counter[tuple[uuid.UUID, str]] = Counter()
        self.skipped = 0
        self.held = 0
        self.credits_used = 0
        self.spent = Decimal("0")
        organization_id = self.organization.pk
        self.spend_day_key = counters.spend_day_key(organization_id)
        self.spend_month_key = counters.spend_month_key(organization_id)
        self.rate_key = counters.rate_key(organization_id)
        self.callback_url = status_callback_url()

    # --- reading ---------------------------------------------------------------------------------------------------

    def load(self, jobs: Sequence[tuple[Any, ...]]) -> None:
        organization_id = self.organization.pk
        campaign_ids = {job[1] for job in jobs}
        contact_ids = {job[2] for job in jobs}
        today = self.now.astimezone(ZoneInfo(self.zone)).date()

        self.campaigns: dict[uuid.UUID, _Campaign] = {
            pk: _Campaign(status=status, link_url=link, start_at=start)
            for pk, status, link, start in Campaign.objects.for_org(organization_id)
            .filter(pk__in=campaign_ids)
            .values_list("id", "status", "link_url", "start_at")
        }
        templates = CampaignTemplate.objects.filter(campaign_id__in=campaign_ids).order_by(
            "campaign_id", "position", "id"
        )
        for campaign_id, body in templates.values_list("campaign_id", "template__body"):
            self.campaigns[campaign_id].templates.append(body)
        numbers = CampaignNumber.objects.filter(
            campaign_id__in=campaign_ids, number__active=True, number__organization_id=organization_id
        ).order_by("number__phone_e164")
        for campaign_id, pk, phone, per_second, start, curve in numbers.values_list(
            "campaign_id",
            "number_id",
            "number__phone_e164",
            "number__per_second",
            "number__warmup_start",
            "number__warmup_curve",
        ):
            cap = warmup_cap(sending_day(start, today), warmup_curve(curve))
            self.campaigns[campaign_id].numbers.append(
                Number(pk, phone, per_second, cap, counters.day_key(pk), counters.second_key(pk))
            )

        self.contacts = {
            row[0]: row
            for row in Contact.objects.for_org(organization_id)
            .filter(id__in=among(Contact._meta.get_field("id"), contact_ids))
            .values_list("id", "phone_e164", "first_name", "last_name", "timezone", "consent_at")
        }
        phones = [row[1] for row in self.contacts.values()]
        self.dnc = set(
            DoNotContact.objects.for_org(organization_id)
            .filter(phone_e164__in=among(DoNotContact._meta.get_field("phone_e164"), phones))
            .values_list("phone_e164", flat=True)
        )
        self.last_sent = last_messages(organization_id, contact_ids)

        self.day_window = counters.day_window(self.now, self.zone)
        self.month_window = counters.month_window(self.now, self.zone)
        self.minute_window = counters.minute_window(self.now)
        self.second_window = counters.second_window(self.now)
        numbers_all = {number.id for campaign in self.campaigns.values() for number in campaign.numbers}
        self.keys = {
            self.spend_day_key: self.day_window,
            self.spend_month_key: self.month_window,
            self.rate_key: self.minute_window,
            **{counters.second_key(pk): self.second_window for pk in numbers_all},
            **{counters.day_key(pk): self.day_window for pk in numbers_all},
        }
        match = Q(pk__in=[])
        for key, window in self.keys.items():
            match |= Q(key=key, window=window)
        rows = SendCounter.objects.filter(match).values_list("key", "count", "amount")
        found = {key: (n, amount) for key, n, amount in rows}
        self.counts: dict[str, int] = {key: found.get(key, (0, Decimal("0")))[0] for key in self.keys}
        self.amounts: dict[str, Decimal] = {key: found.get(key, (0, Decimal("0")))[1] for key in self.keys}
        self.start_counts = dict(self.counts)
        self.start_amounts = dict(self.amounts)
        balance = SmsCreditEntry.objects.for_org(organization_id).aggregate(total=Sum("credits"))["total"]
        self.credits = max(0, int(balance or 0))
        self.sent_contacts: set[uuid.UUID] = set()

    # --- deciding --------------------------------------------------------------------------------------------------

    def decide(self, job_id: int, campaign_id: uuid.UUID, contact_id: uuid.UUID, position: int, attempts: int) -> None:
        campaign = self.campaigns[campaign_id]
        contact = self.contacts[contact_id]
        _, phone, first_name, last_name, contact_zone, consent_at = contact
        if campaign.status in (CampaignStatus.CANCELED, CampaignStatus.COMPLETED, CampaignStatus.DRAFT):
            return self._skip(job_id, campaign_id, CANCELED, count=False)
        if campaign.status == CampaignStatus.SCHEDULED and campaign.start_at and campaign.start_at > self.now:
            return self._hold(job_id, campaign_id, "", campaign.start_at, attempts, count=False)
        price = self.prices.of(phone)
        if price is None or not campaign.templates:
            logger.warning("sms job %s: no price for %s or no template; held", job_id, phone[:4])
            return self._hold(job_id, campaign_id, NO_PRICE, self.now + HOLD, attempts, count=False)

        template = campaign.templates[position % len(campaign.templates)]
        token = _token() if "{link}" in template else ""
        link = f"https://{settings.SMS_SHORT_DOMAIN}/s/{token}" if token else ""
        body = compose(template, {"first_name": first_name, "last_name": last_name, "link": link}, self.sender)
        parts = segment_count(body).parts
        covered = min(parts, self.credits)
        charge = price * (parts - covered)

        organization_id = self.organization.pk
        day_key, month_key, rate_key = self.spend_day_key, self.spend_month_key, self.rate_key
        counts = self.counts
        usable = [n for n in campaign.numbers if counts[n.day_key] < n.cap]
        ready = [n for n in usable if counts[n.second_key] < n.per_second]
        rate_wait: timedelta | None = None
        if self.counts[rate_key] >= self.settings.messages_per_minute:
            rate_wait = counters.next_minute(self.now) - self.now
        elif usable and not ready:
            rate_wait = counters.next_second(self.now) - self.now
        last = self.now if contact_id in self.sent_contacts else self.last_sent.get(contact_id)

        verdict = decide(
            Check(
                now=self.now,
                organization_zone=self.zone,
                contact_zone=zone_or_none(contact_zone),
                kill_switch=self.settings.kill_switch,
                paused=campaign.status == CampaignStatus.PAUSED,
                cost=charge,
                spent_today=self.amounts[day_key],
                spent_this_month=self.amounts[month_key],
                daily_cap=self.settings.daily_budget,
                monthly_cap=self.settings.monthly_budget,
                on_dnc=phone in self.dnc,
                has_consent=consent_at is not None,
                last_campaign_message_at=last,
                suppression_days=self.settings.suppression_days,
                rate_wait=rate_wait,
                warmup_full=not usable,
            )
        )
        if verdict.action == Action.SKIP:
            return self._skip(job_id, campaign_id, str(verdict.gate))
        if verdict.action != Action.SEND:
            until = verdict.until or self.now + HOLD
            return self._hold(job_id, campaign_id, str(verdict.gate), until, attempts)

        number = max(ready, key=lambda n: n.cap - counts[n.day_key])
        for key in (rate_key, number.second_key, number.day_key):
            counts[key] += 1
        self.amounts[day_key] += charge
        self.amounts[month_key] += charge
        self.spent += charge
        self.credits -= covered
        self.credits_used += covered
        self.sent_contacts.add(contact_id)
        cost = price * parts
        self.rows.append([job_id, JobState.SENDING, "", None, self.now + LEASE, number.id, body, parts, cost, self.now,
                          attempts + 1])  # fmt: skip
        message = OutboundMessage(phone, number.phone, body, self.callback_url)
        self.sends.append(Send(job_id, message, attempts + 1, number=number, charge=charge, credits=covered))
        if token:
            expires = self.now + timedelta(days=settings.SMS_SHORT_LINK_DAYS)
            self.links.append([organization_id, token, job_id, campaign.link_url, expires, self.now])

    def _skip(self, job_id: int, campaign_id: uuid.UUID, reason: str, *, count: bool = True) -> None:
        self.rows.append([job_id, JobState.SKIPPED, reason, None, None, None, "", 0, Decimal("0"), None, 0])
        self.skipped += 1
        if count:
            self.gate_hits[campaign_id, reason] += 1

    def _hold(
        self, job_id: int, campaign_id: uuid.UUID, reason: str, until: datetime, attempts: int, *, count: bool = True
    ) -> None:
        self.rows.append([job_id, JobState.QUEUED, reason, until, None, None, "", 0, Decimal("0"), None, attempts])
        self.held += 1
        if count:
            self.gate_hits[campaign_id, reason] += 1

    # --- writing ---------------------------------------------------------------------------------------------------

    def write(self) -> None:
        update_rows(SendJob, JOB_FIELDS, self.rows)
        insert_rows(ShortLink, ["organization", "token", "job", "url", "expires_at", "created_at"], self.links)
        self._write_counters()
        add_gate_hits(self.gate_hits)
        if self.credits_used:
            SmsCreditEntry.objects.create(
                organization=self.organization,
                credits=-self.credits_used,
                reason=f"{len(self.sends)} campaign messages",
                source_key=f"sms-dispatch:{uuid.uuid4()}",
            )
        if self.spent:
            today = self.amounts[self.spend_day_key]
            month = self.amounts[self.spend_month_key]
            budget_alert(self.settings, self.now, self.zone, today, month)

    def _write_counters(self) -> None:
        rows = []
        for key, window in self.keys.items():
            added = self.counts[key] - self.start_counts[key]
            amount = self.amounts[key] - self.start_amounts[key]
            if added or amount:
                rows.append((key, window, added, amount))
        add_to_counters(rows)


def _token() -> str:
    return secrets.token_urlsafe(7)  # 10 characters, 56 random bits
