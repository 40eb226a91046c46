"""Partner webhooks: the signature recipe, SSRF refusal, fan-out to subscribed endpoints, signed deliveries, retries
for about a day (longer waits when an endpoint's Retry-After asks for them), an endpoint asking Keel to slow down,
the disable rule, at-least-once after a dead worker, and a real receiver on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests
import responses
import time_machine
from django.core import mail

from events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookState
from events.services import publish
from events.signing import header_value, verify
from events.webhooks import (
    CLAIM_TIMEOUT,
    DISABLE_AFTER,
    LONGEST_WAIT,
    RETRY_DELAYS,
    _claim,
    delivery_redeliver,
    due_endpoints,
    endpoint_create,
    endpoint_flush,
    endpoint_ping,
    endpoint_rotate,
    endpoint_secret,
    endpoint_update,
    fan_out,
)
from tenancy.errors import ServiceValidationError

pytestmark = pytest.mark.django_db

URL = "https://hooks.partner.test/keel"
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch):
    """Names resolve to a public address, as on the internet; tests that need private ones say so."""

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        address = host if host.replace(".", "").isdigit() else "93.184.216.34"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def sent(call: Any) -> tuple[bytes, str]:
    """The body and the signature header of a request ``responses`` recorded."""
    body = call.request.body
    assert isinstance(body, bytes)
    return body, str(call.request.headers["Keel-Signature"])


def test_the_documented_recipe_verifies_a_signature():
    body = b'{"id":"1","type":"ticket.created"}'
    header = header_value("whsec_test", body, 1_700_000_000)
    assert verify("whsec_test", body, header, now=1_700_000_100)
    assert not verify("whsec_other", body, header, now=1_700_000_100)  # wrong secret
    assert not verify("whsec_test", body + b" ", header, now=1_700_000_100)  # body changed
    assert not verify("whsec_test", body, header, now=1_700_000_301)  # too old: a replay
    assert not verify("whsec_test", body, None)
    assert not verify("whsec_test", body, "t=abc,v1=00")
    rotated = f"{header},v1={'0' * 64}"
    assert verify("whsec_test", body, rotated, now=1_700_000_000)  # any v1 may match


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "private or reserved"),
        ("https://10.1.2.3/hook", "private or reserved"),
        ("https://169.254.169.254/latest/meta-data", "private or reserved"),
        ("https://[::1]/hook", "private or reserved"),
        ("ftp://hooks.partner.test/", "https://"),
        ("https://user:pw@hooks.partner.test/", "credentials"),
        ("", "required"),
    ],
)
def test_endpoints_refuse_addresses_inside_the_network(acme, url, reason, monkeypatch):
    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (host, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(ServiceValidationError) as bad:
        endpoint_create(organization=acme, url=url, event_types=["*"])
    assert reason in bad.value.message_dict["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_a_name_that_resolves_inside_the_network_is_refused(acme, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [(2, 1, 6, "", ("192.168.1.20", port))])
    with pytest.raises(ServiceValidationError) as bad:
        endpoint_create(organization=acme, url="https://intranet.partner.test/", event_types=["*"])
    assert "192.168.1.20" in bad.value.message_dict["url"][0]


def test_event_types_are_checked(acme):
    with pytest.raises(ServiceValidationError) as bad:
        endpoint_create(organization=acme, url=URL, event_types=["ticket.created", "ticket.exploded"])
    assert bad.value.message_dict == {"event_types": ["Unknown event types: ticket.exploded."]}
    with pytest.raises(ServiceValidationError):
        endpoint_create(organization=acme, url=URL, event_types=[])


def test_the_secret_is_shown_once_and_stored_encrypted(acme):
    endpoint, secret = endpoint_create(organization=acme, url=URL, event_types=["ticket.created"])
    assert secret.startswith("whsec_") and len(secret) > 40
    assert secret not in endpoint.secret_encrypted
    assert endpoint_secret(endpoint) == secret and endpoint.secret_prefix == secret[:12]
    rotated = endpoint_rotate(endpoint=endpoint)
    assert rotated != secret and endpoint_secret(WebhookEndpoint.objects.get()) == rotated


def test_events_fan_out_to_the_endpoints_that_take_them(acme, globex, summit):
    tickets, _ = endpoint_create(organization=acme, url=URL, event_types=["ticket.created"])
    invoices, _ = endpoint_create(organization=acme, url=URL + "/i", event_types=["invoice.paid"])
    partner_wide, _ = endpoint_create(partner=summit, url=URL + "/p", event_types=["*"])
    theirs, _ = endpoint_create(organization=globex, url=URL + "/g", event_types=["*"])
    off, _ = endpoint_create(organization=acme, url=URL + "/off", event_types=["*"])
    endpoint_update(endpoint=off, active=False)
    event = Event.objects.create(organization=acme, type="ticket.created", payload={"number": 7})
    fan_out(event)
    fan_out(event)  # again: nothing new
    assert set(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == {tickets.pk, partner_wide.pk}
    assert WebhookDelivery.objects.count() == 2
    assert invoices.pk and theirs.pk


def _deliveries_to(endpoint):
    return list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id"))


@responses.activate
def test_a_delivery_is_signed_and_logged(acme):
    endpoint, secret = endpoint_create(organization=acme, url=URL, event_types=["*"])
    responses.post(URL, status=200, body="ok thanks")
    with time_machine.travel(NOW, tick=False):
        event = Event.objects.create(
            organization=acme, type="invoice.paid", payload={"number": "INV-1", "total": "10.00"}
        )
        fan_out(event)
        assert endpoint_flush(endpoint.pk) == 1
    (call,) = responses.calls
    body, signature = sent(call)
    assert json.loads(body) == {
        "id": str(event.pk),
        "type": "invoice.paid",
        "created": "2026-11-23T01:00:00+00:00",
        "organization": str(acme.pk),
        "data": {"number": "INV-1", "total": "10.00"},
    }
    assert verify(secret, body, signature, now=NOW.timestamp())
    assert call.request.headers["Keel-Event-Type"] == "invoice.paid"
    (delivery,) = _deliveries_to(endpoint)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == (WebhookState.SUCCEEDED, 1, 200)
    (attempt,) = WebhookAttempt.objects.all()
    assert (attempt.status_code, attempt.response_excerpt, attempt.error) == (200, "ok thanks", "")


@responses.activate
def test_failures_are_retried_for_about_a_day_then_given_up(acme):
    endpoint, _ = endpoint_create(organization=acme, url=URL, event_types=["*"])
    responses.post(URL, status=503, body="down")
    with time_machine.travel(NOW, tick=False) as traveller:
        fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={}))
        waited = timedelta(0)
        for delay in RETRY_DELAYS:
            assert endpoint_flush(endpoint.pk) == 1
            (delivery,) = _deliveries_to(endpoint)
            assert delivery.state == WebhookState.RETRYING
            assert delivery.next_attempt_at == NOW + waited + timedelta(seconds=delay)
            assert endpoint_flush(endpoint.pk) == 0  # not due yet
            traveller.shift(timedelta(seconds=delay))
            waited += timedelta(seconds=delay)
        assert endpoint_flush(endpoint.pk) == 1
    (delivery,) = _deliveries_to(endpoint)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == (WebhookState.FAILED, 8, 503)
    assert timedelta(hours=22) < waited < timedelta(hours=24)
    assert WebhookAttempt.objects.count() == 8
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1 and endpoint.active


@pytest.mark.parametrize(
    ("status", "retry_after", "wait", "slow_down"),
    [
        (429, "600", timedelta(minutes=10), True),
        (503, "Mon, 23 Nov 2026 01:20:00 GMT", timedelta(minutes=20), True),
        (429, "86400", LONGEST_WAIT, True),  # a day asked for: the longest of Keel's own waits at most
        (429, None, timedelta(seconds=RETRY_DELAYS[0]), True),
        (503, None, timedelta(seconds=RETRY_DELAYS[0]), False),  # an outage, not a request to slow down
        (500, "600", timedelta(seconds=RETRY_DELAYS[0]), False),  # Retry-After only counts on a 429 or a 503
    ],
    ids=["429-seconds", "503-http-date", "429-capped", "429-no-advice", "503-no-advice", "500"],
)
@responses.activate
def test_a_retry_waits_as_long_as_the_endpoint_asked(acme, status, retry_after, wait, slow_down):
    endpoint, _ = endpoint_create(organization=acme, url=URL, event_types=["*"])
    responses.post(URL, status=status, body="busy", headers={"Retry-After": retry_after} if retry_after else {})
    with time_machine.travel(NOW, tick=False):
        for _ in range(2):
            fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={}))
        assert endpoint_flush(endpoint.pk) == (1 if slow_down else 2)
    first = _deliveries_to(endpoint)[0]
    assert (first.state, first.attempts, first.next_attempt_at) == (WebhookState.RETRYING, 1, NOW + wait)
    endpoint.refresh_from_db()
    assert endpoint.paused_until == (NOW + wait if slow_down else None)


@responses.activate
def test_an_endpoint_that_asks_to_slow_down_gets_the_rest_once_after_the_wait(acme):
    endpoint, _ = endpoint_create(organization=acme, url=URL, event_types=["*"])
    responses.post(URL, status=429, body="slow down", headers={"Retry-After": "600"})
    responses.post(URL, status=200)
    pause = timedelta(minutes=10)
    with time_machine.travel(NOW, tick=False) as traveller:
        for number in (1, 2, 3):
            fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={"number": number}))
            traveller.shift(timedelta(seconds=1))
        assert endpoint_flush(endpoint.pk) == 1
        assert len(responses.calls) == 1  # the flush stopped at the 429
        first, *rest = _deliveries_to(endpoint)
        paused_until = NOW + timedelta(seconds=3) + pause
        assert (first.state, first.attempts, first.next_attempt_at) == (WebhookState.RETRYING, 1, paused_until)
        # The others were not tried: still pending, no attempt spent, due when the pause ends.
        assert [(d.state, d.attempts, d.next_attempt_at) for d in rest] == [(WebhookState.PENDING, 0, paused_until)] * 2
        assert due_endpoints() == []
        fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={"number": 4}))
        assert _deliveries_to(endpoint)[-1].next_attempt_at == paused_until  # a new event waits too
        traveller.shift(pause - timedelta(seconds=1))
        assert endpoint_flush(endpoint.pk) == 0 and due_endpoints() == []
        assert len(responses.calls) == 1
        traveller.shift(timedelta(seconds=1))
        assert due_endpoints() == [str(endpoint.pk)]
        assert endpoint_flush(endpoint.pk) == 4
        assert endpoint_flush(endpoint.pk) == 0
    posted = [json.loads(sent(call)[0])["data"]["number"] for call in responses.calls]
    assert posted == [1, 1, 2, 3, 4]  # each event once after the wait, oldest first
    assert {d.state for d in _deliveries_to(endpoint)} == {WebhookState.SUCCEEDED}


@responses.activate
def test_an_endpoint_is_switched_off_after_ten_events_in_a_row_fail(acme, alice, django_capture_on_commit_callbacks):
    endpoint, _ = endpoint_create(organization=acme, url=URL, event_types=["*"])
    endpoint.consecutive_failures = DISABLE_AFTER - 1
    endpoint.save()
    responses.post(URL, body=requests.ConnectionError("refused"))
    fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={}))
    WebhookDelivery.objects.update(attempts=len(RETRY_DELAYS))  # its last try
    with django_capture_on_commit_callbacks(execute=True):
        endpoint_flush(endpoint.pk)
    endpoint.refresh_from_db()
    assert not endpoint.active and endpoint.disabled_at is not None
    assert endpoint.disabled_reason == "10 events in a row could not be delivered."
    (message,) = mail.outbox
    assert message.to == [alice.email] and URL in message.subject
    assert "ConnectionError" in WebhookAttempt.objects.get().error
    # Nothing more goes to it; switching it back on clears the count.
    fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={}))
    assert WebhookDelivery.objects.count() == 1
    endpoint_update(endpoint=endpoint, active=True)
    assert endpoint.consecutive_failures == 0 and endpoint.disabled_at is None


@responses.activate
def test_a_success_resets_the_count_of_failures(acme):
    endpoint, _ = endpoint_create(organization=acme, url=URL, event_types=["*"])
    WebhookEndpoint.objects.update(consecutive_failures=4)
    responses.post(URL, status=204)
    fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={}))
    endpoint_flush(endpoint.pk)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


@responses.activate
def test_a_delivery_whose_worker_died_is_sent_again(acme):
    endpoint, _ = endpoint_create(organization=acme, url=URL, event_types=["*"])
    responses.post(URL, status=200)
    with time_machine.travel(NOW, tick=False) as traveller:
        fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={}))
        claimed = _claim(endpoint.pk)  # the worker claims it, then dies before it records anything
        assert claimed is not None and claimed.state == WebhookState.RUNNING
        assert endpoint_flush(endpoint.pk) == 0 and due_endpoints() == []
        traveller.shift(CLAIM_TIMEOUT + timedelta(seconds=1))
        assert due_endpoints() == [str(endpoint.pk)]
        assert endpoint_flush(endpoint.pk) == 1
    (delivery,) = _deliveries_to(endpoint)
    assert (delivery.state, delivery.attempts) == (WebhookState.SUCCEEDED, 2)
    assert len(responses.calls) == 1


@responses.activate
def test_deliveries_go_oldest_event_first(acme):
    endpoint, _ = endpoint_create(organization=acme, url=URL, event_types=["*"])
    responses.post(URL, status=200)
    with time_machine.travel(NOW, tick=False) as traveller:
        for number in (1, 2, 3):
            event = Event.objects.create(organization=acme, type="ticket.created", payload={"number": number})
            traveller.shift(timedelta(seconds=1))
        for event in Event.objects.order_by("-created_at"):  # fanned out newest first
            fan_out(event)
        endpoint_flush(endpoint.pk)
    assert [json.loads(sent(call)[0])["data"]["number"] for call in responses.calls] == [1, 2, 3]


@responses.activate
def test_ping_and_redeliver(acme, django_capture_on_commit_callbacks):
    endpoint, _ = endpoint_create(organization=acme, url=URL, event_types=["ticket.created"])
    responses.post(URL, status=500, body="nope")
    with django_capture_on_commit_callbacks(execute=True):  # queued until commit, then sent by a worker
        ping = endpoint_ping(endpoint=endpoint)
        assert len(responses.calls) == 0
    ping.refresh_from_db()
    assert (ping.state, ping.last_status_code) == (WebhookState.FAILED, 500)  # a ping is not retried
    assert ping.event.type == "webhook.ping"
    responses.replace(responses.POST, URL, status=200)
    again = delivery_redeliver(delivery=ping)
    assert (again.state, again.attempts) == (WebhookState.PENDING, 0)
    endpoint_flush(endpoint.pk)
    ping.refresh_from_db()
    assert ping.state == WebhookState.SUCCEEDED and ping.attempt_log.count() == 2


@responses.activate
def test_a_published_event_reaches_the_endpoint_end_to_end(acme, django_capture_on_commit_callbacks):
    _, secret = endpoint_create(organization=acme, url=URL, event_types=["ticket.created"])
    responses.post(URL, status=200)
    with django_capture_on_commit_callbacks(execute=True):
        publish(acme, "ticket.created", {"number": 9})
    (call,) = responses.calls
    body, signature = sent(call)
    assert json.loads(body)["data"] == {"number": 9}
    assert verify(secret, body, signature)
    assert WebhookDelivery.objects.get().state == WebhookState.SUCCEEDED


class _Receiver(BaseHTTPRequestHandler):
    """A partner's receiver, written from docs/webhooks.md: verify, then answer 204 (or 400)."""

    secret = ""
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not verify(self.secret, body, self.headers.get("Keel-Signature")):
            self.send_response(400)
            self.end_headers()
            return
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def test_a_real_receiver_on_loopback_verifies_the_deliveries(acme, settings, monkeypatch):
    monkeypatch.undo()  # real name resolution for the loopback server
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hooks"
        endpoint, secret = endpoint_create(organization=acme, url=url, event_types=["*"])
        _Receiver.secret, _Receiver.received = secret, []
        for number in (1, 2):
            fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={"number": number}))
            time.sleep(0.001)
        assert endpoint_flush(endpoint.pk) == 2
        assert [body["data"]["number"] for body in _Receiver.received] == [1, 2]
        assert set(WebhookDelivery.objects.values_list("state", "last_status_code")) == {(WebhookState.SUCCEEDED, 204)}
        # A receiver with another secret refuses them: the signature is what proves Keel sent them.
        _Receiver.secret = "whsec_wrong"
        fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={"number": 3}))
        endpoint_flush(endpoint.pk)
        assert WebhookDelivery.objects.order_by("-id").values_list("last_status_code", flat=True)[0] == 400
    finally:
        server.shutdown()
        server.server_close()


def test_organizations_without_endpoints_get_no_webhook_work(acme, globex, django_capture_on_commit_callbacks):
    from events.models import Delivery
    from events.services import event_fan_out

    endpoint_create(organization=globex, url=URL, event_types=["*"])
    with django_capture_on_commit_callbacks(execute=False):
        event = publish(acme, "ticket.created", {})
    event_fan_out(event_id=event.pk)
    assert not Delivery.objects.filter(event=event, handler="events.webhooks.fan_out").exists()
