"""The provider's error codes, in words."""

from __future__ import annotations

import pytest

from sms.error_codes import MEANINGS, describe


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("30007", "30007: the carrier filtered the message as spam or against its rules"),
        ("21610", "21610: the person replied STOP to the provider and is unsubscribed there"),
        (" 30003 ", "30003: the handset was unreachable (switched off or out of coverage)"),
        ("63016", "63016"),  # a code not described here is shown as it is
        ("", ""),
        (None, ""),
    ],
)
def test_a_code_is_shown_with_its_meaning(code, shown):
    assert describe(code) == shown


def test_every_described_code_is_a_five_digit_number_with_a_sentence_fragment():
    for code, meaning in MEANINGS.items():
        assert code.isdigit() and len(code) == 5
        assert meaning and meaning[0].islower() and not meaning.endswith(".")
