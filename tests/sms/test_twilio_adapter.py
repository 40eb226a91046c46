"""The Twilio adapter against recorded Twilio replies: what it sends (method, URL, form body or query, basic auth,
timeout) and what it makes of the answers and the errors, the wait a refusal's Retry-After asks for included. No
database, no network: ``responses`` fails any request that was not recorded."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
import time_machine
from responses import RequestsMock
from twilio.base.exceptions import TwilioException  # type: ignore[import-untyped]

from sms.providers import get_provider
from sms.providers.base import MessageProvider, MessageState, OutboundMessage, ProviderError
from sms.providers.twilio import TRIAL_PREFIX, AnswerKeepingHttpClient, TwilioProvider

ACCOUNT = "AC1f2e3d4c5b6a79881f2e3d4c5b6a7988"
TOKEN = "twilio-test-auth-token"
MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
SID = "SM0f1e2d3c4b5a69788796a5b4c3d2e1f0"
FROM = "+61480000001"
TO = "+61412345678"
BODY = "Acme: your technician arrives at 9am. Reply STOP to opt out."
CALLBACK_URL = "https://keel.test/webhooks/twilio/status"


@pytest.fixture(autouse=True)
def _twilio_settings(settings: Any) -> None:
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.TWILIO_AUTH_TOKEN = TOKEN


@pytest.fixture
def api() -> Iterator[RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def provider() -> TwilioProvider:
    return TwilioProvider()


# ----------------------------------------------------------------------------------------------------------------
# Recorded Twilio objects.
# ----------------------------------------------------------------------------------------------------------------


def message_json(
    sid: str = SID,
    *,
    status: str = "queued",
    body: str = BODY,
    to: str = TO,
    created: str = "Thu, 01 Jan 2026 09:00:00 +0000",
    sent: str | None = None,
    price: str | None = None,
    error_code: int | None = None,
) -> dict[str, Any]:
    return {
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": created,
        "date_sent": sent,
        "date_updated": sent or created,
        "direction": "outbound-api",
        "error_code": error_code,
        "error_message": None,
        "from": FROM,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": price,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media.json"},
        "to": to,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
    }


def page_json(*messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "messages": list(messages),
        "end": max(len(messages) - 1, 0),
        "first_page_uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json?PageSize=50&Page=0",
        "next_page_uri": None,
        "page": 0,
        "page_size": 50,
        "previous_page_uri": None,
        "start": 0,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json?PageSize=50&Page=0",
    }


def error_json(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def outbound(*, status_callback: str | None = CALLBACK_URL) -> OutboundMessage:
    return OutboundMessage(to=TO, from_=FROM, body=BODY, status_callback=status_callback)


# ----------------------------------------------------------------------------------------------------------------
# Reading what was sent.
# ----------------------------------------------------------------------------------------------------------------


def form(call: Any) -> dict[str, str]:
    body = call.request.body
    text = body.decode() if isinstance(body, bytes) else body
    assert isinstance(text, str)
    return {key: value for key, [value] in parse_qs(text, strict_parsing=True).items()}


def query(call: Any) -> dict[str, str]:
    return {key: value for key, [value] in parse_qs(urlsplit(call.request.url).query, strict_parsing=True).items()}


def timeout(call: Any) -> Any:
    """The timeout the request was sent with (``responses`` keeps the keyword arguments of ``Session.send``)."""
    return call.request.req_kwargs["timeout"]


def assert_authenticated(api: RequestsMock) -> None:
    expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    for call in api.calls:
        assert call.request.headers["Authorization"] == expected
        assert timeout(call) == 10.0


# ----------------------------------------------------------------------------------------------------------------
# Sending.
# ----------------------------------------------------------------------------------------------------------------


def test_send_posts_the_message_with_its_status_callback(api, provider):
    api.post(MESSAGES, status=201, json=message_json())

    state = provider.send(outbound())

    assert state == MessageState(sid=SID, status="queued", to=TO, from_=FROM, body=BODY, price_unit="USD")
    (call,) = api.calls
    assert (call.request.method, call.request.url) == ("POST", MESSAGES)
    assert form(call) == {"To": TO, "From": FROM, "Body": BODY, "StatusCallback": CALLBACK_URL}
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert_authenticated(api)


def test_send_without_a_status_callback_sends_none(api, provider):
    api.post(MESSAGES, status=201, json=message_json())
    provider.send(outbound(status_callback=None))
    assert form(api.calls[0]) == {"To": TO, "From": FROM, "Body": BODY}


def test_an_invalid_to_number_is_final_with_twilios_code(api, provider):
    api.post(
        MESSAGES,
        status=400,
        json=error_json(21211, "The 'To' number +6141234 is not a valid phone number.", 400),
    )

    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())

    error = caught.value
    assert (error.retryable, error.code) == (False, "21211")
    assert "The 'To' number +6141234 is not a valid phone number." in error.message
    assert "HTTP 400" in error.message and "code 21211" in error.message
    assert TOKEN not in error.message


def test_an_unsubscribed_recipient_is_final(api, provider):
    api.post(
        MESSAGES,
        status=400,
        json=error_json(21610, "Attempt to send to unsubscribed recipient", 400),
    )
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.retryable, caught.value.code) == (False, "21610")


def test_rejected_credentials_are_final(api, provider):
    api.post(MESSAGES, status=401, json=error_json(20003, "Authenticate", 401))
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.retryable, caught.value.code) == (False, "20003")


def test_too_many_requests_is_retryable(api, provider):
    api.post(MESSAGES, status=429, json=error_json(20429, "Too Many Requests", 429))
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.retryable, caught.value.code) == (True, "20429")


def test_too_many_requests_carries_twilios_retry_after(api, provider):
    api.post(
        MESSAGES,
        status=429,
        json=error_json(20429, "Too Many Requests", 429),
        headers={"Retry-After": "120"},
    )
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    error = caught.value
    assert (error.retryable, error.rate_limited, error.retry_after) == (True, True, timedelta(seconds=120))
    assert error.asks_to_wait


def test_too_many_requests_without_retry_after_is_still_a_rate_limit(api, provider):
    api.post(MESSAGES, status=429, json=error_json(20429, "Too Many Requests", 429))
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.rate_limited, caught.value.retry_after, caught.value.asks_to_wait) == (True, None, True)


def test_an_outage_with_retry_after_as_a_date_asks_for_the_time_until_then(api, provider):
    api.post(
        MESSAGES,
        status=503,
        body="<html><body>Service Unavailable</body></html>",
        content_type="text/html",
        headers={"Retry-After": "Thu, 01 Jan 2026 09:07:30 GMT"},
    )
    with (
        time_machine.travel(datetime(2026, 1, 1, 9, 0, tzinfo=UTC), tick=False),
        pytest.raises(ProviderError) as caught,
    ):
        provider.send(outbound())
    error = caught.value
    assert (error.retryable, error.rate_limited) == (True, False)
    assert error.retry_after == timedelta(minutes=7, seconds=30)
    assert error.asks_to_wait


def test_an_outage_without_retry_after_does_not_ask_to_wait(api, provider):
    api.post(MESSAGES, status=500, json=error_json(20500, "Internal Server Error", 500))
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.retryable, caught.value.retry_after, caught.value.asks_to_wait) == (True, None, False)


def test_a_problem_details_rate_limit_carries_retry_after_too(api, provider):
    problem = {"type": "https://www.twilio.com/docs/errors/20429", "title": "Too Many Requests", "status": 429,
               "code": 20429}  # fmt: skip
    api.post(MESSAGES, status=429, json=problem, headers={"retry-after": "45"})
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.rate_limited, caught.value.retry_after) == (True, timedelta(seconds=45))


def test_a_final_refusal_has_no_wait_whatever_its_headers(api, provider):
    api.post(
        MESSAGES,
        status=400,
        json=error_json(21211, "The 'To' number +6141234 is not a valid phone number.", 400),
        headers={"Retry-After": "60"},
    )
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.retryable, caught.value.retry_after, caught.value.asks_to_wait) == (False, None, False)


def test_a_timeout_has_no_wait(api, provider):
    api.post(MESSAGES, body=requests.exceptions.ReadTimeout("read timed out (read timeout=10.0)"))
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.retryable, caught.value.retry_after, caught.value.asks_to_wait) == (True, None, False)


def test_each_thread_reads_the_headers_of_its_own_answers(api):
    """One adapter serves every thread of a worker: a refusal is read with its own answer's headers, never with those
    of an answer another thread got meanwhile."""
    client = AnswerKeepingHttpClient(timeout=10.0)
    api.get("https://api.twilio.com/elsewhere", status=429, headers={"Retry-After": "999"})
    api.get("https://api.twilio.com/here", status=200, body="{}")
    client.request("GET", "https://api.twilio.com/here")
    other = threading.Thread(target=client.request, args=("GET", "https://api.twilio.com/elsewhere"))
    other.start()
    other.join()
    answer = client.last_answer()
    assert answer is not None and (answer.status_code, answer.headers.get("Retry-After")) == (200, None)


def test_an_outage_without_a_twilio_code_is_retryable_and_has_no_code(api, provider):
    api.post(MESSAGES, status=503, body="<html><body>Service Unavailable</body></html>", content_type="text/html")
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    error = caught.value
    # The SDK repeats the HTTP status as the code when Twilio gave none: that is not a Twilio error code.
    assert (error.retryable, error.code) == (True, None)
    assert "HTTP 503" in error.message
    assert len(api.calls) == 1  # nothing is retried here: a repeated POST could text the person twice


def test_a_problem_details_error_is_read_too(api, provider):
    api.post(
        MESSAGES,
        status=400,
        json={
            "type": "https://www.twilio.com/docs/errors/21211",
            "title": "Invalid 'To' Phone Number",
            "status": 400,
            "code": 21211,
            "detail": "The 'To' number is not a valid phone number.",
        },
    )
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.retryable, caught.value.code) == (False, "21211")
    assert "not a valid phone number" in caught.value.message


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("read timed out (read timeout=10.0)"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ConnectionError("connection refused"),
    ],
)
def test_a_timeout_or_lost_connection_is_retryable(api, provider, failure):
    api.post(MESSAGES, body=failure)
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert (caught.value.retryable, caught.value.code) == (True, None)
    assert type(failure).__name__ in caught.value.message
    assert isinstance(caught.value.__cause__, requests.RequestException)


def test_a_malformed_request_is_not_retryable(api, provider):
    api.post(MESSAGES, body=requests.exceptions.InvalidHeader("bad header"))
    with pytest.raises(ProviderError) as caught:
        provider.send(outbound())
    assert caught.value.retryable is False


def test_the_timeout_can_be_set(api):
    api.post(MESSAGES, status=201, json=message_json())
    TwilioProvider(timeout=3.5).send(outbound())
    assert timeout(api.calls[0]) == 3.5


# ----------------------------------------------------------------------------------------------------------------
# Fetching.
# ----------------------------------------------------------------------------------------------------------------


def test_fetch_reads_status_price_and_sent_time(api, provider):
    api.get(
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json",
        json=message_json(status="delivered", sent="Thu, 01 Jan 2026 09:00:02 +0000", price="-0.07900"),
    )

    state = provider.fetch(SID)

    assert state == MessageState(
        sid=SID,
        status="delivered",
        to=TO,
        from_=FROM,
        body=BODY,
        price=Decimal("0.07900"),
        price_unit="USD",
        sent_at=datetime(2026, 1, 1, 9, 0, 2, tzinfo=UTC),
    )
    assert state.price is not None and state.price > 0
    assert api.calls[0].request.method == "GET"
    assert_authenticated(api)


def test_fetch_of_an_undelivered_message_carries_the_error_code(api, provider):
    api.get(
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json",
        json=message_json(status="undelivered", sent="Thu, 01 Jan 2026 09:00:02 +0000", error_code=30003),
    )
    state = provider.fetch(SID)
    assert (state.status, state.error_code, state.price) == ("undelivered", "30003", None)


def test_fetch_of_an_unknown_sid_is_final(api, provider):
    api.get(
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json",
        status=404,
        json=error_json(
            20404, f"The requested resource /2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json was not found", 404
        ),
    )
    with pytest.raises(ProviderError) as caught:
        provider.fetch(SID)
    assert (caught.value.retryable, caught.value.code) == (False, "20404")


# ----------------------------------------------------------------------------------------------------------------
# Finding a message whose send answer was lost.
# ----------------------------------------------------------------------------------------------------------------

SENT_AFTER = datetime(2026, 1, 1, 9, 0, 0, 400000, tzinfo=UTC)


def test_find_lists_the_pair_since_the_day_and_matches_the_exact_body(api, provider):
    api.get(
        MESSAGES,
        json=page_json(
            message_json("SM" + "a" * 32, body=BODY + " (2)", sent="Thu, 01 Jan 2026 09:00:05 +0000"),
            message_json(SID, status="sent", sent="Thu, 01 Jan 2026 09:00:01 +0000"),
            message_json("SM" + "b" * 32, body=BODY.lower(), sent="Thu, 01 Jan 2026 09:00:01 +0000"),
        ),
    )

    found = provider.find(to=TO, from_=FROM, body=BODY, sent_after=SENT_AFTER)

    assert found is not None
    assert (found.sid, found.status, found.body) == (SID, "sent", BODY)
    (call,) = api.calls
    assert call.request.method == "GET"
    assert call.request.url.startswith(MESSAGES + "?")
    # Twilio honours the date only; the time of day is checked against each message.
    assert query(call) == {"To": TO, "From": FROM, "DateSent>": "2026-01-01", "PageSize": "50"}
    assert_authenticated(api)


def test_find_asks_for_the_utc_date_of_an_aware_time_in_another_zone(api, provider):
    api.get(MESSAGES, json=page_json(message_json(created="Thu, 01 Jan 2026 21:30:00 +0000")))
    sydney_morning = datetime(2026, 1, 2, 8, 30, tzinfo=ZoneInfo("Australia/Sydney"))  # 21:30 UTC the day before

    found = provider.find(to=TO, from_=FROM, body=BODY, sent_after=sydney_morning)

    assert found is not None and found.sid == SID
    assert query(api.calls[0])["DateSent>"] == "2026-01-01"


def test_find_ignores_the_same_body_sent_earlier_that_day_and_takes_the_first_since(api, provider):
    later_duplicate = "SM" + "c" * 32
    api.get(
        MESSAGES,
        json=page_json(
            message_json(
                later_duplicate, created="Thu, 01 Jan 2026 09:05:00 +0000", sent="Thu, 01 Jan 2026 09:05:01 +0000"
            ),
            # Created within the same second as SENT_AFTER (Twilio's timestamps are whole seconds): a match.
            message_json(SID, created="Thu, 01 Jan 2026 09:00:00 +0000", sent="Thu, 01 Jan 2026 09:00:01 +0000"),
            message_json(
                "SM" + "d" * 32, created="Thu, 01 Jan 2026 08:59:59 +0000", sent="Thu, 01 Jan 2026 09:00:00 +0000"
            ),
        ),
    )
    found = provider.find(to=TO, from_=FROM, body=BODY, sent_after=SENT_AFTER)
    assert found is not None and found.sid == SID


def test_find_sees_a_message_still_queued_at_twilio(api, provider):
    # Queued messages have no date_sent, so the date-filtered listing misses them; the unfiltered one does not.
    api.get(
        MESSAGES,
        match=[
            responses.matchers.query_param_matcher(
                {"To": TO, "From": FROM, "DateSent>": "2026-01-01", "PageSize": "50"}
            )
        ],
        json=page_json(),
    )
    api.get(
        MESSAGES,
        match=[responses.matchers.query_param_matcher({"To": TO, "From": FROM, "PageSize": "50"})],
        json=page_json(message_json(status="queued", created="Thu, 01 Jan 2026 09:00:01 +0000", sent=None)),
    )

    found = provider.find(to=TO, from_=FROM, body=BODY, sent_after=SENT_AFTER)

    assert found is not None
    assert (found.sid, found.status, found.sent_at) == (SID, "queued", None)
    assert len(api.calls) == 2


def test_find_returns_none_when_nothing_matches(api, provider):
    old = message_json(created="Wed, 31 Dec 2025 09:00:00 +0000", sent="Wed, 31 Dec 2025 09:00:01 +0000")
    api.get(MESSAGES, json=page_json(message_json(body="something else", sent="Thu, 01 Jan 2026 09:00:01 +0000")))
    api.get(MESSAGES, json=page_json(old))
    assert provider.find(to=TO, from_=FROM, body=BODY, sent_after=SENT_AFTER) is None
    assert len(api.calls) == 2


def test_find_matches_a_body_twilio_prefixed_for_a_trial_account(api, provider):
    api.get(MESSAGES, json=page_json(message_json(body=TRIAL_PREFIX + BODY, sent="Thu, 01 Jan 2026 09:00:01 +0000")))
    found = provider.find(to=TO, from_=FROM, body=BODY, sent_after=SENT_AFTER)
    assert found is not None and found.sid == SID


def test_find_needs_an_aware_time(provider):
    with pytest.raises(ValueError, match="aware"):
        provider.find(to=TO, from_=FROM, body=BODY, sent_after=datetime(2026, 1, 1, 9))  # noqa: DTZ001


def test_a_failed_listing_is_a_provider_error(api, provider):
    api.get(MESSAGES, status=500, json=error_json(20500, "Internal Server Error", 500))
    with pytest.raises(ProviderError) as caught:
        provider.find(to=TO, from_=FROM, body=BODY, sent_after=SENT_AFTER)
    assert (caught.value.retryable, caught.value.code) == (True, "20500")
    assert isinstance(caught.value.__cause__, TwilioException)


def test_a_rate_limited_listing_carries_retry_after(api, provider):
    api.get(MESSAGES, status=429, json=error_json(20429, "Too Many Requests", 429), headers={"Retry-After": "90"})
    with pytest.raises(ProviderError) as caught:
        provider.find(to=TO, from_=FROM, body=BODY, sent_after=SENT_AFTER)
    error = caught.value
    assert (error.retryable, error.rate_limited, error.retry_after) == (True, True, timedelta(seconds=90))
    assert len(api.calls) == 1  # the second listing is not asked for


def test_a_rate_limited_fetch_carries_retry_after(api, provider):
    api.get(
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json",
        status=429,
        json=error_json(20429, "Too Many Requests", 429),
        headers={"Retry-After": "15"},
    )
    with pytest.raises(ProviderError) as caught:
        provider.fetch(SID)
    assert (caught.value.rate_limited, caught.value.retry_after) == (True, timedelta(seconds=15))


def test_a_refused_listing_is_final(api, provider):
    api.get(MESSAGES, status=403, json=error_json(20003, "Permission Denied", 403))
    with pytest.raises(ProviderError) as caught:
        provider.find(to=TO, from_=FROM, body=BODY, sent_after=SENT_AFTER)
    assert (caught.value.retryable, caught.value.code) == (False, "20003")


# ----------------------------------------------------------------------------------------------------------------
# Wiring.
# ----------------------------------------------------------------------------------------------------------------


def test_get_provider_returns_the_twilio_adapter(settings):
    settings.SMS_PROVIDER = "twilio"
    provider: MessageProvider = get_provider()
    assert isinstance(provider, TwilioProvider)
    assert get_provider() is provider
