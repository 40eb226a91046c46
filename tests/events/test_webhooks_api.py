"""The webhooks API: create (secret shown once), change, rotate, test ping, delivery log and redelivery; scopes and
roles; partner endpoints; and another owner's endpoint or delivery is 404 on every route."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import responses
from rest_framework.test import APIClient

from events import catalogue
from events.models import Event, WebhookDelivery, WebhookEndpoint, WebhookState
from events.signing import verify
from events.webhooks import endpoint_create, endpoint_secret, fan_out
from tenancy.models import AuditEvent
from tests.events.test_webhooks import sent

pytestmark = pytest.mark.django_db

URL = "https://hooks.partner.test/keel"
SCOPES = ("read", "write", "webhooks:write")


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch):
    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def acme_key(api: Any, acme: Any, api_key_for: Any) -> APIClient:
    _, raw = api_key_for(organization=acme, scopes=SCOPES)
    return api(raw)


@pytest.fixture
def globex_endpoint(globex: Any) -> WebhookEndpoint:
    return endpoint_create(organization=globex, url=URL + "/globex", event_types=["*"])[0]


def test_creating_an_endpoint_shows_its_secret_once(acme_key, acme):
    answer = acme_key.post(
        "/api/webhooks/", {"url": URL, "event_types": ["ticket.created", "invoice.paid"]}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    endpoint = WebhookEndpoint.objects.get()
    assert body["secret"] == endpoint_secret(endpoint) and body["secret"].startswith("whsec_")
    assert body["owner"] == {"organization": str(acme.pk)}
    assert body["event_types"] == ["invoice.paid", "ticket.created"]
    listed = acme_key.get("/api/webhooks/").json()
    assert [item["id"] for item in listed] == [str(endpoint.pk)] and "secret" not in listed[0]
    assert "secret" not in acme_key.get(f"/api/webhooks/{endpoint.pk}/").json()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"url": "http://10.0.0.5/hook", "event_types": ["*"]}, "url"),
        ({"url": URL, "event_types": ["ticket.exploded"]}, "event_types"),
        ({"url": URL, "event_types": []}, "event_types"),
        ({"url": URL, "event_types": ["*"], "colour": "red"}, "colour"),
    ],
)
def test_bad_endpoints_are_refused_by_field(acme_key, data, field, monkeypatch):
    if data["url"].startswith("http://10."):
        monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [(2, 1, 6, "", (host, port))])
    answer = acme_key.post("/api/webhooks/", data, format="json")
    assert answer.status_code == 400 and field in answer.json()
    assert not WebhookEndpoint.objects.exists()


def test_change_rotate_and_delete(acme_key, acme):
    endpoint, secret = endpoint_create(organization=acme, url=URL, event_types=["*"])
    changed = acme_key.patch(
        f"/api/webhooks/{endpoint.pk}/", {"event_types": ["ticket.created"], "active": False}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["event_types"] == ["ticket.created"]
    assert changed.json()["active"] is False
    rotated = acme_key.post(f"/api/webhooks/{endpoint.pk}/rotate-secret/")
    assert rotated.status_code == 200 and rotated.json()["secret"] not in ("", secret)
    assert endpoint_secret(WebhookEndpoint.objects.get()) == rotated.json()["secret"]
    assert acme_key.delete(f"/api/webhooks/{endpoint.pk}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()
    trail = list(
        AuditEvent.objects.filter(organization=acme, action__startswith="webhook.")
        .order_by("created_at", "id")
        .values_list("action", "changes")
    )
    assert [action for action, _ in trail] == [
        "webhook.endpoint_created",
        "webhook.endpoint_updated",
        "webhook.secret_rotated",
        "webhook.endpoint_deleted",
    ]
    assert trail[1][1] == {"event_types": [["*"], ["ticket.created"]], "active": [True, False]}
    assert trail[2][1] == {"secret_prefix": rotated.json()["secret"][:12]}
    assert all(secret not in str(changes) for _, changes in trail)


@responses.activate
def test_the_test_ping_and_the_delivery_log(acme_key, acme, django_capture_on_commit_callbacks):
    endpoint, secret = endpoint_create(organization=acme, url=URL, event_types=["*"])
    responses.post(URL, status=200, body="pong")
    with django_capture_on_commit_callbacks(execute=True):  # queued: a worker sends it once the request commits
        ping = acme_key.post(f"/api/webhooks/{endpoint.pk}/test/")
        assert len(responses.calls) == 0
    assert ping.status_code == 202
    assert ping.json()["state"] == WebhookState.RUNNING and ping.json()["event"]["type"] == catalogue.PING
    assert verify(secret, *sent(responses.calls[0]))
    log = acme_key.get(f"/api/webhooks/{endpoint.pk}/deliveries/").json()
    assert log["count"] == 1
    (attempt,) = log["results"][0]["attempt_log"]
    assert (attempt["status_code"], attempt["response_excerpt"]) == (200, "pong")
    bad = acme_key.get(f"/api/webhooks/{endpoint.pk}/deliveries/?state=LOST")
    assert bad.status_code == 400 and "state" in bad.json()


@responses.activate
def test_redeliver(acme_key, acme, django_capture_on_commit_callbacks):
    endpoint, _ = endpoint_create(organization=acme, url=URL, event_types=["*"])
    fan_out(Event.objects.create(organization=acme, type="ticket.created", payload={}))
    WebhookDelivery.objects.update(state=WebhookState.FAILED, attempts=8)
    responses.post(URL, status=200)
    delivery = WebhookDelivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        answer = acme_key.post(f"/api/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/redeliver/")
    assert answer.status_code == 200 and answer.json()["state"] == WebhookState.PENDING
    delivery.refresh_from_db()
    assert delivery.state == WebhookState.SUCCEEDED and delivery.attempts == 1  # flushed after commit


def test_a_partner_key_manages_its_partner_endpoints(api, api_key_for, summit, acme):
    _, raw = api_key_for(partner=summit, scopes=SCOPES)
    partner_key = api(raw)
    created = partner_key.post("/api/webhooks/", {"url": URL, "event_types": ["*"]}, format="json")
    assert created.status_code == 201 and created.json()["owner"] == {"partner": str(summit.pk)}
    org_endpoint, _ = endpoint_create(organization=acme, url=URL + "/acme", event_types=["*"])
    assert [item["owner"] for item in partner_key.get("/api/webhooks/").json()] == [{"partner": str(summit.pk)}]
    in_acme = api(raw, organization=acme.slug)
    assert [item["id"] for item in in_acme.get("/api/webhooks/").json()] == [str(org_endpoint.pk)]


def test_scopes_and_roles(api, api_key_for, acme, bob, alice, client_for):
    _, reader = api_key_for(organization=acme, scopes=("read", "webhooks:read"))
    assert api(reader).get("/api/webhooks/").status_code == 200
    assert api(reader).post("/api/webhooks/", {"url": URL, "event_types": ["*"]}, format="json").status_code == 403
    _, plain = api_key_for(organization=acme, scopes=("read", "write"))
    assert api(plain).get("/api/webhooks/").status_code == 403
    member = APIClient()
    member.force_login(bob)
    assert member.get("/api/webhooks/").status_code == 403
    owner = APIClient()
    owner.force_login(alice)
    assert owner.get("/api/webhooks/").status_code == 200


def test_the_event_catalogue_lists_every_type_with_an_example(acme_key):
    listed = acme_key.get("/api/webhooks/event-types/").json()
    assert [item["type"] for item in listed] == list(catalogue.EVENT_TYPES)
    assert all(item["description"] and isinstance(item["example"], dict) for item in listed)
    assert {"ticket.sla_breached", "invoice.overdue", "contact.opted_out"} <= {item["type"] for item in listed}


@pytest.mark.isolation(
    "api-webhook-list",
    "api-webhook-detail",
    "api-webhook-rotate-secret",
    "api-webhook-test",
    "api-webhook-deliveries",
    "api-webhook-redeliver",
    "api-webhook-event-types",
)
def test_another_organizations_endpoints_and_deliveries_are_404(acme_key, globex, globex_endpoint):
    fan_out(Event.objects.create(organization=globex, type="ticket.created", payload={}))
    delivery = WebhookDelivery.objects.get()
    base = f"/api/webhooks/{globex_endpoint.pk}"
    assert globex_endpoint.pk not in [item["id"] for item in acme_key.get("/api/webhooks/").json()]
    assert acme_key.get(f"{base}/").status_code == 404
    assert acme_key.patch(f"{base}/", {"active": False}, format="json").status_code == 404
    assert acme_key.delete(f"{base}/").status_code == 404
    assert acme_key.post(f"{base}/rotate-secret/").status_code == 404
    assert acme_key.post(f"{base}/test/").status_code == 404
    assert acme_key.get(f"{base}/deliveries/").status_code == 404
    assert acme_key.post(f"{base}/deliveries/{delivery.pk}/redeliver/").status_code == 404
    assert acme_key.get("/api/webhooks/not-a-uuid/").status_code == 404
    assert acme_key.get("/api/webhooks/event-types/").status_code == 200  # the catalogue is the same for all
    globex_endpoint.refresh_from_db()
    assert globex_endpoint.active and WebhookDelivery.objects.get().attempts == 0
