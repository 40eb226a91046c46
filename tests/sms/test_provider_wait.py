"""The dispatcher when Twilio asks it to wait (429, or a retryable refusal with Retry-After), against recorded Twilio
answers (``responses``; any request not recorded fails): the refused message waits as long as Twilio asked (never
less than Keel's own backoff, never more than ``RETRY_MOST``), the rest of the batch is not sent but queued again for
after the same wait, with what its claim counted given back, and every message goes out once, with several workers
at once too."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
import time_machine
from django.db import connection
from responses import RequestsMock

from billing.models import SmsCreditEntry
from sms import providers as sms_providers
from sms.models import JobState, SendCounter, SendingNumber, SendJob, ShortLink, SmsSettings
from sms.providers.base import MessageState, OutboundMessage, ProviderError
from sms.providers.sandbox import SandboxProvider
from sms.services.dispatch import Outcome, dispatch, reconcile
from sms.services.handover import PROVIDER_WAIT, retry_wait
from sms.services.settle import RETRY_MOST, settle_sent
from tests.helpers import race
from tests.sms.test_dispatch import MORNING, jobs, launch, people
from tests.sms.test_twilio_adapter import ACCOUNT, MESSAGES, TOKEN, error_json, message_json, page_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def twilio(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[RequestsMock]:
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.TWILIO_AUTH_TOKEN = TOKEN
    monkeypatch.setattr(sms_providers.get_provider, "instances", {})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def frozen() -> Iterator[Any]:
    with time_machine.travel(MORNING, tick=False) as traveller:
        yield traveller


@pytest.fixture
def number(acme: Any) -> SendingNumber:
    return SendingNumber.objects.create(
        organization=acme, phone_e164="+61491570001", warmup_start=date(2026, 1, 1), per_second=100
    )


def run(**kwargs: Any) -> Outcome:
    return dispatch(**kwargs)  # through get_provider(): the Twilio adapter


def accepted(message_sid: str) -> dict[str, Any]:
    return {"status": 201, "json": message_json(message_sid)}


def rate_limited(retry_after: str | None = None) -> dict[str, Any]:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return {"status": 429, "json": error_json(20429, "Too Many Requests", 429), "headers": headers}


def sid(index: int) -> str:
    return f"SM{index:032d}"


def sends(mock: RequestsMock) -> list[Any]:
    return [call for call in mock.calls if call.request.method == "POST" and call.request.url == MESSAGES]


def lookups(mock: RequestsMock) -> list[Any]:
    return [call for call in mock.calls if call.request.method == "GET"]


def recipient(call: Any) -> str:
    return parse_qs(call.request.body)["To"][0]


def test_a_rate_limited_message_waits_as_long_as_twilio_asks(twilio, acme, number, frozen):
    people(acme, 1)
    campaign = launch(acme, [number])
    twilio.post(MESSAGES, **rate_limited("300"))
    twilio.post(MESSAGES, **accepted(sid(1)))
    twilio.get(MESSAGES, json=page_json())  # the lookup before sending again: Twilio has no such message

    outcome = run()

    [job] = jobs(campaign)
    # Keel's own backoff after a first attempt is 2 minutes; Twilio asked for 5.
    assert retry_wait(1) == timedelta(minutes=2)
    assert (job.state, job.error_code, job.attempts) == (JobState.SENDING, "20429", 1)
    assert job.lease_until == MORNING + timedelta(minutes=5)
    assert outcome.paused_until == MORNING + timedelta(minutes=5)
    frozen.shift(timedelta(minutes=4))
    assert run().sent == 0
    assert (len(sends(twilio)), len(lookups(twilio))) == (1, 0)  # neither looked up nor sent before its time
    frozen.shift(timedelta(minutes=1, seconds=1))
    outcome = run()
    assert (outcome.requeued, outcome.sent) == (1, 1)
    job.refresh_from_db()
    assert (job.state, job.provider_sid, job.attempts) == (JobState.SENT, sid(1), 2)
    assert len(sends(twilio)) == 2


def test_a_rate_limit_mid_batch_stops_it_and_the_rest_go_once_after_the_wait(twilio, acme, number, frozen):
    people(acme, 5)
    SmsCreditEntry.objects.create(organization=acme, credits=4, reason="pack", source_key="pack-1")
    campaign = launch(acme, [number], bodies=("Sale for {first_name}: {link}",), link_url="https://acme.test/sale")
    twilio.post(MESSAGES, **accepted(sid(1)))
    twilio.post(MESSAGES, **accepted(sid(2)))
    twilio.post(MESSAGES, **rate_limited("300"))
    for index in (3, 4, 5):
        twilio.post(MESSAGES, **accepted(sid(index)))
    twilio.get(MESSAGES, json=page_json())

    outcome = run()

    assert (outcome.sent, outcome.held, outcome.paused_until) == (2, 2, MORNING + timedelta(minutes=5))
    assert len(sends(twilio)) == 3  # the two after the refusal were not handed to Twilio
    by_id = list(SendJob.objects.filter(campaign=campaign).order_by("id"))
    assert [job.state for job in by_id] == [JobState.SENT] * 2 + [JobState.SENDING] + [JobState.QUEUED] * 2
    assert by_id[2].lease_until == MORNING + timedelta(minutes=5)
    for job in by_id[3:]:
        # Queued again as if never claimed: due after Twilio's wait, no attempt counted, nothing of the claim kept.
        assert (job.reason, job.deferred_until, job.lease_until) == (
            PROVIDER_WAIT,
            MORNING + timedelta(minutes=5),
            None,
        )
        assert (job.attempts, job.number_id, job.body, job.segments, job.cost, job.sent_at) == (
            0, None, "", 0, Decimal("0"), None,
        )  # fmt: skip
    assert not ShortLink.objects.filter(job__in=by_id[3:]).exists()
    assert ShortLink.objects.filter(job__in=by_id[:3]).count() == 3
    # The counters and credits hold the three messages Twilio was asked to take, not the five claimed: the first
    # four were to be paid with credits, the fifth from the budget.
    counted = dict(
        SendCounter.objects.filter(key__in=[f"rate:{acme.pk}", f"day:{number.pk}"]).values_list("key", "count")
    )
    assert counted == {f"rate:{acme.pk}": 3, f"day:{number.pk}": 3}
    assert SendCounter.objects.get(key=f"spend:{acme.pk}:day").amount == Decimal("0")
    assert sorted(SmsCreditEntry.objects.filter(organization=acme).values_list("credits", flat=True)) == [-4, 1, 4]

    assert run().sent == 0  # within the wait nothing goes, and nothing is looked up
    frozen.shift(timedelta(minutes=5) - timedelta(seconds=1))
    assert run().sent == 0
    assert (len(sends(twilio)), len(lookups(twilio))) == (3, 0)

    frozen.shift(timedelta(seconds=2))
    outcome = run()
    assert (outcome.requeued, outcome.sent, outcome.paused_until) == (1, 3, None)
    assert [job.state for job in jobs(campaign)] == [JobState.SENT] * 5
    assert [job.attempts for job in SendJob.objects.filter(campaign=campaign).order_by("id")] == [1, 1, 2, 1, 1]
    delivered = [call for call in sends(twilio) if call.response.status_code == 201]
    phones = {job.contact.phone_e164 for job in jobs(campaign)}
    assert Counter(recipient(call) for call in delivered) == dict.fromkeys(phones, 1)  # each person once
    assert len(sends(twilio)) == 6
    assert ShortLink.objects.filter(job__campaign=campaign).count() == 5
    assert run().sent == 0 and len(sends(twilio)) == 6


def test_a_rate_limit_pauses_every_later_run_and_organization_until_twilio_s_time(twilio, acme, initech, number,
                                                                                  frozen):  # fmt: skip
    """The wait Twilio asked for is kept for the runs after the refused one: another organization's campaign
    launched meanwhile is not handed to Twilio before then, nor is a sent message looked up."""
    people(acme, 1)
    launch(acme, [number])
    twilio.post(MESSAGES, **rate_limited("300"))
    assert run().paused_until == MORNING + timedelta(minutes=5)
    initech.timezone = "Australia/Sydney"  # within sending hours, as Acme is
    initech.save(update_fields=["timezone"])
    other = SendingNumber.objects.create(
        organization=initech, phone_e164="+61491570002", warmup_start=date(2026, 1, 1), per_second=100
    )
    people(initech, 1)
    later = launch(initech, [other])
    already = SendJob.objects.filter(organization=acme).update(state=JobState.SENT, provider_sid=sid(9))
    SendJob.objects.filter(organization=acme).update(sent_at=MORNING - timedelta(minutes=30))

    frozen.shift(timedelta(minutes=1))
    outcome = run()
    assert (outcome.sent, outcome.paused_until) == (0, MORNING + timedelta(minutes=5))
    assert settle_sent() == 0
    assert (len(sends(twilio)), len(lookups(twilio))) == (1, 0)
    [waiting] = jobs(later)
    assert (waiting.state, waiting.attempts) == (JobState.QUEUED, 0)

    frozen.shift(timedelta(minutes=4, seconds=1))
    twilio.post(MESSAGES, **accepted(sid(2)))
    outcome = run()
    assert (outcome.sent, outcome.paused_until) == (1, None)
    assert [job.state for job in jobs(later)] == [JobState.SENT]
    assert already == 1


def test_a_rate_limited_settle_run_pauses_the_dispatcher_too(twilio, acme, number, frozen):
    people(acme, 2)
    campaign = launch(acme, [number])
    twilio.post(MESSAGES, **accepted(sid(1)))
    twilio.post(MESSAGES, **accepted(sid(2)))
    run()
    people(acme, 1, start=3, tags=["later"])
    later = launch(acme, [number], audience_tags=["later"])
    SendJob.objects.filter(campaign=campaign).update(sent_at=MORNING - timedelta(minutes=30))
    twilio.get(re.compile(re.escape(MESSAGES[: -len(".json")]) + r"/SM\w+\.json"), **rate_limited("600"))

    assert settle_sent() == 0
    assert len(lookups(twilio)) == 1  # the second message was not asked about

    outcome = run()
    assert (outcome.sent, outcome.paused_until) == (0, MORNING + timedelta(minutes=10))
    assert [job.state for job in jobs(later)] == [JobState.QUEUED]
    assert len(sends(twilio)) == 2


def test_after_a_rate_limit_the_run_claims_no_further_batch(twilio, acme, number, frozen):
    people(acme, 5)
    campaign = launch(acme, [number])
    twilio.post(MESSAGES, **accepted(sid(1)))
    twilio.post(MESSAGES, **rate_limited("60"))

    outcome = run(limit=2)

    assert (outcome.sent, outcome.held) == (1, 0)
    assert len(sends(twilio)) == 2
    untouched = [job for job in jobs(campaign) if job.state == JobState.QUEUED]
    assert len(untouched) == 3 and all(job.attempts == 0 and job.reason == "" for job in untouched)


def test_a_rate_limit_without_retry_after_waits_the_backoff_and_still_stops_the_batch(twilio, acme, number, frozen):
    people(acme, 3)
    campaign = launch(acme, [number])
    twilio.post(MESSAGES, **rate_limited())

    run()

    assert len(sends(twilio)) == 1
    by_id = list(SendJob.objects.filter(campaign=campaign).order_by("id"))
    assert (by_id[0].state, by_id[0].lease_until) == (JobState.SENDING, MORNING + retry_wait(1))
    assert [(job.state, job.deferred_until) for job in by_id[1:]] == [(JobState.QUEUED, MORNING + retry_wait(1))] * 2


def test_a_job_s_own_long_backoff_does_not_become_the_provider_s_pause(twilio, acme, number, frozen):
    """A job on its fifth attempt waits 32 minutes after a 429 without Retry-After, but the provider asked nobody to
    wait that long: the rest of the batch, and every later run, wait Keel's first backoff (2 minutes)."""
    people(acme, 3)
    campaign = launch(acme, [number])
    first = SendJob.objects.filter(campaign=campaign).order_by("position", "id")[0]
    SendJob.objects.filter(pk=first.pk).update(attempts=4)
    twilio.post(MESSAGES, **rate_limited())

    outcome = run()

    assert len(sends(twilio)) == 1
    first.refresh_from_db()
    assert (first.attempts, first.lease_until) == (5, MORNING + retry_wait(5))
    assert retry_wait(5) == timedelta(minutes=32)
    assert outcome.paused_until == MORNING + retry_wait(1)
    others = SendJob.objects.filter(campaign=campaign).exclude(pk=first.pk)
    assert {(job.state, job.deferred_until) for job in others} == {(JobState.QUEUED, MORNING + retry_wait(1))}


