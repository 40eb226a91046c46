"""The QuickBooks adapter against recorded Intuit replies: what it sends (method, URL, query, headers, body) and what
it makes of the answers: tokens, entities with Decimal amounts, faults, and retryable failures. No database."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.quickbooks.providers.base import DUPLICATE_NAME, INVALID_GRANT, QboError
from integrations.quickbooks.providers.quickbooks import QuickBooksProvider, dumps, statement
from tests.integrations.quickbooks.conftest import API, REALM, REVOKE_URL, TOKEN_URL, body, fault, query_of

CLIENT_BASIC = "Basic " + base64.b64encode(b"ABqbo-client-id:qbo-client-secret").decode()


@dataclass
class FakeTokens:
    tokens: list[str] = field(default_factory=lambda: ["access-1", "access-2"])
    refused: list[str] = field(default_factory=list)

    @property
    def realm_id(self) -> str:
        return REALM

    def access_token(self) -> str:
        return self.tokens[0]

    def refreshed(self, stale: str) -> str:
        self.refused.append(stale)
        return self.tokens[1]


@pytest.fixture
def adapter() -> QuickBooksProvider:
    return QuickBooksProvider()


# -- OAuth -------------------------------------------------------------------------------------------------------------


def test_the_authorization_url_asks_for_accounting_with_the_state_and_the_callback(adapter):
    url = adapter.authorize_url(state="s-123", redirect_uri="https://keel.example.com/cb/")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://appcenter.intuit.com/connect/oauth2"
    assert parse_qs(parts.query) == {
        "client_id": ["ABqbo-client-id"],
        "response_type": ["code"],
        "scope": ["com.intuit.quickbooks.accounting"],
        "redirect_uri": ["https://keel.example.com/cb/"],
        "state": ["s-123"],
    }


def test_a_code_is_exchanged_with_the_client_credentials(adapter, intuit):
    intuit.post(TOKEN_URL, json={"token_type": "bearer", "access_token": "a-1", "refresh_token": "r-1",
                                 "expires_in": 3600, "x_refresh_token_expires_in": 8726400})  # fmt: skip
    tokens = adapter.exchange_code(code="AB-code", redirect_uri="https://keel.example.com/cb/")
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_in, tokens.refresh_expires_in) == (
        "a-1", "r-1", 3600, 8726400,
    )  # fmt: skip
    [call] = intuit.calls
    assert call.request.headers["Authorization"] == CLIENT_BASIC
    assert call.request.headers["Accept"] == "application/json"
    assert parse_qs(call.request.body) == {
        "grant_type": ["authorization_code"], "code": ["AB-code"], "redirect_uri": ["https://keel.example.com/cb/"],
    }  # fmt: skip


def test_a_refresh_sends_the_refresh_token_and_a_refused_one_says_invalid_grant(adapter, intuit):
    intuit.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "Token invalid"})
    with pytest.raises(QboError) as refused:
        adapter.refresh(refresh_token="r-old")
    assert refused.value.code == INVALID_GRANT and not refused.value.retryable
    assert parse_qs(intuit.calls[0].request.body) == {"grant_type": ["refresh_token"], "refresh_token": ["r-old"]}


def test_an_unavailable_token_endpoint_is_retryable(adapter, intuit):
    intuit.post(TOKEN_URL, status=503, body="Service Unavailable")
    with pytest.raises(QboError) as unavailable:
        adapter.refresh(refresh_token="r-old")
    assert unavailable.value.retryable and unavailable.value.code == ""


def test_revoking_posts_the_token_as_json(adapter, intuit):
    intuit.post(REVOKE_URL, status=200)
    adapter.revoke(token="r-1")
    [call] = intuit.calls
    assert call.request.headers["Authorization"] == CLIENT_BASIC
    assert body(call) == {"token": "r-1"}


# -- the API -----------------------------------------------------------------------------------------------------------


def test_a_read_carries_the_bearer_token_asks_for_json_and_the_minor_version(adapter, intuit):
    intuit.get(f"{API}/invoice/130", json={"Invoice": {"Id": "130", "SyncToken": "3", "TotalAmt": 714.34},
                                           "time": "2026-03-01T17:00:00.000-08:00"})  # fmt: skip
    invoice = adapter.read(FakeTokens(), "invoice", "130")
    assert invoice["TotalAmt"] == Decimal("714.34") and isinstance(invoice["TotalAmt"], Decimal)
    [call] = intuit.calls
    assert call.request.headers["Authorization"] == "Bearer access-1"
    assert call.request.headers["Accept"] == "application/json"
    assert query_of(call) == {"minorversion": "75"}


def test_an_update_is_sparse_and_amounts_are_exact_decimals(adapter, intuit):
    intuit.post(f"{API}/invoice", json={"Invoice": {"Id": "130", "SyncToken": "4"}})
    adapter.save(FakeTokens(), "invoice", {"Id": "130", "SyncToken": "3", "Line": [{"Amount": Decimal("0.10")}]})
    [call] = intuit.calls
    assert call.request.headers["Content-Type"] == "application/json"
    assert '"Amount":0.10' in call.request.body
    assert body(call) == {"Id": "130", "SyncToken": "3", "Line": [{"Amount": Decimal("0.10")}], "sparse": True}


def test_a_refused_token_is_refreshed_once_and_the_call_repeated(adapter, intuit):
    intuit.get(f"{API}/customer/58", status=401, json=fault("3200", "message=AuthenticationFailed", kind="AUTH"))
    intuit.get(f"{API}/customer/58", json={"Customer": {"Id": "58", "SyncToken": "0"}})
    tokens = FakeTokens()
    assert adapter.read(tokens, "customer", "58")["Id"] == "58"
    assert tokens.refused == ["access-1"]
    assert [call.request.headers["Authorization"] for call in intuit.calls] == ["Bearer access-1", "Bearer access-2"]


def test_a_fault_keeps_quickbooks_code_and_words(adapter, intuit):
    intuit.post(f"{API}/customer", status=400, json=fault(DUPLICATE_NAME, "Duplicate Name Exists Error",
                                                           "The name supplied already exists. : Acme"))  # fmt: skip
    with pytest.raises(QboError) as refused:
        adapter.save(FakeTokens(), "customer", {"DisplayName": "Acme"})
    assert refused.value.code == DUPLICATE_NAME and not refused.value.retryable
    assert refused.value.message == "Duplicate Name Exists Error: The name supplied already exists. : Acme"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retryable(adapter, intuit, status):
    intuit.get(f"{API}/invoice/130", status=status, json=fault("3001", "ThrottleExceeded", kind="SERVICE"))
    with pytest.raises(QboError) as unavailable:
        adapter.read(FakeTokens(), "invoice", "130")
    assert unavailable.value.retryable and unavailable.value.status == status


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (429, "30", timedelta(seconds=30)),
        (503, "Mon, 02 Mar 2026 01:05:00 GMT", timedelta(minutes=5)),
        (429, None, None),
        (500, "30", None),  # Retry-After means something on a 429 or a 503 only
    ],
)
def test_a_429_or_503_carries_the_wait_quickbooks_asked_for(adapter, intuit, clock, status, retry_after, wait):
    headers = {"Retry-After": retry_after} if retry_after else {}
    intuit.get(f"{API}/invoice/130", status=status, json=fault("3001", "ThrottleExceeded", kind="SERVICE"),
               headers=headers)  # fmt: skip
    with pytest.raises(QboError) as unavailable:
        adapter.read(FakeTokens(), "invoice", "130")
    assert unavailable.value.retryable and unavailable.value.retry_after == wait
    assert unavailable.value.slow_down is (status == 429 or wait is not None)


def test_a_throttled_token_endpoint_says_how_long_to_wait(adapter, intuit):
    intuit.post(TOKEN_URL, status=429, body="Too Many Requests", headers={"retry-after": "90"})
    with pytest.raises(QboError) as throttled:
        adapter.refresh(refresh_token="r-old")
    assert throttled.value.retryable and throttled.value.retry_after == timedelta(seconds=90)


def test_a_timeout_is_retryable(adapter, intuit):
    intuit.get(f"{API}/invoice/130", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(QboError) as unavailable:
        adapter.read(FakeTokens(), "invoice", "130")
    assert unavailable.value.retryable and "in time" in unavailable.value.message


def test_a_query_quotes_its_values_and_pages(adapter, intuit):
    intuit.get(f"{API}/query", json={"QueryResponse": {"Customer": [{"Id": "58"}], "startPosition": 1,
                                                       "maxResults": 1}})  # fmt: skip
    found = adapter.query(FakeTokens(), "Customer", {"DisplayName": "Bob's \\ Shop"}, limit=1)
    assert found == [{"Id": "58"}]
    assert query_of(intuit.calls[0]) == {
        "query": "SELECT * FROM Customer WHERE DisplayName = 'Bob\\'s \\\\ Shop' STARTPOSITION 1 MAXRESULTS 1",
        "minorversion": "75",
    }


def test_a_query_with_nothing_found_is_empty(adapter, intuit):
    intuit.get(f"{API}/query", json={"QueryResponse": {}, "time": "2026-03-01T17:00:00.000-08:00"})
    assert adapter.query(FakeTokens(), "Item", {"Name": "Keel services"}) == []


def test_the_payments_query_orders_by_change_since_the_cursor():
    from datetime import UTC, datetime, timedelta, timezone

    since = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=11)))
    assert statement("Payment", {}, updated_since=since, start=101, limit=100) == (
        "SELECT * FROM Payment WHERE Metadata.LastUpdatedTime >= '2026-02-28T22:30:00+00:00' "
        "ORDERBY Metadata.LastUpdatedTime STARTPOSITION 101 MAXRESULTS 100"
    )
    assert since.astimezone(UTC).hour == 22


def test_json_keeps_decimals_exact():
    assert (
        dumps({"a": [Decimal("599.40"), Decimal("1E+2"), "x", None, True, 3]}) == '{"a":[599.40,100,"x",null,true,3]}'
    )
