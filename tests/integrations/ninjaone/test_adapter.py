"""The NinjaOne client against recorded NinjaOne answers: the token request (client credentials, scope monitoring),
the device pages (org filter, page size, ``after`` cursor, bearer token), what it reads from a device, and every
failure as a ProviderError. No database, no network: ``responses`` fails any request that was not recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import RequestsMock

from integrations.ninjaone import adapter, providers
from integrations.ninjaone.adapter import NinjaOneClient
from integrations.ninjaone.base import ProviderError, RemoteDevice
from integrations.ninjaone.sandbox import SandboxNinjaOne

BASE = "https://eu.ninjarmm.com"
TOKEN_URL = f"{BASE}/ws/oauth/token"
DEVICES_URL = f"{BASE}/v2/devices-detailed"


@pytest.fixture
def api() -> Iterator[RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> NinjaOneClient:
    return NinjaOneClient(base_url=BASE + "/", client_id="keel-client", client_secret="keel-secret")


def token(api: RequestsMock, value: str = "tok-1", expires_in: int = 3600) -> None:
    api.post(TOKEN_URL, json={"access_token": value, "token_type": "Bearer", "expires_in": expires_in,
                              "scope": "monitoring"})  # fmt: skip


def device_json(ninja_id: int, org: int = 7, **values: Any) -> dict[str, Any]:
    return {
        "id": ninja_id,
        "organizationId": org,
        "locationId": 3,
        "nodeClass": "WINDOWS_WORKSTATION",
        "approvalStatus": "APPROVED",
        "offline": False,
        "displayName": f"ACME-WS{ninja_id}",
        "systemName": f"WS{ninja_id}",
        "dnsName": f"ws{ninja_id}.acme.local",
        "created": 1735689600.0,
        "lastContact": 1772442000.5,
        "os": {"name": "Windows 11 Pro", "architecture": "64-bit", "buildNumber": "22631"},
        **values,
    }


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def test_a_token_then_every_page_of_devices(api, client, monkeypatch):
    monkeypatch.setattr(adapter, "PAGE_SIZE", 2)
    token(api)
    api.get(DEVICES_URL, json=[device_json(11), device_json(12, offline=True, lastContact=None)])
    api.get(DEVICES_URL, json=[device_json(15, nodeClass="MAC", os={"name": "macOS 14 Sonoma"})])

    found = client.devices("7")

    assert found == [
        RemoteDevice("11", "ACME-WS11", "WS11", "WINDOWS_WORKSTATION", "Windows 11 Pro", False,
                     datetime(2026, 3, 2, 9, 0, 0, 500000, tzinfo=UTC)),
        RemoteDevice("12", "ACME-WS12", "WS12", "WINDOWS_WORKSTATION", "Windows 11 Pro", True, None),
        RemoteDevice("15", "ACME-WS15", "WS15", "MAC", "macOS 14 Sonoma", False,
                     datetime(2026, 3, 2, 9, 0, 0, 500000, tzinfo=UTC)),
    ]  # fmt: skip
    token_call, first, second = api.calls
    assert parse_qs(token_call.request.body) == {
        "grant_type": ["client_credentials"],
        "client_id": ["keel-client"],
        "client_secret": ["keel-secret"],
        "scope": ["monitoring"],
    }
    assert query(first) == {"df": ["org=7"], "pageSize": ["2"]}
    assert query(second) == {"df": ["org=7"], "pageSize": ["2"], "after": ["12"]}
    assert {call.request.headers["Authorization"] for call in (first, second)} == {"Bearer tok-1"}
    assert first.request.req_kwargs["timeout"] == adapter.TIMEOUT


def test_the_token_is_kept_until_it_expires(api, client):
    token(api, "tok-1")
    api.get(DEVICES_URL, json=[device_json(11)])
    api.get(DEVICES_URL, json=[])
    client.devices("7")
    client.devices("8")
    assert [call.request.url.split("?")[0] for call in api.calls] == [TOKEN_URL, DEVICES_URL, DEVICES_URL]


def test_an_expired_token_is_replaced_once(api, client):
    token(api, "tok-1")
    api.get(DEVICES_URL, status=401, json={"error": "invalid_token"})
    token(api, "tok-2")
    api.get(DEVICES_URL, json=[device_json(11)])
    assert [device.ninja_id for device in client.devices("7")] == ["11"]
    assert api.calls[3].request.headers["Authorization"] == "Bearer tok-2"


def test_devices_of_another_organization_in_the_answer_are_left_out(api, client):
    token(api)
    api.get(DEVICES_URL, json=[device_json(11), device_json(12, org=9)])
    assert [device.ninja_id for device in client.devices("7")] == ["11"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"status": 401, "json": {"error": "invalid_client"}}, r"refused the client credentials \(HTTP 401\)"),
        ({"status": 200, "body": "<html>"}, "not JSON"),
        ({"status": 200, "json": {"token_type": "Bearer"}}, "no access_token"),
        ({"body": requests.ConnectionError("down")}, "token request failed: ConnectionError"),
    ],
)
def test_token_failures(api, client, record, message):
    api.post(TOKEN_URL, **record)
    with pytest.raises(ProviderError, match=message):
        client.devices("7")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"status": 429, "json": {}}, "rate limiting"),
        ({"status": 500, "json": {}}, "HTTP 500"),
        ({"status": 200, "json": {"devices": []}}, "not a JSON array"),
        ({"status": 200, "json": [{"id": "eleven"}]}, "no numeric id"),
        ({"status": 200, "json": ["device"]}, "not an object"),
        ({"body": requests.Timeout("slow")}, "request failed: Timeout"),
    ],
)
def test_device_list_failures(api, client, record, message):
    token(api)
    api.get(DEVICES_URL, **record)
    with pytest.raises(ProviderError, match=message):
        client.devices("7")


@pytest.mark.parametrize(
    ("status", "retry_after", "rate_limited", "wait"),
    [
        (429, "30", True, timedelta(seconds=30)),
        (429, None, True, None),
        (503, "Mon, 02 Mar 2026 09:10:00 GMT", True, timedelta(minutes=10)),
        (503, None, False, None),
        (500, "30", False, None),  # Retry-After means something on a 429 or a 503 only
    ],
)
def test_a_rate_limit_or_an_outage_is_retryable_with_the_wait_ninjaone_named(
    api, client, time_machine, status, retry_after, rate_limited, wait
):
    time_machine.move_to(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False)
    token(api)
    api.get(DEVICES_URL, status=status, json={}, headers={"Retry-After": retry_after} if retry_after else {})
    with pytest.raises(ProviderError) as refused:
        client.devices("7")
    assert refused.value.retryable
    assert (refused.value.rate_limited, refused.value.retry_after) == (rate_limited, wait)


def test_a_refusal_is_not_retryable(api, client):
    token(api)
    api.get(DEVICES_URL, status=403, json={})
    with pytest.raises(ProviderError) as refused:
        client.devices("7")
    assert not refused.value.retryable and not refused.value.rate_limited


def test_pages_that_do_not_move_forward_stop_the_sync(api, client, monkeypatch):
    monkeypatch.setattr(adapter, "PAGE_SIZE", 1)
    token(api)
    api.get(DEVICES_URL, json=[device_json(11)])
    api.get(DEVICES_URL, json=[device_json(11)])
    with pytest.raises(ProviderError, match="do not move forward"):
        client.devices("7")


def test_nothing_is_asked_without_credentials_or_for_an_id_that_is_not_a_number(api):
    with pytest.raises(ProviderError, match="NINJAONE_CLIENT_ID"):
        NinjaOneClient(base_url=BASE, client_id="", client_secret="").devices("7")
    with pytest.raises(ProviderError, match="numbers"):
        NinjaOneClient(base_url=BASE, client_id="a", client_secret="b").devices("7 OR org=9")
    assert len(api.calls) == 0


def test_the_setting_picks_the_provider(settings, monkeypatch):
    monkeypatch.setattr(providers.get_provider, "instances", {})
    settings.NINJAONE_PROVIDER = "sandbox"
    assert isinstance(providers.get_provider(), SandboxNinjaOne)
    settings.NINJAONE_PROVIDER = "ninjaone"
    assert isinstance(providers.get_provider(), NinjaOneClient)
    assert providers.get_provider() is providers.get_provider()
    settings.NINJAONE_PROVIDER = "connectwise"
    with pytest.raises(LookupError):
        providers.get_provider()