def test_an_outage_without_retry_after_keeps_the_backoff_and_the_batch_goes_on(twilio, acme, number, frozen):
    people(acme, 3)
    campaign = launch(acme, [number])
    twilio.post(MESSAGES, **accepted(sid(1)))
    twilio.post(MESSAGES, status=503, body="<html><body>Service Unavailable</body></html>", content_type="text/html")
    twilio.post(MESSAGES, **accepted(sid(3)))

    outcome = run()

    assert (outcome.sent, outcome.paused_until) == (2, None)
    assert len(sends(twilio)) == 3
    [waiting] = [job for job in jobs(campaign) if job.state == JobState.SENDING]
    assert waiting.lease_until == MORNING + retry_wait(1)


def test_an_outage_with_retry_after_is_waited_for_like_a_rate_limit(twilio, acme, number, frozen):
    people(acme, 2)
    campaign = launch(acme, [number])
    twilio.post(
        MESSAGES,
        status=503,
        body="<html><body>Service Unavailable</body></html>",
        content_type="text/html",
        headers={"Retry-After": "Sun, 22 Nov 2026 23:10:00 GMT"},
    )

    run()

    assert len(sends(twilio)) == 1
    by_id = list(SendJob.objects.filter(campaign=campaign).order_by("id"))
    assert by_id[0].lease_until == MORNING + timedelta(minutes=10)
    assert (by_id[1].state, by_id[1].deferred_until) == (JobState.QUEUED, MORNING + timedelta(minutes=10))


