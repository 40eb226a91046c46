"""A campaign to 100,000 contacts: the launch (one send job per contact, next to ``COPY`` of the same rows, the floor)
and the dispatch of every one of those jobs through the seven gates to a provider that answers at once.

One organization (slug ``bench-sms``) with 105,000 consenting contacts: 100,000 tagged ``big`` and 5,000 tagged
``small``. Its zone is chosen when the benchmark runs so that it is early afternoon there (quiet hours never hold a
message), its rates and warm-up caps are far above what one run sends, and it has no budget cap: every gate is
evaluated for every job, and every job passes. Two templates take turns, one with a ``{link}``, so half the messages
get a short link. Each run starts from a clean slate (the organization and everything it owns are deleted first).

Rows:
- launch: ``campaign_launch`` of the ``big`` campaign (100,000 jobs created by one INSERT … SELECT), against COPY of
  the same 100,000 ``sms_sendjob`` rows into a scratch table like it (columns, defaults, checks, indexes and the
  deferred foreign keys), committed, the median of three. Target: within 5x.
- dispatch: messages per second of ``dispatch()`` over those 100,000 jobs, against the 2,000 per second the issue
  asks of this 2-core machine. Target: at least that (ratio >= 1).
- queries per message of that dispatch, against the same over the 5,000-contact ``small`` campaign before it (the
  floor): constant, so within 1.1x.
"""

from __future__ import annotations

import itertools
import statistics
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

from bench.benchmarks.invoice_generation import QueryCounter
from bench.core import Context, Result

SLUG = "bench-sms"
BIG = 100_000
SMALL = 5_000
QUICK_BIG = 20_000
QUICK_SMALL = 1_000
LAUNCH_RATIO = 5.0
MESSAGES_PER_SECOND = 2_000.0
QUERY_GROWTH = 1.1
SCRATCH = "bench_floor_sendjob"


class InstantProvider:
    """Answers every send at once with a new sid, as a provider with no network would."""

    name = "instant"

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._run = uuid.uuid4().hex[:8]
        self.sent = 0

    def send(self, message: Any) -> Any:
        from sms.providers.base import MessageState

        self.sent += 1
        return MessageState(
            sid=f"SM{self._run}{next(self._numbers):024d}", status="queued", to=message.to, from_=message.from_,
            body=message.body,
        )  # fmt: skip

    def fetch(self, sid: str) -> Any:  # pragma: no cover - not used by a clean run
        raise NotImplementedError

    def find(self, **kwargs: Any) -> None:  # pragma: no cover - not used by a clean run
        return None


