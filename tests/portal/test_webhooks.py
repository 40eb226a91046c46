"""Settings, Webhooks: endpoints created with their secret shown once, refusals as form errors (an address inside the
network among them), change, switch back on, delete, rotate, a test ping against recorded HTTP, the delivery log with
its attempts and redelivery; who may use the pages; another organization's endpoints are 404 on every route."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from typing import Any

import pytest
import requests
import responses
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from events import catalogue
from events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookState
from events.signing import verify
from events.webhooks import (
    CLAIM_TIMEOUT,
    MAX_ENDPOINTS,
    endpoint_create,
    endpoint_flush,
    endpoint_ping,
    endpoint_secret,
    ping_send,
)
from tenancy.models import Role
from tests.events.test_webhooks import sent
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "https://hooks.acme-partner.test/keel"
GLOBEX_URL = "https://hooks.globex-secret.test/keel"
INTRANET = "intranet.acme.test"
BASE = 6  # see tests/portal/test_queries.py: user, organizations, second factor, and saving the session


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Names resolve to a public address, as on the internet, except INTRANET (a private one); an IP address resolves
    to itself. Private addresses are refused, whatever the environment says."""
    settings.WEBHOOKS_ALLOW_PRIVATE = False

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host == INTRANET:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.20", port))]
        if ":" in host:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (host, port, 0, 0))]
        address = host if host.replace(".", "").isdigit() else "93.184.216.34"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def acme_endpoint(acme: Any, alice: Any) -> WebhookEndpoint:
    return endpoint_create(organization=acme, url=URL, event_types=["ticket.created"], actor=alice)[0]


@pytest.fixture
def globex_endpoint(globex: Any, carol: Any) -> WebhookEndpoint:
    return endpoint_create(organization=globex, url=GLOBEX_URL, event_types=["*"], description="Globex ERP")[0]


def page(endpoint: WebhookEndpoint, name: str = "settings_webhook") -> str:
    return reverse(f"portal:{name}", args=[endpoint.pk])


def delivery_url(name: str, delivery: WebhookDelivery) -> str:
    return reverse(f"portal:{name}", args=[delivery.endpoint_id, delivery.pk])


def form_data(**values: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"url": URL, "description": "", "event_types": ["ticket.created"], "active": "on"}
    data.update(values)
    return {name: value for name, value in data.items() if value is not None}


def deliver(endpoint: WebhookEndpoint, event_type: str = "ticket.created", **values: Any) -> WebhookDelivery:
    """An event of the endpoint's organization, and its delivery to the endpoint with ``values`` set."""
    event = Event.objects.create(organization=endpoint.organization, type=event_type, payload={"number": 7})
    return WebhookDelivery.objects.create(endpoint=endpoint, event=event, **values)


# -- create: the secret shown once ----------------------------------------------------------------------------------