def test_a_retry_after_longer_than_the_limit_is_capped(twilio, acme, number, frozen):
    people(acme, 2)
    campaign = launch(acme, [number])
    twilio.post(MESSAGES, **rate_limited("86400"))  # a day

    run()

    by_id = list(SendJob.objects.filter(campaign=campaign).order_by("id"))
    assert timedelta(hours=1) == RETRY_MOST
    assert by_id[0].lease_until == MORNING + RETRY_MOST
    assert by_id[1].deferred_until == MORNING + RETRY_MOST


def test_a_rate_limited_lookup_waits_as_asked_and_the_run_sends_nothing(twilio, acme, number, frozen):
    people(acme, 2, tags=["first"])
    first = launch(acme, [number], audience_tags=["first"])
    twilio.post(MESSAGES, body=requests.exceptions.ReadTimeout("read timed out (read timeout=10.0)"))
    twilio.post(MESSAGES, body=requests.exceptions.ReadTimeout("read timed out (read timeout=10.0)"))
    run()  # timeouts name no wait: both sent to, both SENDING, to be looked up after the backoff
    assert [job.lease_until for job in jobs(first)] == [MORNING + retry_wait(1)] * 2
    people(acme, 1, start=3, tags=["later"])
    later = launch(acme, [number], audience_tags=["later"])

    frozen.shift(retry_wait(1) + timedelta(seconds=1))
    at = MORNING + retry_wait(1) + timedelta(seconds=1)
    twilio.get(MESSAGES, **rate_limited("900"))
    outcome = run()

    assert outcome.paused_until == at + timedelta(minutes=15)
    assert len(lookups(twilio)) == 1  # the second job was not asked about
    assert [(job.state, job.lease_until) for job in jobs(first)] == [(JobState.SENDING, at + timedelta(minutes=15))] * 2
    assert len(sends(twilio)) == 2  # and the later campaign's message waits for the next run
    [waiting] = jobs(later)
    assert (waiting.state, waiting.attempts) == (JobState.QUEUED, 0)

    frozen.shift(timedelta(minutes=15, seconds=1))
    twilio.replace(responses.GET, MESSAGES, json=page_json())
    for index in (1, 2, 3):
        twilio.post(MESSAGES, **accepted(sid(index)))
    outcome = run()
    assert (outcome.requeued, outcome.sent) == (2, 3)
    assert len(sends(twilio)) == 5