def _afternoon_zone() -> str:
    """An ``Etc/GMT`` zone where it is 14:00 to 15:00 now (POSIX zone names have the sign reversed)."""
    offset = 14 - datetime.now(UTC).hour
    if offset > 14:
        offset -= 24
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def clean() -> None:
    """Delete the benchmark organization and everything it owns, in foreign key order, with raw deletes."""
    from django.db import connection, transaction

    from tenancy.models import Organization

    ids = list(Organization.objects.filter(slug=SLUG).values_list("pk", flat=True))
    if not ids:
        return
    inside = "organization_id = ANY(%s)"
    campaigns = f"SELECT id FROM sms_campaign WHERE {inside}"  # noqa: S608 - constant fragments
    numbers = f"SELECT id::text FROM sms_sendingnumber WHERE {inside}"  # noqa: S608
    statements = [
        f"DELETE FROM events_delivery WHERE event_id IN (SELECT id FROM events_event WHERE {inside})",  # noqa: S608
        f"DELETE FROM events_event WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_click WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_shortlink WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_inboundmessage WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_sendjob WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_campaigngatecount WHERE campaign_id IN ({campaigns})",  # noqa: S608
        f"DELETE FROM sms_campaigntemplate WHERE campaign_id IN ({campaigns})",  # noqa: S608
        f"DELETE FROM sms_campaignnumber WHERE campaign_id IN ({campaigns})",  # noqa: S608
        f"DELETE FROM sms_campaign WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_template WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_sendcounter WHERE split_part(key, ':', 2) IN ({numbers}) "  # noqa: S608
        "OR split_part(key, ':', 2) = ANY(%s::text[])",
        f"DELETE FROM sms_sendingnumber WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_consentevent WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_donotcontact WHERE {inside}",  # noqa: S608
        f"DELETE FROM sms_contact WHERE {inside}",  # noqa: S608
        "DELETE FROM sms_smssettings WHERE organization_id = ANY(%s)",
        f"DELETE FROM billing_smscreditentry WHERE {inside}",  # noqa: S608
        f"DELETE FROM tenancy_auditevent WHERE {inside}",  # noqa: S608
        "DELETE FROM tenancy_organization WHERE id = ANY(%s)",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            params: list[Any] = [ids] * statement.count("= ANY(%s)")
            if "%s::text[]" in statement:
                params.append([str(pk) for pk in ids])
            cursor.execute(statement, params)


def populate(big: int, small: int) -> Any:
    """The organization, its settings and numbers, and its contacts (COPY); returns the organization."""
    from sms.models import Contact, SendingNumber, SmsSettings
    from tenancy.models import Organization
    from tenancy.recordset import insert_rows

    began = time.perf_counter()
    organization = Organization.objects.create(
        slug=SLUG, name="Bench messaging", tier="PREMIUM", currency="AUD", timezone=_afternoon_zone()
    )
    SmsSettings.objects.create(
        organization=organization, business_name="Bench Co", messages_per_minute=100_000_000, suppression_days=90
    )
    for index in range(4):
        SendingNumber.objects.create(
            organization=organization,
            phone_e164=f"+6149157{index:04d}",
            warmup_start=date(2026, 1, 1),
            warmup_curve="1000000",
            per_second=30_000,
        )
    now = datetime.now(UTC)
    rows = []
    for index in range(big + small):
        tags = ",big," if index < big else ",small,"
        phone = f"+61412{index:06d}"
        rows.append([uuid.uuid4(), organization.pk, phone, f"Person{index}", "Bench", tags, now, "bench", now, now])
    insert_rows(
        Contact,
        ["id", "organization", "phone_e164", "first_name", "last_name", "tags", "consent_at", "consent_source",
         "created_at", "updated_at"],
        rows,
    )  # fmt: skip
    print(f"    {big + small:,} contacts ready in {time.perf_counter() - began:.1f}s", flush=True)
    return organization


def campaign(organization: Any, tag: str) -> Any:
    from sms.models import SendingNumber
    from sms.services.campaigns import campaign_create, template_create

    templates = [
        template_create(organization=organization, name=f"{tag} offer", body="Hi {first_name}, 20% off this week."),
        template_create(organization=organization, name=f"{tag} link", body="Hi {first_name}, see {link} for more."),
    ]
    numbers = SendingNumber.objects.filter(organization=organization)
    return campaign_create(
        organization=organization,
        name=f"Bench {tag}",
        template_ids=[template.pk for template in templates],
        number_ids=[number.pk for number in numbers],
        audience_tags=[tag],
        link_url="https://bench.example/offer",
    )


def launch(campaign_: Any) -> tuple[int, float]:
    from sms.services.campaigns import campaign_launch

    began = time.perf_counter()
    created = campaign_launch(campaign=campaign_)
    return created, time.perf_counter() - began


def dispatch_all() -> tuple[int, float, int]:
    from django.conf import settings
    from django.db import connection

    from sms.services.dispatch import dispatch

    settings.SMS_SANDBOX_CALLBACKS = False
    provider = InstantProvider()
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        began = time.perf_counter()
        outcome = dispatch(provider=provider)
        elapsed = time.perf_counter() - began
    assert outcome.sent == provider.sent, (outcome, provider.sent)
    return outcome.sent, elapsed, counter.queries


def floor(campaign_id: Any, rounds: int) -> tuple[float, int]:
    """Seconds to COPY the campaign's send job rows into an empty scratch table like sms_sendjob and commit (the
    median of ``rounds``), and the number of rows."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM sms_sendjob WHERE campaign_id = %s", [campaign_id])
        columns = [column.name for column in cursor.description]
        rows = cursor.fetchall()
    timings = []
    deferred = "DEFERRABLE INITIALLY DEFERRED"
    for _ in range(rounds):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
            cursor.execute(f"CREATE TABLE {SCRATCH} (LIKE sms_sendjob INCLUDING ALL)")
            cursor.execute(
                f"ALTER TABLE {SCRATCH} ADD FOREIGN KEY (organization_id) REFERENCES tenancy_organization (id) "
                f"{deferred}, ADD FOREIGN KEY (campaign_id) REFERENCES sms_campaign (id) {deferred}, "
                f"ADD FOREIGN KEY (contact_id) REFERENCES sms_contact (id) {deferred}"
            )
        began = time.perf_counter()
        sql = f"COPY {SCRATCH} ({', '.join(columns)}) FROM STDIN"
        with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        timings.append(time.perf_counter() - began)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
    return statistics.median(timings), len(rows)


def run(ctx: Context) -> list[Result]:
    ctx.setup_django()
    from django.db import connection

    from sms.models import JobState, SendJob

    big = QUICK_BIG if ctx.quick else BIG
    small = QUICK_SMALL if ctx.quick else SMALL
    clean()
    organization = populate(big, small)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sms_contact")
    small_campaign = campaign(organization, "small")
    small_created, _ = launch(small_campaign)
    small_sent, small_seconds, small_queries = dispatch_all()
    assert small_created == small_sent == small, (small_created, small_sent, small)
    big_campaign = campaign(organization, "big")
    created, launch_seconds = launch(big_campaign)
    assert created == big, (created, big)
    copy_seconds, rows = floor(big_campaign.pk, rounds=3)
    assert rows == big
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sms_sendjob")
    sent, seconds, queries = dispatch_all()
    assert sent == big, (sent, big)
    rate = sent / seconds
    per_message, small_per_message = queries / sent, small_queries / small_sent
    cost = SendJob.objects.filter(campaign=big_campaign, state=JobState.SENT).count()
    return [
        Result(
            name=f"campaign_launch, {big:,} contacts",
            value=launch_seconds,
            unit="s",
            floor=copy_seconds,
            target=LAUNCH_RATIO,
            higher_is_better=False,
            note=f"{created:,} send jobs, {created / launch_seconds:,.0f} jobs/s; floor: COPY of the same {rows:,} "
            f"sms_sendjob rows into a scratch table like it, committed (median of 3), "
            f"{rows / copy_seconds:,.0f} rows/s",
        ),
        Result(
            name=f"dispatch, {big:,} messages",
            value=rate,
            unit="messages/s",
            floor=MESSAGES_PER_SECOND,
            target=1.0,
            note=f"{sent:,} sent ({cost:,} SENT) in {seconds:.1f}s through the seven gates to a provider that answers "
            f"at once; {queries} queries; floor: the 2,000 messages/s asked of this machine",
        ),
        Result(
            name="dispatch, queries per message",
            value=per_message,
            unit="queries",
            floor=small_per_message,
            target=QUERY_GROWTH,
            higher_is_better=False,
            note=f"{queries} queries for {sent:,} messages; floor: {small_queries} queries for {small_sent:,} messages "
            f"of a {small:,}-contact campaign ({small_sent / small_seconds:,.0f} messages/s)",
        ),
    ]
