"""Read-only questions about messaging that the API and the portal ask: a campaign's statistics and its CSV export,
an organization's SMS budget, and what each sending number may still send today.

Every function here reads; none writes (``budget_view`` may create the organization's default settings row, through
``sms.counters.budget``). Query counts do not grow with the number of jobs, clicks or numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from sms import counters
from sms.gates import ORDER, parse_curve, sending_day, warmup_cap
from sms.models import (
    Campaign,
    CampaignGateCount,
    Click,
    InboundKind,
    InboundMessage,
    JobState,
    SendCounter,
    SendingNumber,
    SendJob,
)
from tenancy.models import Organization
from tenancy.spreadsheets import neutralise  # the CSV cells of every export: see there

CENT = Decimal("0.01")
GATES: tuple[str, ...] = tuple(gate.value for gate in ORDER)
STATES: tuple[str, ...] = tuple(JobState.values)
CSV_COLUMNS = (
    "phone",
    "name",
    "state",
    "reason",
    "number",
    "segments",
    "cost",
    "sent_at",
    "delivered_at",
    "error_code",
    "clicks_human",
    "clicks_all",
)


def money(amount: Decimal | None) -> str:
    """``amount`` rounded half-up to the cent, as a string with two decimals (``"0.00"`` for None)."""
    return str((amount or Decimal("0")).quantize(CENT, rounding=ROUND_HALF_UP))


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


# -- a campaign's statistics -------------------------------------------------------------------------------------


def campaign_stats(campaign: Campaign) -> dict[str, Any]:
    """A campaign's results, in five queries whatever its size (four when ``campaign.organization`` is loaded)::

        {
            "counts": {"QUEUED": 0, "SENDING": 0, "SENT": 2, "DELIVERED": 7, "FAILED": 1, "SKIPPED": 3},
            "gates": {"kill_switch": 0, "budget_cap": 0, "dnc": 2, "no_consent": 0, "suppression": 1,
                      "quiet_hours": 12, "rate_limit": 0, "warmup": 0},
            "cost": "4.73",  "currency": "AUD",
            "delivery_rate": 0.7,  "ctr_human": 0.2857,  "ctr_all": 0.4286,  "opt_outs": 1,  "replies": 3,
        }

    - ``counts``: the campaign's send jobs per state; every state is present, 0 when none is in it.
    - ``gates``: how many times each gate held or skipped one of its jobs (``CampaignGateCount``; a job deferred
      three times by quiet hours counts three). Every gate of ``sms.gates.ORDER`` is present, in that order; a gate
      name recorded that is not one of them is added after them.
    - ``cost``: what its messages cost, in the organization's ``currency``. The jobs' costs are summed exactly (four
      decimals, as the budget counts them) and the total is rounded half-up to the cent once: a message costs a
      fraction of a cent more often than not, and rounding each one would lose up to half a cent a message.
    - ``delivery_rate``: DELIVERED / (SENT + DELIVERED + FAILED), the share of the messages handed to the carrier
      that were confirmed delivered; None while none has been.
    - ``ctr_human``: the jobs whose short link a person clicked (at least one click not flagged as a bot) divided by
      DELIVERED; ``ctr_all``: the jobs whose link got any click, bots included, divided by DELIVERED. None while
      nothing is delivered. A click counts even when the carrier never confirmed the delivery, so with missing
      receipts a rate can exceed 1.
    - ``opt_outs``: opt-out replies attributed to this campaign; ``replies``: the other replies attributed to it
      (keywords such as HELP are neither).

    Rates are floats rounded to four decimals (0.2857 is 28.57 %).
    """
    organization_id = campaign.organization_id
    jobs = SendJob.objects.for_org(organization_id).filter(campaign=campaign)
    totals = jobs.aggregate(
        cost=Sum("cost"), **{f"n_{state.lower()}": Count("pk", filter=Q(state=state)) for state in STATES}
    )
    counts = {state: int(totals[f"n_{state.lower()}"] or 0) for state in STATES}

    recorded = dict(CampaignGateCount.objects.filter(campaign=campaign).values_list("gate", "count"))
    gates = {gate: int(recorded.pop(gate, 0)) for gate in GATES}
    gates.update({gate: int(count) for gate, count in sorted(recorded.items())})

    clicked = (
        Click.objects.for_org(organization_id)
        .filter(link__job__campaign=campaign)
        .aggregate(
            any=Count("link__job", distinct=True), human=Count("link__job", distinct=True, filter=Q(is_bot=False))
        )
    )
    answered = (
        InboundMessage.objects.for_org(organization_id)
        .filter(campaign=campaign)
        .aggregate(
            opt_outs=Count("pk", filter=Q(kind=InboundKind.OPT_OUT)),
            replies=Count("pk", filter=Q(kind=InboundKind.REPLY)),
        )
    )
    delivered = counts[JobState.DELIVERED]
    handed_over = counts[JobState.SENT] + delivered + counts[JobState.FAILED]
    return {
        "counts": counts,
        "gates": gates,
        "cost": money(totals["cost"]),
        "currency": campaign.organization.currency,
        "delivery_rate": _ratio(delivered, handed_over),
        "ctr_human": _ratio(int(clicked["human"] or 0), delivered),
        "ctr_all": _ratio(int(clicked["any"] or 0), delivered),
        "opt_outs": int(answered["opt_outs"] or 0),
        "replies": int(answered["replies"] or 0),
    }


# -- clicks per job ----------------------------------------------------------------------------------------------


def with_clicks(jobs: QuerySet[SendJob]) -> QuerySet[SendJob]:
    """``jobs`` annotated with ``clicks_human`` (clicks on the job's short link not flagged as bots) and
    ``clicks_all``, as two correlated subqueries: no GROUP BY over the jobs' columns, no query per job."""

    def clicks(only_people: bool) -> Coalesce:
        found = Click.objects.filter(organization_id=OuterRef("organization_id"), link__job_id=OuterRef("pk"))
        if only_people:
            found = found.filter(is_bot=False)
        counted = found.order_by().values("link_id").annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))

    return jobs.annotate(clicks_human=clicks(True), clicks_all=clicks(False))


