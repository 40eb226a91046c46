"""Twilio webhook signatures, written from Twilio's documented algorithm: checked against the values in Twilio's own
SDK tests and against the SDK's ``RequestValidator`` itself. Pure: no database, no settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from sms.signatures import signature_valid, twilio_signature

# The example Twilio's SDK tests sign (token "12345").
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
EXPECTED_WITH_PORT_443 = "kvajT1Ptam85bY51eRf/AJRuM3w="

CALLBACK_URL = "https://keel.test/webhooks/twilio/status"
CALLBACK = {
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "SmsSid": "SM0123456789abcdef0123456789abcdef",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "MessageStatus": "undelivered",
    "SmsStatus": "undelivered",
    "ErrorCode": "30003",
    "From": "+61480000001",
    "To": "+61412345678",
    "ApiVersion": "2010-04-01",
}


def test_the_documented_example_signs_as_twilio_does():
    assert twilio_signature(URL, PARAMS, TOKEN) == EXPECTED
    assert RequestValidator(TOKEN).compute_signature(URL, PARAMS) == EXPECTED


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (URL, PARAMS),
        (CALLBACK_URL, CALLBACK),
        (CALLBACK_URL, {}),
        (
            "https://keel.test/webhooks/twilio/status?org=acme&x=%20y",
            {"Body": "Réponse: ÉCHEC ✓ ü 😀", "b": "", "a": "1"},
        ),
    ],
)
def test_matches_the_sdks_request_validator(url, params):
    validator = RequestValidator("keel-sandbox-twilio-token")
    ours = twilio_signature(url, params, "keel-sandbox-twilio-token")
    assert ours == validator.compute_signature(url, params)
    assert validator.validate(url, params, ours)
    assert signature_valid(url, params, ours, "keel-sandbox-twilio-token")


@given(
    params=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=40), max_size=8),
    token=st.text(min_size=1, max_size=40),
)
def test_any_form_signs_as_the_sdk_does(params, token):
    assert twilio_signature(CALLBACK_URL, params, token) == RequestValidator(token).compute_signature(
        CALLBACK_URL, params
    )


def test_a_genuine_callback_is_valid():
    signature = twilio_signature(CALLBACK_URL, CALLBACK, "secret-token")
    assert signature_valid(CALLBACK_URL, CALLBACK, signature, "secret-token") is True


@pytest.mark.parametrize(
    ("url", "params", "token"),
    [
        (CALLBACK_URL, CALLBACK, "another-token"),
        ("https://keel.test/webhooks/twilio/statuS", CALLBACK, "secret-token"),
        ("http://keel.test/webhooks/twilio/status", CALLBACK, "secret-token"),
        (CALLBACK_URL + "?org=acme", CALLBACK, "secret-token"),
        (CALLBACK_URL, {**CALLBACK, "MessageStatus": "delivered"}, "secret-token"),
        (CALLBACK_URL, {**CALLBACK, "Price": "-0.0079"}, "secret-token"),
        (CALLBACK_URL, {key: value for key, value in CALLBACK.items() if key != "ErrorCode"}, "secret-token"),
    ],
)
def test_a_changed_token_url_or_parameter_is_invalid(url, params, token):
    signature = twilio_signature(CALLBACK_URL, CALLBACK, "secret-token")
    assert signature_valid(url, params, signature, token) is False
    assert RequestValidator(token).validate(url, params, signature) is False  # the SDK agrees


@pytest.mark.parametrize("signature", [None, "", "not base64 at all", EXPECTED + "x", EXPECTED[:-1], "é" * 28])
def test_a_missing_or_malformed_signature_is_invalid(signature):
    assert signature_valid(URL, PARAMS, signature, TOKEN) is False


def test_without_a_token_nothing_is_valid():
    assert signature_valid(URL, PARAMS, twilio_signature(URL, PARAMS, ""), "") is False


def test_names_are_signed_in_sorted_order_whatever_order_they_came_in():
    reversed_params = dict(reversed(list(CALLBACK.items())))
    assert twilio_signature(CALLBACK_URL, reversed_params, "t") == twilio_signature(CALLBACK_URL, CALLBACK, "t")


def test_the_url_is_accepted_with_or_without_its_default_port_as_the_sdk_does():
    validator = RequestValidator(TOKEN)
    # Twilio signed the URL with :443 written out; the request arrives without it, and the other way round.
    assert signature_valid(URL, PARAMS, EXPECTED_WITH_PORT_443, TOKEN)
    assert validator.validate(URL, PARAMS, EXPECTED_WITH_PORT_443)
    with_port = URL.replace(".com", ".com:443")
    assert signature_valid(with_port, PARAMS, EXPECTED, TOKEN)
    assert validator.validate(with_port, PARAMS, EXPECTED)
    # Plain http: the default port is 80, not 443.
    http = URL.replace("https", "http")
    http_signed = twilio_signature(http.replace(".com", ".com:80"), PARAMS, TOKEN)
    assert signature_valid(http, PARAMS, http_signed, TOKEN)
    assert not signature_valid(http, PARAMS, twilio_signature(http.replace(".com", ".com:443"), PARAMS, TOKEN), TOKEN)


def test_a_non_default_port_may_also_be_left_out():
    # The request reached port 8443 (a proxy); Twilio signed the URL it was given, without a port.
    assert signature_valid(URL.replace(".com", ".com:8443"), PARAMS, EXPECTED, TOKEN)
    assert RequestValidator(TOKEN).validate(URL.replace(".com", ".com:8443"), PARAMS, EXPECTED)


def test_a_url_whose_port_is_not_a_number_is_checked_as_given():
    url = "https://keel.test:https/webhooks"
    assert signature_valid(url, CALLBACK, twilio_signature(url, CALLBACK, "t"), "t")
    assert not signature_valid(url, CALLBACK, EXPECTED, "t")