def test_reconcile_alone_gives_its_wait_and_looks_up_the_rest_later(twilio, acme, number, frozen):
    people(acme, 3)
    campaign = launch(acme, [number])
    for _ in range(3):
        twilio.post(MESSAGES, body=requests.exceptions.ConnectTimeout("connect timed out"))
    run()
    frozen.shift(retry_wait(1) + timedelta(seconds=1))
    twilio.get(MESSAGES, status=500, json=error_json(20500, "Internal Server Error", 500))

    outcome = reconcile()

    # A plain outage names no wait: each job is asked about again after RETRY_AFTER, and every one was asked.
    assert outcome.paused_until is None
    assert len(lookups(twilio)) == 3
    assert {job.lease_until for job in jobs(campaign)} == {MORNING + retry_wait(1) + timedelta(minutes=2, seconds=1)}


class Throttling(SandboxProvider):
    """The sandbox, refusing its third message of the test with a rate limit (shared by every worker thread)."""

    calls = 0
    guard = threading.Lock()

    def send(self, message: OutboundMessage) -> MessageState:
        with Throttling.guard:
            Throttling.calls += 1
            refuse = Throttling.calls == 3
        if refuse:
            raise ProviderError(
                "Too Many Requests", retryable=True, rate_limited=True, retry_after=timedelta(seconds=30)
            )
        return super().send(message)


