"""The sandbox SMS provider: what it records and answers, the fate it picks for each message, and the status callbacks
it hands the app to post through the real webhook. No database, no network."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sms.providers import get_provider
from sms.providers.base import MessageProvider, MessageState, OutboundMessage, ProviderError
from sms.providers.sandbox import SandboxProvider, callbacks, outcome
from sms.signatures import signature_valid, twilio_signature

ACCOUNT = "AC" + "0" * 32
FROM = "+61480000001"
TO = "+61412345678"
CALLBACK_URL = "https://keel.test/webhooks/twilio/status"


@pytest.fixture(autouse=True)
def _clean_sandbox():
    SandboxProvider.reset()
    yield
    SandboxProvider.reset()


@pytest.fixture
def provider() -> SandboxProvider:
    return SandboxProvider()


def message(
    body: str = "Acme: your technician arrives at 9am. Reply STOP to opt out.", **changes: str
) -> OutboundMessage:
    fields = {"to": TO, "from_": FROM, "body": body, "status_callback": CALLBACK_URL, **changes}
    return OutboundMessage(**fields)


def sid_with(final_status: str) -> str:
    return next(sid for sid in (f"SM{i:032x}" for i in range(1000)) if outcome(sid)[0] == final_status)


def test_send_records_the_message_and_answers_queued_with_a_twilio_shaped_sid(provider):
    before = datetime.now(UTC)
    state = provider.send(message())

    assert re.fullmatch(r"SM[0-9a-f]{32}", state.sid)
    assert state == MessageState(sid=state.sid, status="queued", to=TO, from_=FROM, body=message().body)
    (record,) = SandboxProvider.records()
    assert record.message == message()
    assert record.state == state
    assert before <= record.created_at <= datetime.now(UTC)
    assert record.created_at.tzinfo is not None


def test_every_instance_shares_the_record_and_reset_clears_it(provider):
    provider.send(message())
    SandboxProvider().send(message(body="second"))
    assert [record.message.body for record in SandboxProvider.records()] == [message().body, "second"]
    SandboxProvider.reset()
    assert SandboxProvider.records() == []


def test_sends_from_many_threads_are_all_recorded(provider):
    def send_some(n: int) -> None:
        for i in range(50):
            provider.send(message(body=f"thread {n} message {i}"))

    threads = [threading.Thread(target=send_some, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = SandboxProvider.records()
    assert len(records) == 400
    assert len({record.state.sid for record in records}) == 400


def test_fetch_answers_with_the_fate_the_sid_picks(provider):
    state = provider.send(message())
    fetched = provider.fetch(state.sid)
    status, error_code = outcome(state.sid)
    assert (fetched.sid, fetched.status, fetched.error_code) == (state.sid, status, error_code)
    assert (fetched.to, fetched.from_, fetched.body) == (TO, FROM, message().body)
    assert fetched.sent_at == SandboxProvider.records()[0].created_at


@pytest.mark.parametrize(
    ("final_status", "error_code", "price"),
    [("delivered", None, Decimal("0.0079")), ("undelivered", "30003", None), ("failed", "30008", None)],
)
def test_a_delivered_message_has_a_price_and_a_failed_one_an_error_code(
    provider, monkeypatch, final_status, error_code, price
):
    sid = sid_with(final_status)
    monkeypatch.setattr("sms.providers.sandbox.secrets.token_hex", lambda n: sid[2:])
    provider.send(message())
    fetched = provider.fetch(sid)
    assert (fetched.status, fetched.error_code, fetched.price) == (final_status, error_code, price)
    assert fetched.price_unit == ("USD" if price else None)


def test_fetching_an_unknown_sid_is_twilios_not_found(provider):
    with pytest.raises(ProviderError) as caught:
        provider.fetch("SM" + "f" * 32)
    assert (caught.value.code, caught.value.retryable) == ("20404", False)


def test_find_matches_exactly_this_body_from_and_to_since_the_time_given(provider):
    start = datetime.now(UTC)
    provider.send(message(body="other body"))
    provider.send(message(to="+61400000002"))
    provider.send(message(from_="+61480000009"))
    wanted = provider.send(message())
    provider.send(message())  # a later duplicate: the first one is the answer

    found = provider.find(to=TO, from_=FROM, body=message().body, sent_after=start)
    assert found is not None
    assert found.sid == wanted.sid
    assert found.status == outcome(wanted.sid)[0]
    assert provider.find(to=TO, from_=FROM, body=message().body + " ", sent_after=start) is None
    assert (
        provider.find(to=TO, from_=FROM, body=message().body, sent_after=datetime.now(UTC) + timedelta(seconds=1))
        is None
    )


def test_find_needs_an_aware_time(provider):
    with pytest.raises(ValueError, match="aware"):
        provider.find(to=TO, from_=FROM, body="x", sent_after=datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"to": "0412 345 678"}, "21211"),
        ({"to": "+0412345678"}, "21211"),
        ({"from_": "Acme"}, "21212"),
        ({"body": ""}, "21602"),
        ({"body": "x" * 1601}, "21617"),
    ],
)
def test_what_twilio_refuses_the_sandbox_refuses_with_twilios_code(provider, changes, code):
    with pytest.raises(ProviderError) as caught:
        provider.send(message(**changes))
    assert (caught.value.code, caught.value.retryable) == (code, False)
    assert SandboxProvider.records() == []


def test_a_long_run_forgets_the_oldest_messages(provider, monkeypatch):
    monkeypatch.setattr("sms.providers.sandbox.RECORD_LIMIT", 3)
    sids = [provider.send(message(body=f"m{i}")).sid for i in range(5)]
    assert [record.state.sid for record in SandboxProvider.records()] == sids[2:]


# ----------------------------------------------------------------------------------------------------------------
# Simulated status callbacks.
# ----------------------------------------------------------------------------------------------------------------


def state_for(sid: str) -> MessageState:
    return MessageState(sid=sid, status="queued", to=TO, from_=FROM, body="hello")


def test_a_delivered_message_calls_back_sent_then_delivered():
    sid = sid_with("delivered")
    sent, delivered = callbacks(state_for(sid), account_sid=ACCOUNT)
    common = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT,
        "From": FROM,
        "To": TO,
        "ApiVersion": "2010-04-01",
    }
    assert sent == {**common, "MessageStatus": "sent", "SmsStatus": "sent"}
    assert delivered == {**common, "MessageStatus": "delivered", "SmsStatus": "delivered"}


@pytest.mark.parametrize(("final_status", "error_code"), [("undelivered", "30003"), ("failed", "30008")])
def test_a_failed_message_calls_back_with_twilios_error_code(final_status, error_code):
    sid = sid_with(final_status)
    sent, final = callbacks(state_for(sid), account_sid=ACCOUNT)
    assert sent["MessageStatus"] == "sent" and "ErrorCode" not in sent
    assert (final["MessageStatus"], final["SmsStatus"], final["ErrorCode"]) == (final_status, final_status, error_code)
    assert "Price" not in final


def test_the_fate_is_deterministic_and_about_one_in_twelve_fails():
    sids = [f"SM{i:032x}" for i in range(1200)]
    first = [callbacks(state_for(sid), account_sid=ACCOUNT) for sid in sids]
    again = [callbacks(state_for(sid), account_sid=ACCOUNT) for sid in sids]
    assert first == again
    finals = Counter(calls[-1]["MessageStatus"] for calls in first)
    failing = finals["undelivered"] + finals["failed"]
    assert set(finals) == {"delivered", "undelivered", "failed"}
    assert 70 <= failing <= 135  # 100 expected
    assert all(calls[-1]["MessageStatus"] == outcome(sid)[0] for sid, calls in zip(sids, first, strict=True))


def test_signed_callbacks_verify_with_the_sandbox_token(settings):
    settings.TWILIO_AUTH_TOKEN = "keel-sandbox-twilio-token"
    for params in callbacks(state_for(sid_with("undelivered")), account_sid=ACCOUNT):
        signature = twilio_signature(CALLBACK_URL, params, settings.TWILIO_AUTH_TOKEN)
        assert signature_valid(CALLBACK_URL, params, signature, settings.TWILIO_AUTH_TOKEN)
        assert not signature_valid(
            CALLBACK_URL, {**params, "MessageStatus": "delivered"}, signature, settings.TWILIO_AUTH_TOKEN
        )


def test_get_provider_returns_the_sandbox_once_per_process(settings):
    settings.SMS_PROVIDER = "sandbox"
    provider: MessageProvider = get_provider()
    assert isinstance(provider, SandboxProvider)
    assert get_provider() is provider


def test_get_provider_refuses_an_unknown_name(settings):
    settings.SMS_PROVIDER = "carrier-pigeon"
    with pytest.raises(LookupError, match="carrier-pigeon"):
        get_provider()
