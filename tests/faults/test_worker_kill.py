"""A Celery worker killed (SIGKILL) in the middle of a job, then a new worker started: every job ends done once.

- An SMS campaign mid-dispatch: no contact gets a message twice, and every contact gets one. The jobs the dead worker
  had claimed wait for their lease to run out; the dispatcher then asks the provider about each (the sandbox's
  journal stands in for Twilio's records), marks the ones it has SENT and sends the others.
- Recurring invoicing mid-run: no contract period is invoiced twice, invoice numbers stay gapless, each invoice is
  announced and emailed once (an email job lost with the worker is queued again by beat's sweep of unsent invoices).
- Webhook deliveries mid-POST: every event reaches the endpoint. Delivery is at least once (``events.webhooks``):
  the POST in flight when the worker died is sent again, with the same event id, once its claim has timed out;
  nothing else is sent twice.

Tasks are acknowledged late, so the task the dead worker held is handed to the next worker once the broker's
visibility timeout has passed; each test checks that it was.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.utils import timezone

from billing.models import Contract, Invoice, InvoiceStatus
from billing.services.contracts import ContractTerms, contract_create
from billing.services.invoicing import UNSENT_GRACE, invoices_generate
from billing.tasks import generate_recurring_invoices, send_unsent_invoices
from events.models import Event, WebhookDelivery, WebhookState
from events.services import publish
from events.tasks import webhooks_due
from events.webhooks import CLAIM_TIMEOUT, endpoint_create
from notifications.models import Notice
from sms.models import JobState, SendJob
from sms.tasks import dispatch_messages
from tests.faults.conftest import (
    CONTACTS,
    after_visibility_timeout,
    assert_each_contact_got_one_message,
    campaign_done,
    requires_postgresql,
    run_out_leases,
    sends_per_phone,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), requires_postgresql]


def test_a_campaign_killed_mid_dispatch_sends_each_message_once(sms_campaign, workers):
    first = workers.start(FAULTS_SMS_SEND_DELAY="0.3")
    run = dispatch_messages.delay()
    wait_for(lambda: len(sends_per_phone(workers.journal)) >= 4, "the first messages to go out")
    first.kill()

    sent_by_first = sends_per_phone(workers.journal)
    assert 4 <= sum(sent_by_first.values()) < CONTACTS
    claimed = SendJob.objects.filter(campaign=sms_campaign, state=JobState.SENDING).count()
    assert claimed > 0  # the dead worker's claims: sent but not recorded, or not sent at all

    after_visibility_timeout()
    second = workers.start()
    wait_for(lambda: run.id in second.output(), "the dead worker's run to be handed to the new worker")
    # The run it was handed leaves the claims alone until their lease runs out: nothing is sent meanwhile.
    wait_for(lambda: f"{run.id}] succeeded" in second.output(), "the handed-over run to finish")
    assert sends_per_phone(workers.journal) == sent_by_first

    assert run_out_leases(sms_campaign) == claimed
    dispatch_messages.delay()  # beat's next tick
    wait_for(lambda: campaign_done(sms_campaign), "the campaign to complete")

    assert_each_contact_got_one_message(sms_campaign, workers.journal)
    jobs = SendJob.objects.filter(campaign=sms_campaign)
    # Found at the provider: the message went once (attempt 1). Not found: queued and sent again (attempt 2).
    resent = jobs.filter(attempts=2).count()
    assert jobs.filter(attempts=1).count() + resent == CONTACTS
    assert resent == CONTACTS - sum(sent_by_first.values())


# -- recurring invoicing ----------------------------------------------------------------------------------------------


CONTRACTS = 8


def contracts(organization, count: int) -> None:
    """Monthly contracts that started about ten weeks ago: each owes the same two or three periods (or four)."""
    start = timezone.localdate() - timedelta(days=75)
    for index in range(count):
        contract_create(
            organization=organization,
            terms=ContractTerms(name=f"Managed IT {index}", start_date=start, anchor_day=1),
            lines=[{"description": "Managed services", "pricing_model": "FLAT", "amount": f"{100 + index}.00"}],
            activate=True,
        )


def invoicing_done(expected: int) -> bool:
    return (
        Invoice.objects.count() == expected
        and not Invoice.objects.filter(status=InvoiceStatus.OPEN, sent_at__isnull=True).exists()
    )


def test_invoicing_killed_mid_run_invoices_each_period_once(acme, globex, alice, carol, workers):
    contracts(acme, CONTRACTS // 2)
    contracts(globex, CONTRACTS // 2)
    expected = invoices_generate(dry_run=True).created
    assert expected >= 2 * CONTRACTS
    first = workers.start(FAULTS_INVOICE_BATCH="2", FAULTS_INVOICE_BATCH_DELAY="0.5")
    run = generate_recurring_invoices.delay()
    wait_for(Invoice.objects.exists, "the first batch of invoices")
    first.kill()  # just after a batch committed, and perhaps with the next claimed: its transaction dies with it

    written = Invoice.objects.count()
    assert 0 < written < expected
    assert run.id in first.unfinished()
    after_visibility_timeout()
    second = workers.start()
    wait_for(lambda: f"{run.id}] succeeded" in second.output(), "the dead worker's run to be handed over and finish")
    assert Invoice.objects.count() == expected
    # A worker killed between a batch's commit and queueing its email job loses that job; beat's hourly sweep finds
    # the invoices still unsent an hour on and queues them again (sending twice what was sent is refused).
    with time_machine.travel(timezone.now() + UNSENT_GRACE + timedelta(minutes=1)):
        send_unsent_invoices()
    wait_for(lambda: invoicing_done(expected), "every invoice to be emailed")

    invoices = list(Invoice.objects.order_by("contract_id", "period_start"))
    assert len(invoices) == expected
    for contract in Contract.objects.all():
        periods = [(i.period_start, i.period_end) for i in invoices if i.contract_id == contract.pk]
        assert len(periods) == expected // CONTRACTS  # all started the same day
        assert all(end == next_start for (_, end), (next_start, _) in itertools.pairwise(periods))  # no gap, no overlap
        assert contract.next_period_start == periods[-1][1]
    for organization in (acme, globex):
        numbers = sorted(i.number or 0 for i in invoices if i.organization_id == organization.pk)
        assert numbers == list(range(1, len(numbers) + 1))  # gapless, none given twice
    assert {i.status for i in invoices} == {InvoiceStatus.OPEN}
    created = Counter(Event.objects.filter(type="invoice.created").values_list("payload__id", flat=True))
    assert created == Counter({str(i.pk): 1 for i in invoices})  # each announced once
    notices = Notice.objects.filter(event_type="invoice.issued")
    emailed = Counter(notices.values_list("organization_id", "context__reference"))
    assert emailed == Counter({(i.organization_id, i.reference): 1 for i in invoices})  # each emailed once


# -- webhook deliveries -----------------------------------------------------------------------------------------------

EVENTS = 8
HELD = 4  # the POST in flight when the worker is killed


class Receiver:
    """A partner's webhook endpoint: records each POST's event id and answers 200, except that it holds the
    ``hold``-th POST open until released (the worker is killed while it waits for the answer)."""

    def __init__(self, hold: int) -> None:
        self.received: list[str] = []
        self.hold = hold
        self.holding = threading.Event()
        self.released = threading.Event()
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    receiver.received.append(self.headers["Keel-Event-Id"])
                    held = len(receiver.received) == receiver.hold
                if held:
                    receiver.holding.set()
                    receiver.released.wait(timeout=30)
                with contextlib.suppress(OSError):  # the sender may be gone
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/keel"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    endpoint = Receiver(hold=HELD)
    yield endpoint
    endpoint.close()


@pytest.mark.parametrize("relay", [False, True], ids=["task-per-event", "relay"])
def test_webhooks_killed_mid_delivery_reach_the_endpoint(acme, receiver, workers, broker, settings, relay):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    if relay:  # commits ring the doorbell in the Redis the workers share, as in production (events.services)
        settings.CACHES = {"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": broker.url}}
        settings.EVENTS_RELAY = True
    endpoint, _ = endpoint_create(url=receiver.url, event_types=["*"], organization=acme)
    first = workers.start()
    events = [
        publish(acme, "ticket.created", {"number": f"T-{1000 + index}", "subject": "Printer"})
        for index in range(EVENTS)
    ]
    wait_for(receiver.holding.is_set, "a delivery to be in flight")
    first.kill()
    receiver.released.set()

    held = WebhookDelivery.objects.get(endpoint=endpoint, event_id=receiver.received[HELD - 1])
    assert held.state == WebhookState.RUNNING  # its answer never reached Keel
    interrupted = first.unfinished()
    assert interrupted  # the flush that was sending it
    after_visibility_timeout()
    second = workers.start()
    wait_for(lambda: interrupted <= second.tasks("succeeded"), "the interrupted flush to be handed over and finish")

    def delivered() -> int:
        return WebhookDelivery.objects.filter(endpoint=endpoint, state=WebhookState.SUCCEEDED).count()

    wait_for(lambda: delivered() >= EVENTS - 1, "every other delivery")
    # The claim is left alone until CLAIM_TIMEOUT has passed (its worker might yet answer); then beat's sweep finds it
    # abandoned and sends the event again.
    stale = timezone.now() - CLAIM_TIMEOUT - timedelta(seconds=1)
    WebhookDelivery.objects.filter(pk=held.pk, state=WebhookState.RUNNING).update(claimed_at=stale)
    webhooks_due.delay()
    wait_for(lambda: delivered() == EVENTS, "the abandoned delivery to be sent again")

    ids = [str(event.pk) for event in events]
    assert Counter(receiver.received) == Counter({**dict.fromkeys(ids, 1), str(held.event_id): 2})
    fanned_by = "events.tasks.relay[" if relay else "events.tasks.fan_out["
    assert fanned_by in first.output() + second.output()
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert sorted(str(d.event_id) for d in deliveries) == sorted(ids)  # one delivery per event
    assert {d.pk: d.attempts for d in deliveries} == {d.pk: 2 if d.pk == held.pk else 1 for d in deliveries}