@pytest.mark.django_db(transaction=True)
def test_workers_at_once_send_each_message_once_around_a_rate_limit(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    SandboxProvider.reset()
    Throttling.calls = 0
    with time_machine.travel(MORNING, tick=False) as traveller:
        number = SendingNumber.objects.create(
            organization=acme, phone_e164="+61491570001", warmup_start=date(2026, 1, 1), per_second=1000
        )
        SmsSettings.objects.create(organization=acme, messages_per_minute=1000)
        people(acme, 24)
        campaign = launch(acme, [number])
        outcomes = race(lambda: dispatch(provider=Throttling(), limit=5), 4)
        assert all(isinstance(outcome, Outcome) for outcome in outcomes), outcomes
        assert sum(outcome.paused_until is not None for outcome in outcomes) == 1
        traveller.shift(retry_wait(1) + timedelta(seconds=1))
        while dispatch(provider=SandboxProvider()).sent:
            pass
    assert [job.state for job in jobs(campaign)] == [JobState.SENT] * 24
    records = SandboxProvider.records()
    assert len(records) == 24 and len({record.message.to for record in records}) == 24
    # The number counts the 24 messages it sent and the one refused: none of those claimed but never sent.
    assert SendCounter.objects.get(key=f"day:{number.pk}").count == 25
    SandboxProvider.reset()


def test_a_rate_limit_while_settling_sent_messages_stops_the_asking(twilio, acme, number, frozen):
    from sms.services.settle import SETTLE_AFTER, settle_sent

    people(acme, 3)
    launch(acme, [number])
    for index in (1, 2, 3):
        twilio.post(MESSAGES, **accepted(sid(index)))
    assert run().sent == 3
    frozen.shift(SETTLE_AFTER + timedelta(minutes=1))
    twilio.get(re.compile(rf"{MESSAGES[: -len('.json')]}/SM\d+\.json"), **rate_limited("60"))

    assert settle_sent() == 0
    assert len(lookups(twilio)) == 1  # the other two are asked about on the next run
