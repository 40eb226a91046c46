"""The dispatcher: each gate alone and their order, warm-up and rates, money to the cent, credits, short links,
crash recovery without a second send, and several workers at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection

from billing.models import SmsCreditEntry
from events.models import Event
from sms.models import (
    CampaignGateCount,
    CampaignStatus,
    JobState,
    SendCounter,
    SendingNumber,
    SendJob,
    ShortLink,
    SmsSettings,
)
from sms.providers.base import MessageState, OutboundMessage, ProviderError
from sms.providers.sandbox import SandboxProvider
from sms.services import dispatch as dispatching
from sms.services.campaigns import campaign_cancel, campaign_create, campaign_launch, campaign_pause, template_create
from sms.services.contacts import consent_withdraw, contact_create, dnc_add
from sms.services.dispatch import Outcome, dispatch, reconcile
from tests.helpers import race

pytestmark = pytest.mark.django_db

# Monday 23 November 2026, 10:00 in Sydney (AEDT, UTC+11).
MORNING = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
PRICE = Decimal("0.0550")  # +61, from the starting prices


@pytest.fixture(autouse=True)
def _clean_sandbox():
    SandboxProvider.reset()
    yield
    SandboxProvider.reset()


@pytest.fixture
def frozen():
    with time_machine.travel(MORNING, tick=False) as traveller:
        yield traveller


@pytest.fixture
def number(acme):
    return SendingNumber.objects.create(
        organization=acme, phone_e164="+61491570001", warmup_start=date(2026, 1, 1), per_second=100
    )


def people(organization, count, *, start=1, **data):
    return [
        contact_create(
            organization=organization,
            phone=f"+614125{index:05d}",
            data={"first_name": f"P{index}", **data},
            consent={"source": "web form"},
        )
        for index in range(start, start + count)
    ]


def launch(organization, numbers, *, bodies=("Hi {first_name}, spring sale on now",), actor=None, **kwargs):
    templates = [
        template_create(organization=organization, name=f"T{index}", body=body) for index, body in enumerate(bodies)
    ]
    campaign = campaign_create(
        organization=organization,
        name="Spring",
        template_ids=[template.pk for template in templates],
        number_ids=[number.pk for number in numbers],
        **kwargs,
    )
    campaign_launch(campaign=campaign, actor=actor)
    return campaign


def jobs(campaign, order="contact__phone_e164"):
    return list(SendJob.objects.filter(campaign=campaign).order_by(order))


def queued(campaign):
    return [job for job in jobs(campaign) if job.state == JobState.QUEUED]


def run(**kwargs: Any) -> Outcome:
    return dispatch(provider=SandboxProvider(), **kwargs)


def test_each_consenting_contact_gets_one_message_priced_by_segment(acme, number, frozen):
    people(acme, 3)
    campaign = launch(acme, [number])
    outcome = run()
    assert (outcome.sent, outcome.skipped, outcome.held, outcome.completed) == (3, 0, 0, 1)
    sent = jobs(campaign)
    assert [job.state for job in sent] == [JobState.SENT] * 3
    assert sent[0].body == "Acme Pty Ltd: Hi P1, spring sale on now Reply STOP to opt out"
    assert [job.segments for job in sent] == [1, 1, 1]
    assert [job.cost for job in sent] == [PRICE] * 3
    assert all(job.number_id == number.pk and job.sent_at == MORNING and job.attempts == 1 for job in sent)
    records = SandboxProvider.records()
    assert sorted(record.state.sid for record in records) == sorted(job.provider_sid for job in sent)
    assert {record.message.to for record in records} == {"+61412500001", "+61412500002", "+61412500003"}
    assert records[0].message.status_callback == "http://127.0.0.1:8000/webhooks/twilio/status/"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED and campaign.completed_at == MORNING
    completed = Event.objects.get(type="campaign.completed")
    assert completed.payload["jobs"] == {"SENT": 3}
    # Spending is counted in the organization's day (Sydney) and month.
    spent = dict(SendCounter.objects.filter(key__startswith="spend:").values_list("key", "amount"))
    assert spent == {f"spend:{acme.pk}:day": Decimal("0.1650"), f"spend:{acme.pk}:month": Decimal("0.1650")}
    day = SendCounter.objects.get(key=f"spend:{acme.pk}:day")
    assert day.window == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)  # midnight in Sydney
    # Nothing is sent twice.
    assert run().sent == 0
    assert len(SandboxProvider.records()) == 3


def test_a_long_message_costs_every_segment(acme, number, frozen):
    people(acme, 1)
    campaign = launch(acme, [number], bodies=("Big news " * 20,))
    run()
    job = jobs(campaign)[0]
    assert len(job.body) == 215 and job.segments == 2  # past 160: parts of 153
    assert job.cost == Decimal("0.1100")


def test_templates_are_used_in_turn(acme, number, frozen):
    people(acme, 5)
    campaign = launch(acme, [number], bodies=("One {first_name}", "Two {first_name}", "Three {first_name}"))
    run()
    assert [job.body.split(": ")[1].split(" P")[0] for job in jobs(campaign, "position")] == [
        "One",
        "Two",
        "Three",
        "One",
        "Two",
    ]


def test_a_link_becomes_a_short_link_per_recipient(acme, number, frozen):
    people(acme, 2)
    campaign = launch(acme, [number], bodies=("Sale: {link}",), link_url="https://acme.test/sale")
    run()
    links = {link.job_id: link for link in ShortLink.objects.all()}
    assert len(links) == 2 and len({link.token for link in links.values()}) == 2
    for job in jobs(campaign):
        link = links[job.pk]
        assert len(link.token) == 10 and link.url == "https://acme.test/sale"
        assert link.expires_at == MORNING + timedelta(days=60)
        assert f"https://127.0.0.1:8000/s/{link.token}" in job.body or f"/s/{link.token} " in job.body


def gate_counts(campaign) -> dict[str, int]:
    return dict(CampaignGateCount.objects.filter(campaign=campaign).values_list("gate", "count"))


def test_the_kill_switch_holds_every_job(acme, number, frozen):
    people(acme, 2)
    SmsSettings.objects.create(organization=acme, kill_switch=True)
    campaign = launch(acme, [number])
    outcome = run()
    assert (outcome.sent, outcome.held) == (0, 2)
    assert {(job.state, job.reason, job.deferred_until) for job in jobs(campaign)} == {
        (JobState.QUEUED, "kill_switch", MORNING + timedelta(minutes=1))
    }
    assert gate_counts(campaign) == {"kill_switch": 2}
    assert SandboxProvider.records() == []


def test_a_paused_campaign_waits_and_goes_on_resume(acme, alice, number, frozen):
    people(acme, 2)
    campaign = launch(acme, [number], actor=alice)
    campaign_pause(campaign=campaign, actor=alice)
    run()
    assert {job.reason for job in jobs(campaign)} == {"kill_switch"}
    frozen.shift(timedelta(minutes=1))
    from sms.services.campaigns import campaign_resume

    campaign_resume(campaign=campaign, actor=alice)
    assert run().sent == 2


def test_the_budget_cap_waits_for_the_next_day(acme, number, frozen):
    people(acme, 3)
    SmsSettings.objects.create(organization=acme, daily_budget=Decimal("0.11"))
    campaign = launch(acme, [number])
    outcome = run()
    assert (outcome.sent, outcome.held) == (2, 1)  # 0.055 + 0.055 = 0.11 reaches the cap exactly
    (held,) = queued(campaign)
    assert (held.state, held.reason) == (JobState.QUEUED, "budget_cap")
    assert held.deferred_until == datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # next midnight in Sydney
    frozen.move_to(datetime(2026, 11, 23, 23, 0, tzinfo=UTC))
    assert run().sent == 1


def test_the_monthly_budget_waits_for_the_first_of_next_month(acme, number, frozen):
    people(acme, 2)
    SmsSettings.objects.create(organization=acme, monthly_budget=Decimal("0.06"))
    campaign = launch(acme, [number])
    run()
    (held,) = queued(campaign)
    assert held.reason == "budget_cap"
    assert held.deferred_until == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # 1 December, 00:00 in Sydney


def test_credits_pay_for_segments_before_the_budget(acme, number, frozen):
    people(acme, 3)
    SmsCreditEntry.objects.create(organization=acme, credits=2, reason="pack", source_key="pack-1")
    SmsSettings.objects.create(organization=acme, daily_budget=Decimal("0.05"))
    campaign = launch(acme, [number])
    outcome = run()
    # Two messages on credits; the third would spend 0.055 of a 0.05 budget: it waits.
    assert (outcome.sent, outcome.held) == (2, 1)
    assert [job.reason for job in queued(campaign)] == ["budget_cap"]
    assert [job.cost for job in jobs(campaign) if job.state == JobState.SENT] == [PRICE, PRICE]  # paid by credits
    assert sorted(SmsCreditEntry.objects.filter(organization=acme).values_list("credits", flat=True)) == [-2, 2]
    assert not SendCounter.objects.filter(key__startswith="spend:").exclude(amount=0).exists()


def test_the_80_percent_alert_is_emailed_once_a_day(acme, alice, number, frozen, django_capture_on_commit_callbacks):
    people(acme, 4)
    SmsSettings.objects.create(organization=acme, daily_budget=Decimal("0.25"))
    launch(acme, [number])
    with django_capture_on_commit_callbacks(execute=True):
        run()  # 4 x 0.055 = 0.22 = 88 %
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [alice.email]
    assert "88 % of the daily budget" in mail.outbox[0].subject
    people(acme, 1, start=10)
    launch(acme, [number])
    with django_capture_on_commit_callbacks(execute=True):
        run()
    assert len(mail.outbox) == 1
    assert SmsSettings.objects.get(organization=acme).budget_alerted == "D20261123"


def test_dnc_and_missing_consent_skip(acme, number, frozen):
    first, second, _third = people(acme, 3)
    campaign = launch(acme, [number])
    dnc_add(organization=acme, phone_e164=first.phone_e164, reason="manual")
    consent_withdraw(contact=second, source="phone call")
    run()
    assert [(job.state, job.reason) for job in jobs(campaign)] == [
        (JobState.SKIPPED, "dnc"),
        (JobState.SKIPPED, "no_consent"),
        (JobState.SENT, ""),
    ]
    assert gate_counts(campaign) == {"dnc": 1, "no_consent": 1}


def test_a_recent_campaign_message_suppresses_the_next(acme, number, frozen):
    people(acme, 2)
    first = launch(acme, [number])
    run()
    frozen.shift(timedelta(days=89, hours=23))
    second = launch(acme, [number])
    run()
    assert {(job.state, job.reason) for job in jobs(second)} == {(JobState.SKIPPED, "suppression")}
    assert first.pk != second.pk
    frozen.shift(timedelta(hours=1))  # exactly 90 days later
    third = launch(acme, [number])
    run()
    assert {job.state for job in jobs(third)} == {JobState.SENT}


def test_two_campaigns_in_one_batch_message_a_contact_once(acme, number, frozen):
    people(acme, 1)
    first = launch(acme, [number])
    second = launch(acme, [number])
    run()
    assert [job.state for job in jobs(first) + jobs(second)] == [JobState.SENT, JobState.SKIPPED]
    assert jobs(second)[0].reason == "suppression"


def test_quiet_hours_follow_the_contacts_zone(acme, number, frozen):
    people(acme, 1)  # Sydney (the organization's)
    people(acme, 1, start=2, timezone="Australia/Perth")  # 07:00 there
    frozen.move_to(datetime(2026, 11, 22, 22, 0, tzinfo=UTC))  # 09:00 in Sydney
    campaign = launch(acme, [number])
    run()
    sydney, perth = jobs(campaign)
    assert sydney.state == JobState.SENT
    assert (perth.state, perth.reason) == (JobState.QUEUED, "quiet_hours")
    assert perth.deferred_until == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Perth
    frozen.move_to(perth.deferred_until)
    assert run().sent == 1


def test_quiet_hours_across_the_dst_change(acme, number):
    # Sydney moves to daylight time at 02:00 on 4 October 2026: 09:00 that morning is 22:00 UTC the day before.
    with time_machine.travel(datetime(2026, 10, 3, 12, 0, tzinfo=UTC), tick=False):  # 22:00 AEST on the 3rd
        people(acme, 1)
        campaign = launch(acme, [number])
        run()
    assert jobs(campaign)[0].deferred_until == datetime(2026, 10, 3, 22, 0, tzinfo=UTC)


def test_the_organizations_rate_per_minute(acme, number, frozen):
    people(acme, 5)
    SmsSettings.objects.create(organization=acme, messages_per_minute=2)
    campaign = launch(acme, [number])
    outcome = run()
    assert (outcome.sent, outcome.held) == (2, 3)
    assert {job.deferred_until for job in queued(campaign)} == {MORNING + timedelta(minutes=1)}
    assert gate_counts(campaign) == {"rate_limit": 3}
    frozen.shift(timedelta(minutes=1))
    assert run().sent == 2


def test_a_numbers_rate_per_second(acme, frozen):
    slow = [
        SendingNumber.objects.create(
            organization=acme, phone_e164=f"+6149157000{index}", warmup_start=date(2026, 1, 1), per_second=1
        )
        for index in (1, 2)
    ]
    people(acme, 4)
    campaign = launch(acme, slow)
    assert run().sent == 2
    assert {job.number_id for job in jobs(campaign) if job.state == JobState.SENT} == {slow[0].pk, slow[1].pk}
    assert {job.deferred_until for job in queued(campaign)} == {MORNING + timedelta(seconds=1)}


def test_warmup_caps_try_another_number_then_wait_for_tomorrow(acme, frozen):
    today = date(2026, 11, 23)
    new = SendingNumber.objects.create(
        organization=acme, phone_e164="+61491570001", warmup_start=today, warmup_curve="2/4", per_second=100
    )
    second_day = SendingNumber.objects.create(
        organization=acme,
        phone_e164="+61491570002",
        warmup_start=today - timedelta(days=1),
        warmup_curve="2/4",
        per_second=100,
    )
    people(acme, 8)
    campaign = launch(acme, [new, second_day])
    assert run().sent == 6  # 2 on its first day, 4 on its second
    sent = [job for job in jobs(campaign) if job.state == JobState.SENT]
    assert sum(job.number_id == new.pk for job in sent) == 2
    assert sum(job.number_id == second_day.pk for job in sent) == 4
    held = [job for job in jobs(campaign) if job.state == JobState.QUEUED]
    assert {(job.reason, job.deferred_until) for job in held} == {("warmup", datetime(2026, 11, 23, 13, 0, tzinfo=UTC))}
    frozen.move_to(datetime(2026, 11, 23, 23, 0, tzinfo=UTC))  # the next day, 10:00
    assert run().sent == 2


def test_a_number_does_not_send_before_its_warmup_starts(acme, frozen):
    later = SendingNumber.objects.create(organization=acme, phone_e164="+61491570001", warmup_start=date(2026, 12, 1))
    people(acme, 1)
    campaign = launch(acme, [later])
    run()
    assert jobs(campaign)[0].reason == "warmup"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("kill_and_dnc", "kill_switch"),  # 1 before 3
        ("budget_and_dnc", "budget_cap"),  # 2 before 3
        ("dnc_and_quiet", "dnc"),  # 3 before 5
        ("suppressed_and_quiet", "suppression"),  # 4 before 5
        ("quiet_and_rate", "quiet_hours"),  # 5 before 6
        ("rate_and_warmup", "rate_limit"),  # 6 before 7
    ],
)
def test_the_first_failing_gate_decides(acme, number, frozen, setup, expected):
    (contact,) = people(acme, 1)
    settings = SmsSettings.objects.create(organization=acme)
    if setup == "suppressed_and_quiet":
        launch(acme, [number])
        run()
    campaign = launch(acme, [number])
    if "dnc" in setup:
        dnc_add(organization=acme, phone_e164=contact.phone_e164, reason="manual")
    if setup == "kill_and_dnc":
        settings.kill_switch = True
    if setup == "budget_and_dnc":
        settings.daily_budget = Decimal("0.01")
    if setup == "quiet_and_rate":
        settings.messages_per_minute = 1
        SendCounter.objects.create(key=f"rate:{acme.pk}", window=MORNING + timedelta(hours=12), count=1)
    if setup == "rate_and_warmup":
        settings.messages_per_minute = 1
        SendCounter.objects.create(key=f"rate:{acme.pk}", window=MORNING, count=1)
        number.warmup_curve = "0"
        number.save()
    settings.save()
    if setup in ("dnc_and_quiet", "suppressed_and_quiet", "quiet_and_rate"):
        frozen.shift(timedelta(hours=12))  # 22:00 in Sydney
    run()
    assert jobs(campaign)[0].reason == expected


def test_a_canceled_campaigns_queued_jobs_are_skipped(acme, alice, number, frozen):
    people(acme, 2)
    campaign = launch(acme, [number], actor=alice)
    campaign_cancel(campaign=campaign, actor=alice)
    assert {(job.state, job.reason) for job in jobs(campaign)} == {(JobState.SKIPPED, "canceled")}
    assert run().sent == 0


def test_a_scheduled_campaign_starts_on_time(acme, number, frozen):
    people(acme, 1)
    campaign = launch(acme, [number], start_at=MORNING + timedelta(hours=2))
    assert campaign.status == CampaignStatus.SCHEDULED
    assert run().sent == 0
    frozen.shift(timedelta(hours=2))
    assert run().sent == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED


def test_a_refused_message_fails_with_the_providers_code(acme, number, frozen):
    people(acme, 1)
    campaign = launch(acme, [number])

    class Refusing(SandboxProvider):
        def send(self, message: OutboundMessage) -> MessageState:
            raise ProviderError("The 'To' number is not a valid phone number.", code="21211")

    outcome = dispatch(provider=Refusing())
    assert outcome.failed == 1
    job = jobs(campaign)[0]
    assert (job.state, job.error_code, job.provider_sid) == (JobState.FAILED, "21211", None)


class Crashing(SandboxProvider):
    """Accepts the message, then the worker dies before it records the answer."""

    def send(self, message: OutboundMessage) -> MessageState:
        super().send(message)
        raise SystemExit("worker killed")


def test_a_crash_after_sending_is_reconciled_without_a_second_message(acme, number, frozen):
    people(acme, 1)
    campaign = launch(acme, [number])
    with pytest.raises(SystemExit):
        dispatch(provider=Crashing())
    job = jobs(campaign)[0]
    assert job.state == JobState.SENDING and job.lease_until == MORNING + timedelta(minutes=10)
    assert run().sent == 0  # the lease still holds: nobody touches it
    frozen.shift(timedelta(minutes=11))
    outcome = run()
    assert (outcome.reconciled, outcome.requeued, outcome.sent) == (1, 0, 0)
    job.refresh_from_db()
    (record,) = SandboxProvider.records()
    assert (job.state, job.provider_sid) == (JobState.SENT, record.state.sid)


def test_a_crash_before_sending_sends_once_after_the_lease(acme, number, frozen, monkeypatch):
    people(acme, 1)
    campaign = launch(acme, [number], bodies=("Sale: {link}",), link_url="https://acme.test")

    def die(*args: Any) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr(dispatching, "send_batch", die)
    with pytest.raises(SystemExit):
        run()
    monkeypatch.undo()
    assert jobs(campaign)[0].state == JobState.SENDING
    frozen.shift(timedelta(minutes=11))
    outcome = run()
    assert (outcome.requeued, outcome.sent) == (1, 1)
    assert len(SandboxProvider.records()) == 1
    job = jobs(campaign)[0]
    assert job.state == JobState.SENT and job.attempts == 2
    assert ShortLink.objects.filter(job=job).count() == 1
    assert job.link.token in job.body


def test_a_lost_answer_is_looked_up_not_resent(acme, number, frozen):
    people(acme, 1)
    campaign = launch(acme, [number])

    class Timeout(SandboxProvider):
        def send(self, message: OutboundMessage) -> MessageState:
            super().send(message)
            raise ProviderError("Twilio timed out", retryable=True)

    dispatch(provider=Timeout())
    job = jobs(campaign)[0]
    assert (job.state, job.lease_until) == (JobState.SENDING, MORNING + timedelta(minutes=2))
    frozen.shift(timedelta(minutes=3))
    assert reconcile(provider=SandboxProvider()).reconciled == 1
    job.refresh_from_db()
    assert job.state == JobState.SENT and len(SandboxProvider.records()) == 1


def test_queries_do_not_grow_with_the_batch(acme, number, frozen, django_assert_max_num_queries):
    (on_dnc, *_) = people(acme, 3)
    launch(acme, [number])
    dnc_add(organization=acme, phone_e164=on_dnc.phone_e164, reason="manual")  # a skip in both runs
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(conn) as small:
        run()
    people(acme, 30, start=100)
    launch(acme, [number])
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert run().sent == 30


@pytest.mark.django_db(transaction=True)
def test_workers_at_once_send_each_message_once_within_every_cap(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    with time_machine.travel(MORNING, tick=False):
        numbers = [
            SendingNumber.objects.create(
                organization=acme,
                phone_e164=f"+6149157000{index}",
                warmup_start=date(2026, 11, 23),
                warmup_curve="30",
                per_second=1000,
            )
            for index in (1, 2)
        ]
        people(acme, 100)
        SmsSettings.objects.create(organization=acme, daily_budget=Decimal("2.75"), messages_per_minute=1000)
        campaign = launch(acme, numbers)
        outcomes = race(lambda: dispatch(provider=SandboxProvider(), limit=7), 4)
    assert all(isinstance(outcome, Outcome) for outcome in outcomes), outcomes
    sent = [job for job in jobs(campaign) if job.state == JobState.SENT]
    # The budget allows 50 messages (2.75 / 0.055), the two numbers 60: the budget decides, exactly.
    assert len(sent) == 50 == sum(outcome.sent for outcome in outcomes)
    assert len(SandboxProvider.records()) == 50
    assert len({record.message.to for record in SandboxProvider.records()}) == 50
    assert all(sum(job.number_id == number.pk for job in sent) <= 30 for number in numbers)
    spent = SendCounter.objects.get(key=f"spend:{acme.pk}:day").amount
    assert spent == Decimal("2.75")


def test_the_beat_task_sends_and_old_counters_are_purged(acme, number, frozen, settings, tmp_path):
    from sms.tasks import dispatch_messages, purge_counters

    settings.VAR_DIR = tmp_path
    settings.SMS_PROVIDER = "sandbox"
    people(acme, 2)
    launch(acme, [number])
    assert dispatch_messages() == 2
    SendCounter.objects.create(key="rate:old", window=MORNING - timedelta(days=3), count=5)
    SendCounter.objects.create(key="spend:old:month", window=MORNING - timedelta(days=20), amount=Decimal("1"))
    SendCounter.objects.create(key="spend:older:month", window=MORNING - timedelta(days=41), amount=Decimal("1"))
    assert purge_counters() == 2
    assert SendCounter.objects.filter(key="spend:old:month").exists()


def test_a_run_with_time_left_waits_for_the_next_second(acme, monkeypatch):
    slow = SendingNumber.objects.create(
        organization=acme, phone_e164="+61491570001", warmup_start=date(2026, 1, 1), per_second=1
    )
    slept: list[float] = []
    with time_machine.travel(MORNING, tick=False) as traveller:

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            traveller.shift(timedelta(seconds=seconds))

        monkeypatch.setattr(dispatching.clock, "sleep", sleep)
        people(acme, 3)
        launch(acme, [slow])
        assert run(seconds=30).sent == 3  # one a second: two waits of a second
    assert slept == [1.0, 1.0]


def test_a_lost_final_status_is_asked_for_later(acme, number, frozen):
    from sms.providers.sandbox import outcome as fate
    from sms.services.settle import settle_sent
    from sms.tasks import settle_sent_messages

    people(acme, 3)
    campaign = launch(acme, [number])
    run()
    assert settle_sent(provider=SandboxProvider()) == 0  # too soon: the callbacks may still come
    frozen.shift(timedelta(minutes=11))
    assert settle_sent(provider=SandboxProvider()) == 3
    for job in jobs(campaign):
        status, code = fate(job.provider_sid)
        expected = JobState.DELIVERED if status == "delivered" else JobState.FAILED
        assert (job.state, job.error_code) == (expected, code or "")
        assert job.provider_price == (Decimal("0.0079") if status == "delivered" else None)
    assert settle_sent_messages() == 0  # nothing left waiting
