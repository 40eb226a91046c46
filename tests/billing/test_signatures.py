"""Stripe-Signature verification (pure)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from billing.signatures import SignatureError, sign, verify

BODY = b'{"id":"evt_1","type":"checkout.session.completed"}'
SECRET = "whsec_abc"
NOW = 1_800_000_000


def test_signs_like_stripe_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, SECRET, NOW) == f"t={NOW},v1={expected}"


def test_a_genuine_fresh_signature_verifies():
    assert verify(BODY, sign(BODY, SECRET, NOW), SECRET, tolerance=300, now=NOW + 299) == NOW


def test_any_matching_v1_is_accepted_while_secrets_roll():
    good = sign(BODY, SECRET, NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{good},v0=ignored"
    assert verify(BODY, header, SECRET, tolerance=300, now=NOW) == NOW


@pytest.mark.parametrize(
    ("header", "secret", "now", "reason"),
    [
        (None, SECRET, NOW, "missing"),
        ("", SECRET, NOW, "missing"),
        (f"v1={'a' * 64}", SECRET, NOW, "no timestamp"),
        (f"t=soon,v1={'a' * 64}", SECRET, NOW, "not a number"),
        (f"t={NOW}", SECRET, NOW, "no v1"),
        (sign(BODY, "whsec_other", NOW), SECRET, NOW, "does not match"),
        (sign(BODY + b" ", SECRET, NOW), SECRET, NOW, "does not match"),
        (sign(BODY, SECRET, NOW), SECRET, NOW + 301, "too old"),
        (sign(BODY, SECRET, NOW + 301), SECRET, NOW, "too old"),
        (sign(BODY, SECRET, NOW), "", NOW, "No webhook signing secret"),
    ],
)
def test_bad_signatures_are_refused_with_the_reason(header, secret, now, reason):
    with pytest.raises(SignatureError, match=reason):
        verify(BODY, header, secret, tolerance=300, now=now)


def test_a_signature_for_another_timestamp_does_not_verify():
    # Re-stamping a captured delivery with a fresh time breaks the signature.
    captured = sign(BODY, SECRET, NOW).split(",")[1]
    with pytest.raises(SignatureError, match="does not match"):
        verify(BODY, f"t={NOW + 1000},{captured}", SECRET, tolerance=300, now=NOW + 1000)