def test_the_form_groups_the_catalogue(client_for, alice):
    response = client_for(alice).get("/settings/webhooks/new/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Support tickets" in body and "Invoices" in body and "All events" in body
    assert all(f'value="{name}"' in body for name in catalogue.EVENT_TYPES)
    assert escape(catalogue.EVENT_TYPES["ticket.sla_breached"][0]) in body
    assert catalogue.PING not in body  # sent by the test button only, never subscribed to


def test_creating_an_endpoint_shows_its_secret_once(client_for, alice, acme):
    client = client_for(alice)
    response = client.post(
        "/settings/webhooks/new/",
        form_data(event_types=["invoice.paid", "ticket.created"], description="Our PSA"),
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    secret = endpoint_secret(endpoint)
    body = response.content.decode()
    assert secret in body and "shown only this once" in body
    assert "no-store" in response["Cache-Control"]
    assert (endpoint.organization, endpoint.partner, endpoint.created_by) == (acme, None, alice)
    assert (endpoint.url, endpoint.description, endpoint.active) == (URL, "Our PSA", True)
    assert endpoint.event_types == ["invoice.paid", "ticket.created"]
    # Not kept for later: not in the session, not on any other page; only its start is shown again.
    assert secret not in repr(dict(client.session.items()))
    for path in ("/settings/webhooks/", page(endpoint), page(endpoint, "settings_webhook_deliveries")):
        later = client.get(path).content.decode()
        assert secret not in later and secret[len("whsec_") :] not in later, path
    assert endpoint.secret_prefix in client.get(page(endpoint)).content.decode()


def test_all_events_and_created_switched_off(client_for, alice):
    response = client_for(alice).post(
        "/settings/webhooks/new/", form_data(all_events="on", event_types=["ticket.created"], active=None)
    )
    assert response.status_code == 200 and "created switched off" in response.content.decode()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["*"] and not endpoint.active


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"url": ""}, "url", "required"),
        ({"url": "ftp://hooks.acme-partner.test/"}, "url", "Use an https:// address."),
        ({"url": "https://user:pw@hooks.acme-partner.test/"}, "url", "Leave credentials out"),
        ({"event_types": None}, "event_types", "Choose at least one event type"),
        ({"event_types": ["ticket.exploded"]}, "event_types", "not one of the available choices"),
        ({"description": "x" * 201}, "description", "at most 200 characters"),
    ],
)
def test_bad_input_is_a_form_error_on_its_field(client_for, alice, values, field, message):
    response = client_for(alice).post("/settings/webhooks/new/", form_data(**values))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and message in errors[field][0]
    assert escape(errors[field][0]) in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.1.2.3/hook", "10.1.2.3, a private or reserved address"),
        ("http://127.0.0.1:8000/hook", "127.0.0.1, a private or reserved address"),
        ("https://169.254.169.254/latest/meta-data", "a private or reserved address"),
        ("https://[::1]/hook", "a private or reserved address"),
        (f"https://{INTRANET}/hook", "192.168.1.20, a private or reserved address"),
    ],
)
def test_addresses_inside_the_network_are_refused_on_the_url_field(client_for, alice, acme_endpoint, url, reason):
    client = client_for(alice)
    created = client.post("/settings/webhooks/new/", form_data(url=url))
    assert created.status_code == 400
    assert reason in created.context["form"].errors["url"][0]
    changed = client.post(page(acme_endpoint), form_data(url=url))
    assert changed.status_code == 400 and reason in changed.context["form"].errors["url"][0]
    assert [endpoint.url for endpoint in WebhookEndpoint.objects.all()] == [URL]


def test_the_limit_of_endpoints_is_shown_on_the_form(client_for, alice, acme):
    for number in range(MAX_ENDPOINTS):
        endpoint_create(organization=acme, url=f"{URL}/{number}", event_types=["*"])
    response = client_for(alice).post("/settings/webhooks/new/", form_data())
    assert response.status_code == 400
    assert response.context["form"].errors["url"] == [f"At most {MAX_ENDPOINTS} endpoints; remove one first."]
    assert WebhookEndpoint.objects.count() == MAX_ENDPOINTS


# -- the list, change, switch back on, delete -----------------------------------------------------------------------