# -- the CSV export ----------------------------------------------------------------------------------------------


class _Echo:
    """A file-like object whose ``write`` hands back the line, so ``csv.writer`` can build one line at a time."""

    def write(self, value: str) -> str:
        return value


def _when(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat() if value is not None else ""


def campaign_csv(campaign: Campaign, chunk_size: int = 2000) -> Iterator[str]:
    """The campaign's send jobs as CSV, one line (``\\r\\n``-terminated) per item, the header first:

    ``phone, name, state, reason, number, segments, cost, sent_at, delivered_at, error_code, clicks_human,
    clicks_all``

    One row per job, in the campaign's order (``position``). ``number`` is the sending number it went from (empty
    until one is chosen); ``cost`` is the job's exact cost with four decimals (a message usually costs a fraction of
    a cent), in the organization's currency; times are ISO 8601 in the organization's zone, with their offset, empty
    when not reached; ``clicks_human`` counts clicks on the job's short link by people, ``clicks_all`` every click.
    Every cell goes through :func:`neutralise`, so a contact named ``=HYPERLINK(...)`` stays text.

    A generator reading the jobs ``chunk_size`` at a time (one query per chunk): hand it to a
    ``StreamingHttpResponse`` for campaigns of any size.
    """
    organization = campaign.organization
    zone = ZoneInfo(organization.timezone)
    jobs = with_clicks(
        SendJob.objects.for_org(organization)
        .filter(campaign=campaign)
        .select_related("contact", "number")
        .order_by("position", "pk")
    )
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    job: Any  # a SendJob with the two click counts annotated
    for job in jobs.iterator(chunk_size=chunk_size):
        row = (
            job.contact.phone_e164,
            job.contact.name,
            job.state,
            job.reason,
            job.number.phone_e164 if job.number is not None else "",
            job.segments,
            job.cost,
            _when(job.sent_at, zone),
            _when(job.delivered_at, zone),
            job.error_code,
            job.clicks_human,
            job.clicks_all,
        )
        yield writer.writerow([neutralise(cell) for cell in row])


REPLY_CSV_COLUMNS = ("received_at", "phone", "name", "campaign", "body")


def replies_of(organization: Organization, campaign: Campaign | None = None) -> QuerySet[InboundMessage]:
    """The organization's SMS replies (keywords left out), or those to ``campaign``, newest first, with their contact
    and campaign."""
    replies = (
        InboundMessage.objects.for_org(organization)
        .filter(kind=InboundKind.REPLY)
        .select_related("contact", "campaign")
        .order_by("-received_at", "-id")
    )
    return replies if campaign is None else replies.filter(campaign=campaign)


def replies_csv(organization: Organization, campaign: Campaign | None = None, chunk_size: int = 2000) -> Iterator[str]:
    """The organization's SMS replies (keywords left out), or those to ``campaign``, as CSV, newest first, the
    header first: ``received_at, phone, name, campaign, body``. ``received_at`` is ISO 8601 in the organization's
    zone; ``name`` is empty when the number is no contact's, ``campaign`` when the reply came to none. Every cell
    goes through :func:`neutralise`. A generator reading ``chunk_size`` replies at a time, for a
    ``StreamingHttpResponse``."""
    zone = ZoneInfo(organization.timezone)
    replies = replies_of(organization, campaign)
    writer = csv.writer(_Echo())
    yield writer.writerow(REPLY_CSV_COLUMNS)
    for reply in replies.iterator(chunk_size=chunk_size):
        row = (
            _when(reply.received_at, zone),
            reply.from_e164,
            reply.contact.name if reply.contact is not None else "",
            reply.campaign.name if reply.campaign is not None else "",
            reply.body,
        )
        yield writer.writerow([neutralise(cell) for cell in row])


# -- budget ------------------------------------------------------------------------------------------------------


def budget_view(organization: Organization, now: datetime) -> dict[str, Any]:
    """The organization's SMS spending at ``now`` (``sms.counters.budget``) as plain JSON-ready values::

        {"currency": "AUD", "spent_today": "12.40", "spent_this_month": "310.05", "daily_cap": "50.00",
         "monthly_cap": None, "credits": 1000, "alerts": ["day"]}

    Amounts are strings rounded half-up to the cent; a cap is None when there is none; ``credits`` are the message
    segments bought in packs that are spent before money; ``alerts`` names the caps (``day``, ``month``) at least
    80 % used. "Today" and "this month" are the organization's, in its time zone.
    """
    spending = counters.budget(organization, now)
    return {
        "currency": spending.currency,
        "spent_today": money(spending.spent_today),
        "spent_this_month": money(spending.spent_this_month),
        "daily_cap": money(spending.daily_cap) if spending.daily_cap is not None else None,
        "monthly_cap": money(spending.monthly_cap) if spending.monthly_cap is not None else None,
        "credits": spending.credits,
        "alerts": spending.alerts,
    }


# -- sending numbers today ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberToday:
    """A sending number's day in its organization's zone: its warm-up day (1 on ``warmup_start``, 0 or less before
    it), the most it may send that day (None when staff saved a curve that cannot be read), and what it has sent."""

    today: date
    warmup_day: int
    daily_cap: int | None
    sent_today: int


def numbers_today(numbers: Sequence[SendingNumber], now: datetime) -> dict[UUID, NumberToday]:
    """:class:`NumberToday` for each of ``numbers`` (their ``organization`` loaded, for its zone), by id, in one
    query for all of them: the ``day:<number>`` counters of each one's current local day."""
    windows = {number.pk: counters.day_window(now, number.organization.timezone) for number in numbers}
    sent: dict[tuple[str, datetime], int] = {}
    if numbers:
        rows: Iterable[tuple[str, datetime, int]] = SendCounter.objects.filter(
            key__in=[counters.day_key(number.pk) for number in numbers], window__in=set(windows.values())
        ).values_list("key", "window", "count")
        sent = {(key, window): count for key, window, count in rows}
    found = {}
    for number in numbers:
        today = now.astimezone(ZoneInfo(number.organization.timezone)).date()
        day = sending_day(number.warmup_start, today)
        try:
            cap: int | None = warmup_cap(day, parse_curve(number.warmup_curve))
        except ValueError:
            cap = None
        used = sent.get((counters.day_key(number.pk), windows[number.pk]), 0)
        found[number.pk] = NumberToday(today=today, warmup_day=day, daily_cap=cap, sent_today=used)
    return found
