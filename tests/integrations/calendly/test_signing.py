"""The Calendly-Webhook-Signature scheme: HMAC-SHA256 of "<t>.<raw body>", hex, with a replay window."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.calendly.signing import SignatureError, compute, sign, verify

BODY = b'{"event":"invitee.created"}'
NOW = 1_900_000_000


def test_the_signature_is_the_documented_hmac():
    expected = hmac.new(b"key", b"1900000000." + BODY, hashlib.sha256).hexdigest()
    assert compute(BODY, "key", NOW) == expected
    assert sign(BODY, "key", NOW) == f"t=1900000000,v1={expected}"
    assert verify(BODY, sign(BODY, "key", NOW), "key", tolerance=180, now=NOW + 180) == NOW


@pytest.mark.parametrize(
    ("header", "key", "now", "reason"),
    [
        (None, "key", NOW, "header is missing"),
        ("", "key", NOW, "header is missing"),
        (sign(BODY, "key", NOW), "", NOW, "No Calendly webhook signing key"),
        (sign(BODY, "other", NOW), "key", NOW, "does not match"),
        (sign(BODY + b" ", "key", NOW), "key", NOW, "does not match"),
        (sign(BODY, "key", NOW), "key", NOW + 181, "too old"),
        (sign(BODY, "key", NOW + 181), "key", NOW, "too old"),
        ("v1=abc", "key", NOW, "no timestamp"),
        ("t=soon,v1=abc", "key", NOW, "not a number"),
        (f"t={NOW}", "key", NOW, "no v1"),
        ("garbage", "key", NOW, "no timestamp"),
    ],
)
def test_refusals_say_why(header, key, now, reason):
    with pytest.raises(SignatureError, match=reason):
        verify(BODY, header, key, tolerance=180, now=now)


def test_a_stale_signature_is_refused_even_when_it_matches():
    # The replay window is checked after the match, so a captured delivery is refused for its age, not its content.
    with pytest.raises(SignatureError, match="too old"):
        verify(BODY, sign(BODY, "key", NOW - 1000), "key", tolerance=180, now=NOW)


@given(body=st.binary(max_size=200), other=st.binary(max_size=200), timestamp=st.integers(0, 2**40))
def test_only_the_signed_body_verifies(body, other, timestamp):
    header = sign(body, "key", timestamp)
    assert verify(body, header, "key", tolerance=0, now=timestamp) == timestamp
    if other != body:
        with pytest.raises(SignatureError):
            verify(other, header, "key", tolerance=0, now=timestamp)