def test_the_list_shows_state_failures_and_last_delivery(client_for, alice, acme, acme_endpoint):
    off, _ = endpoint_create(organization=acme, url=URL + "/off", event_types=["*"], description="Old CRM")
    WebhookEndpoint.objects.filter(pk=off.pk).update(
        active=False, consecutive_failures=10, disabled_reason="10 events in a row could not be delivered."
    )
    deliver(acme_endpoint, state=WebhookState.SUCCEEDED, last_status_code=204)
    response = client_for(alice).get("/settings/webhooks/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "New endpoint" in body and URL in body and "Old CRM" in body
    assert "All events" in body and "ticket.created" in body
    assert "10 events in a row could not be delivered." in body and "disabled" in body
    assert "Delivered · HTTP 204" in body
    rows = {row["endpoint"].pk: row for row in response.context["rows"]}
    assert rows[off.pk]["last_state"] is None and rows[acme_endpoint.pk]["last_state"] == WebhookState.SUCCEEDED


def test_change_an_endpoint(client_for, alice, acme_endpoint):
    client = client_for(alice)
    form = client.get(page(acme_endpoint)).context["form"]
    assert form.initial["event_types"] == ["ticket.created"] and form.initial["active"] is True
    response = client.post(
        page(acme_endpoint),
        form_data(url=URL + "/v2", description="PSA", event_types=["invoice.paid", "ticket.closed"]),
    )
    assert response.status_code == 302 and response["Location"] == page(acme_endpoint)
    acme_endpoint.refresh_from_db()
    assert (acme_endpoint.url, acme_endpoint.description) == (URL + "/v2", "PSA")
    assert acme_endpoint.event_types == ["invoice.paid", "ticket.closed"]
    switched_off = client.post(page(acme_endpoint), form_data(url=URL, active=None), follow=True)
    assert "switched off" in switched_off.content.decode()
    acme_endpoint.refresh_from_db()
    assert not acme_endpoint.active
    unchanged = client.post(page(acme_endpoint), form_data(event_types=None, all_events=None))
    assert unchanged.status_code == 400 and "event_types" in unchanged.context["form"].errors


def test_switching_a_disabled_endpoint_back_on_clears_its_failures(client_for, alice, acme_endpoint):
    reason = "10 events in a row could not be delivered."
    WebhookEndpoint.objects.filter(pk=acme_endpoint.pk).update(
        active=False, consecutive_failures=10, disabled_reason=reason
    )
    client = client_for(alice)
    shown = client.get(page(acme_endpoint)).content.decode()
    assert reason in shown and "switch it back on" in shown
    response = client.post(page(acme_endpoint), form_data(), follow=True)
    assert "switched back on" in response.content.decode()
    acme_endpoint.refresh_from_db()
    assert acme_endpoint.active and acme_endpoint.consecutive_failures == 0
    assert (acme_endpoint.disabled_at, acme_endpoint.disabled_reason) == (None, "")


def test_delete_asks_first_then_deletes_the_endpoint_and_its_log(client_for, alice, acme_endpoint):
    deliver(acme_endpoint)
    client = client_for(alice)
    confirm = client.get(page(acme_endpoint, "settings_webhook_delete"))
    assert confirm.status_code == 200 and "Delete this webhook endpoint?" in confirm.content.decode()
    assert WebhookEndpoint.objects.filter(pk=acme_endpoint.pk).exists()
    response = client.post(page(acme_endpoint, "settings_webhook_delete"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:settings_webhooks")
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
    assert client.get(page(acme_endpoint)).status_code == 404


# -- rotate and test ------------------------------------------------------------------------------------------------


def test_rotating_shows_the_new_secret_once(client_for, alice, acme_endpoint):
    old = endpoint_secret(acme_endpoint)
    client = client_for(alice)
    assert client.get(page(acme_endpoint, "settings_webhook_rotate")).status_code == 405
    response = client.post(page(acme_endpoint, "settings_webhook_rotate"))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    acme_endpoint.refresh_from_db()
    new = endpoint_secret(acme_endpoint)
    body = response.content.decode()
    assert new != old and new in body and old not in body and "shown only this once" in body
    assert new not in client.get(page(acme_endpoint)).content.decode()


def ping(client: Any, endpoint: Any, capture: Any, **headers: Any) -> tuple[str, str]:
    """Press "Send test ping": the page that says it is being sent, and the answer its result then asks for."""
    with capture(execute=True):  # the ping is queued when the request commits; a worker (inline here) sends it
        sending = client.post(page(endpoint, "settings_webhook_test"), **headers)
    assert sending.status_code == 200 and "no-cache" in sending["Cache-Control"]
    delivery = WebhookDelivery.objects.latest("created_at")
    answer = client.get(delivery_url("settings_webhook_delivery", delivery) + "?ping=1", **headers)
    assert answer.status_code == 200
    return sending.content.decode(), answer.content.decode()


@responses.activate
def test_a_test_ping_is_sent_by_a_worker_and_its_page_shows_what_came_back(
    client_for, alice, acme_endpoint, django_capture_on_commit_callbacks
):
    responses.post(URL, status=200, body="pong from the receiver")
    client = client_for(alice)
    sending, answer = ping(client, acme_endpoint, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    poll = delivery_url("settings_webhook_delivery", delivery) + "?ping=1"
    assert "Sending the ping" in sending and f'hx-get="{poll}" hx-trigger="load delay:1s"' in sending
    assert "Delivered: your endpoint answered HTTP 200" in answer and "pong from the receiver" in answer
    assert f"{delivery.attempt_log.get().latency_ms} ms" in answer and "?ping=1" not in answer  # no more asking
    (call,) = responses.calls
    assert verify(endpoint_secret(acme_endpoint), *sent(call))
    assert call.request.headers["Keel-Event-Type"] == catalogue.PING
    delivery.refresh_from_db()
    assert (delivery.state, delivery.last_status_code) == (WebhookState.SUCCEEDED, 200)

    responses.replace(responses.POST, URL, status=500, body="Internal Server Error")
    _, failed = ping(client, acme_endpoint, django_capture_on_commit_callbacks, HTTP_HX_REQUEST="true")
    assert "<html" not in failed  # htmx gets the result alone
    assert "Not delivered: your endpoint answered HTTP 500" in failed and "Internal Server Error" in failed

    responses.replace(responses.POST, URL, body=requests.ConnectionError("connection refused"))
    _, unreachable = ping(client, acme_endpoint, django_capture_on_commit_callbacks)
    assert "Not delivered: ConnectionError: connection refused" in unreachable
    assert len(responses.calls) == 3  # each ping once, never retried


def test_a_ping_no_worker_sent_stops_being_asked_for_and_says_it_is_queued(client_for, alice, acme_endpoint):
    client = client_for(alice)
    with responses.RequestsMock() as recorded:
        sending = client.post(page(acme_endpoint, "settings_webhook_test")).content.decode()  # never committed here
        assert len(recorded.calls) == 0
    assert "Sending the ping" in sending
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    later = client.get(delivery_url("settings_webhook_delivery", delivery) + "?ping=1").content.decode()
    assert "has not been sent yet: it is queued" in later and "?ping=1" not in later


def test_pressing_test_again_while_a_ping_is_on_its_way_sends_no_other(acme_endpoint):
    with responses.RequestsMock() as recorded:
        recorded.post(URL, status=204)
        first = endpoint_ping(endpoint=acme_endpoint)  # not sent yet: nothing committed here
        again = endpoint_ping(endpoint=acme_endpoint)
        assert again.pk == first.pk and WebhookDelivery.objects.count() == 1
        assert ping_send(delivery_id=first.pk) is True
        answered_then_again = endpoint_ping(endpoint=acme_endpoint)  # the first was answered: a new ping
        assert answered_then_again.pk != first.pk
        assert len(recorded.calls) == 1


def test_a_ping_is_sent_once_however_often_its_job_runs(acme_endpoint):
    responses_mock = responses.RequestsMock()
    with responses_mock:
        responses_mock.post(URL, status=204)
        delivery = endpoint_ping(endpoint=acme_endpoint)
        assert ping_send(delivery_id=delivery.pk) is True
        assert ping_send(delivery_id=delivery.pk) is False
        assert len(responses_mock.calls) == 1


def test_a_ping_whose_job_runs_twice_at_once_is_posted_once(acme_endpoint):
    again: list[bool] = []

    def answer(request):  # the second job starts while the first is waiting for the endpoint's answer
        again.append(ping_send(delivery_id=delivery.pk))
        return (204, {}, "")

    with responses.RequestsMock() as recorded:
        recorded.add_callback(responses.POST, URL, callback=answer)
        delivery = endpoint_ping(endpoint=acme_endpoint)
        assert ping_send(delivery_id=delivery.pk) is True
        assert again == [False] and len(recorded.calls) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.attempt_log.count()) == (WebhookState.SUCCEEDED, 1, 1)


def test_a_ping_whose_job_vanished_is_sent_by_the_sweep_once_and_not_retried(acme_endpoint):
    delivery = endpoint_ping(endpoint=acme_endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(claimed_at=timezone.now() - CLAIM_TIMEOUT * 2)
    with responses.RequestsMock() as recorded:
        recorded.post(URL, status=500)
        assert endpoint_flush(acme_endpoint.pk) == 1
        assert ping_send(delivery_id=delivery.pk) is False  # the queued job turns up late: nothing more is sent
        assert len(recorded.calls) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (WebhookState.FAILED, 1)


def test_a_ping_to_an_address_that_now_resolves_inside_the_network_is_not_sent(
    client_for, alice, acme_endpoint, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [(2, 1, 6, "", ("10.0.0.8", port))])
    with responses.RequestsMock() as recorded:
        _, answer = ping(client_for(alice), acme_endpoint, django_capture_on_commit_callbacks)
        assert len(recorded.calls) == 0
    assert "Refused: " in answer


# -- deliveries -----------------------------------------------------------------------------------------------------


def test_the_delivery_log_newest_first_filtered_with_attempts(client_for, alice, acme_endpoint):
    delivered = deliver(acme_endpoint, state=WebhookState.SUCCEEDED, attempts=1, last_status_code=200)
    WebhookAttempt.objects.create(delivery=delivered, status_code=200, latency_ms=87, response_excerpt="thanks!")
    retrying = deliver(acme_endpoint, "ticket.closed", state=WebhookState.RETRYING, attempts=2, last_status_code=503)
    WebhookAttempt.objects.create(delivery=retrying, status_code=503, latency_ms=40, response_excerpt="busy")
    WebhookAttempt.objects.create(delivery=retrying, status_code=None, latency_ms=10000, error="ReadTimeout: slow")
    client = client_for(alice)
    response = client.get(page(acme_endpoint, "settings_webhook_deliveries"))
    assert response.status_code == 200
    assert [item.pk for item in response.context["deliveries"]] == [retrying.pk, delivered.pk]
    assert [item.logged for item in response.context["deliveries"]] == [2, 1]
    body = response.content.decode()
    assert "ticket.closed" in body and "Failed, will retry" in body and "HTTP 503" in body and "Redeliver" in body

    failed_only = client.get(page(acme_endpoint, "settings_webhook_deliveries") + "?state=RETRYING")
    assert [item.pk for item in failed_only.context["deliveries"]] == [retrying.pk]
    none = client.get(page(acme_endpoint, "settings_webhook_deliveries") + "?state=FAILED")
    assert none.context["deliveries"] == [] and "No deliveries in this state" in none.content.decode()
    unknown = client.get(page(acme_endpoint, "settings_webhook_deliveries") + "?state=LOST")
    assert unknown.status_code == 200 and len(unknown.context["deliveries"]) == 2
    partial = client.get(page(acme_endpoint, "settings_webhook_deliveries") + "?state=RETRYING", HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and "ticket.closed" in partial.content.decode()
    assert "HX-Request" in partial["Vary"]
    # htmx restoring its history (back button) needs the whole page.
    restored = client.get(
        page(acme_endpoint, "settings_webhook_deliveries"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert "<html" in restored.content.decode()

    # A row expands to its attempts (htmx), or opens the delivery's page.
    attempts = client.get(delivery_url("settings_webhook_delivery", retrying), HTTP_HX_REQUEST="true")
    attempts_body = attempts.content.decode()
    assert "<html" not in attempts_body
    assert "ReadTimeout: slow" in attempts_body and "HTTP 503" in attempts_body and "busy" in attempts_body
    assert "10000 ms" in attempts_body and "40 ms" in attempts_body
    full = client.get(delivery_url("settings_webhook_delivery", delivered)).content.decode()
    assert "thanks!" in full and "87 ms" in full and escape('"number": 7') in full and str(delivered.event_id) in full


def test_the_delivery_log_is_paginated(client_for, alice, acme_endpoint):
    for _ in range(27):
        deliver(acme_endpoint)
    client = client_for(alice)
    first = client.get(page(acme_endpoint, "settings_webhook_deliveries"))
    assert first.context["page"].paginator.count == 27 and len(first.context["deliveries"]) == 25
    second = client.get(page(acme_endpoint, "settings_webhook_deliveries") + "?page=2")
    assert len(second.context["deliveries"]) == 2
    seen = {item.pk for item in first.context["deliveries"]} | {item.pk for item in second.context["deliveries"]}
    assert len(seen) == 27


@responses.activate
def test_redeliver_sends_a_delivery_again(client_for, alice, acme_endpoint, django_capture_on_commit_callbacks):
    delivery = deliver(acme_endpoint, state=WebhookState.FAILED, attempts=8, last_status_code=500)
    responses.post(URL, status=200, body="ok")
    client = client_for(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(delivery_url("settings_webhook_redeliver", delivery), {"state": "FAILED", "page": "1"})
    assert response.status_code == 302
    assert response["Location"] == page(acme_endpoint, "settings_webhook_deliveries") + "?state=FAILED&page=1"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == (WebhookState.SUCCEEDED, 1, 200)
    assert len(responses.calls) == 1
    shown = client.get(response["Location"]).content.decode()
    assert "being sent again" in shown

    # From the delivery's page, back to it; the filter sent back is only ever a known state and a page number.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state=WebhookState.FAILED)
    back = client.post(delivery_url("settings_webhook_redeliver", delivery), {"return_to": "delivery"})
    assert back["Location"] == delivery_url("settings_webhook_delivery", delivery)
    odd = client.post(
        delivery_url("settings_webhook_redeliver", delivery), {"state": "x&y=//evil.test", "page": "1;drop"}
    )
    assert odd["Location"] == page(acme_endpoint, "settings_webhook_deliveries")


def test_redelivering_to_a_disabled_endpoint_waits_for_it(client_for, alice, acme_endpoint):
    delivery = deliver(acme_endpoint, state=WebhookState.FAILED, attempts=8)
    WebhookEndpoint.objects.filter(pk=acme_endpoint.pk).update(active=False)
    response = client_for(alice).post(delivery_url("settings_webhook_redeliver", delivery), follow=True)
    assert "sent when the endpoint is switched back on" in response.content.decode()
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (WebhookState.PENDING, 0)


# -- who may use the pages ------------------------------------------------------------------------------------------


def all_routes(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> list[tuple[str, str]]:
    """Every webhook page with the method that uses it."""
    return [
        ("get", "/settings/webhooks/"),
        ("get", "/settings/webhooks/new/"),
        ("post", "/settings/webhooks/new/"),
        ("get", page(endpoint)),
        ("post", page(endpoint)),
        ("get", page(endpoint, "settings_webhook_delete")),
        ("post", page(endpoint, "settings_webhook_delete")),
        ("post", page(endpoint, "settings_webhook_rotate")),
        ("post", page(endpoint, "settings_webhook_test")),
        ("get", page(endpoint, "settings_webhook_deliveries")),
        ("get", delivery_url("settings_webhook_delivery", delivery)),
        ("post", delivery_url("settings_webhook_redeliver", delivery)),
    ]


def test_members_and_managers_cannot_use_webhooks(client_for, alice, bob, acme, acme_endpoint):
    manager = UserFactory(email="mandy@acme.test")
    MembershipFactory(user=manager, organization=acme, role=Role.MANAGER)
    delivery = deliver(acme_endpoint, state=WebhookState.FAILED, attempts=8)
    secret = endpoint_secret(acme_endpoint)
    for user in (bob, manager):
        client = client_for(user)
        assert "Webhooks" not in client.get("/settings/profile/").content.decode()
        for method, path in all_routes(acme_endpoint, delivery):
            response = getattr(client, method)(path, form_data(url=URL + "/hijack") if method == "post" else None)
            assert response.status_code == 404, (user.email, method, path)
    acme_endpoint.refresh_from_db()
    delivery.refresh_from_db()
    assert acme_endpoint.url == URL and endpoint_secret(acme_endpoint) == secret
    assert WebhookEndpoint.objects.count() == 1 and (delivery.state, delivery.attempts) == (WebhookState.FAILED, 8)
    assert '<a href="/settings/webhooks/"' in client_for(alice).get("/settings/profile/").content.decode()


def test_partner_admins_manage_the_organizations_endpoints(client_for, pat, acme, acme_endpoint):
    client = client_for(pat)
    assert URL in client.get("/settings/webhooks/").content.decode()
    response = client.post("/settings/webhooks/new/", form_data(url=URL + "/summit"))
    assert response.status_code == 200
    created = WebhookEndpoint.objects.get(url=URL + "/summit")
    assert (created.organization, created.partner, created.created_by) == (acme, None, pat)


def test_every_form_posts_with_a_csrf_token(alice, acme_endpoint):
    delivery = deliver(acme_endpoint)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for path in (page(acme_endpoint), page(acme_endpoint, "settings_webhook_deliveries"),
                 delivery_url("settings_webhook_delivery", delivery), page(acme_endpoint, "settings_webhook_delete"),
                 "/settings/webhooks/new/"):  # fmt: skip
        body = client.get(path).content.decode()
        forms = re.findall(r"<form\b[^>]*>.*?</form>", body, flags=re.S)
        posting = [form for form in forms if 'method="post"' in form]
        assert posting and all("csrfmiddlewaretoken" in form for form in posting), path
    for path in (
        "/settings/webhooks/new/",
        page(acme_endpoint),
        page(acme_endpoint, "settings_webhook_delete"),
        page(acme_endpoint, "settings_webhook_rotate"),
        page(acme_endpoint, "settings_webhook_test"),
        delivery_url("settings_webhook_redeliver", delivery),
    ):
        assert client.post(path, form_data()).status_code == 403, path
    unchanged = WebhookEndpoint.objects.get()
    assert (unchanged.url, unchanged.secret_encrypted) == (URL, acme_endpoint.secret_encrypted)
    assert WebhookDelivery.objects.get().attempts == 0


# -- tenant isolation -----------------------------------------------------------------------------------------------


@pytest.mark.isolation(
    "portal:settings_webhooks",
    "portal:settings_webhook_new",
    "portal:settings_webhook",
    "portal:settings_webhook_delete",
    "portal:settings_webhook_rotate",
    "portal:settings_webhook_test",
    "portal:settings_webhook_deliveries",
    "portal:settings_webhook_delivery",
    "portal:settings_webhook_redeliver",
)
def test_another_organizations_endpoints_and_deliveries_are_404(
    client_for, alice, acme, acme_endpoint, globex_endpoint
):
    theirs = deliver(globex_endpoint, state=WebhookState.FAILED, attempts=8, last_status_code=500)
    WebhookAttempt.objects.create(delivery=theirs, status_code=500, response_excerpt="globex internals")
    ours = deliver(acme_endpoint)
    secret = endpoint_secret(globex_endpoint)
    client = client_for(alice)
    with responses.RequestsMock() as recorded:
        for method, path in all_routes(globex_endpoint, theirs):
            if path.startswith("/settings/webhooks/new/") or path == "/settings/webhooks/":
                continue
            response = getattr(client, method)(path, form_data(url=URL + "/moved") if method == "post" else None)
            assert response.status_code == 404, (method, path)
            assert "globex" not in response.content.decode().lower(), path
        # Their delivery through our endpoint's URLs is 404 as well.
        crossed = reverse("portal:settings_webhook_delivery", args=[acme_endpoint.pk, theirs.pk])
        assert client.get(crossed).status_code == 404
        assert client.get(crossed, HTTP_HX_REQUEST="true").status_code == 404
        redeliver = reverse("portal:settings_webhook_redeliver", args=[acme_endpoint.pk, theirs.pk])
        assert client.post(redeliver).status_code == 404
        assert len(recorded.calls) == 0  # nothing was posted to Globex's receiver
    # The pages alice may use show Acme's endpoints and deliveries only.
    for path in ("/settings/webhooks/", "/settings/webhooks/new/", page(acme_endpoint),
                 page(acme_endpoint, "settings_webhook_deliveries"), delivery_url("settings_webhook_delivery", ours),
                 page(acme_endpoint, "settings_webhook_delete")):  # fmt: skip
        assert "globex" not in client.get(path).content.decode().lower(), path
    created = client.post("/settings/webhooks/new/", form_data(url=URL + "/second"))
    assert created.status_code == 200 and WebhookEndpoint.objects.get(url=URL + "/second").organization == acme
    listed = {row["endpoint"].pk for row in client.get("/settings/webhooks/").context["rows"]}
    assert globex_endpoint.pk not in listed and acme_endpoint.pk in listed
    globex_endpoint.refresh_from_db()
    theirs.refresh_from_db()
    assert (globex_endpoint.url, globex_endpoint.active, globex_endpoint.event_types) == (GLOBEX_URL, True, ["*"])
    assert endpoint_secret(globex_endpoint) == secret
    assert (theirs.state, theirs.attempts) == (WebhookState.FAILED, 8) and theirs.attempt_log.count() == 1
    assert WebhookDelivery.objects.filter(endpoint=globex_endpoint).count() == 1


# -- queries --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 15])
def test_the_list_query_count_does_not_grow_with_endpoints(
    client_for, alice, acme, globex_endpoint, count, django_assert_max_num_queries
):
    for number in range(count):
        endpoint, _ = endpoint_create(organization=acme, url=f"{URL}/{number}", event_types=["ticket.created"])
        deliver(endpoint, state=WebhookState.SUCCEEDED, last_status_code=200)
    client = client_for(alice)
    # base + the endpoints, each with its newest delivery's state, status code and time
    with django_assert_max_num_queries(BASE + 1):
        response = client.get("/settings/webhooks/")
    assert len(response.context["rows"]) == count


@pytest.mark.parametrize("count", [3, 30])
def test_the_delivery_log_query_count_does_not_grow_with_deliveries(
    client_for, alice, acme_endpoint, count, django_assert_max_num_queries
):
    for _ in range(count):
        delivery = deliver(acme_endpoint, state=WebhookState.RETRYING, attempts=2, last_status_code=502)
        WebhookAttempt.objects.bulk_create(
            [
                WebhookAttempt(delivery=delivery, status_code=502, latency_ms=30, response_excerpt="bad gateway")
                for _ in range(2)
            ]
        )
    client = client_for(alice)
    # base + the endpoint + the count + one page of deliveries with their events and numbers of attempts
    with django_assert_max_num_queries(BASE + 3):
        response = client.get(page(acme_endpoint, "settings_webhook_deliveries"))
    assert len(response.context["deliveries"]) == min(count, 25)
    with django_assert_max_num_queries(BASE + 3):
        client.get(page(acme_endpoint, "settings_webhook_deliveries") + "?state=RETRYING", HTTP_HX_REQUEST="true")
