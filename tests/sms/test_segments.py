"""SMS segment counting: encodings, single and multipart boundaries, characters that never split."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.segments import GSM7_BASIC, GSM7_EXTENSION, Encoding, Segments, cost, count, is_gsm7

EMOJI = "\U0001f600"  # grinning face: outside the BMP, a surrogate pair in UTF-16
BASIC = sorted(GSM7_BASIC)
EXTENSION = sorted(GSM7_EXTENSION)


def gsm(n: int) -> str:
    return "a" * n


def ucs(n: int) -> str:
    # "你" is outside GSM-7 and inside the BMP: one UTF-16 code unit each.
    return "你" * n


# --- the alphabet ---------------------------------------------------------------------------------------------------


def test_tables_have_the_sizes_of_gsm_03_38() -> None:
    # 128 basic positions minus ESC; ten extension characters including form feed.
    assert len(GSM7_BASIC) == 127
    assert set("\f^{}\\[~]|€") == set(GSM7_EXTENSION)
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize("text", ["Hello, world!", "@£$¥èéùìòÇ", "ΔΦΓΛΩΠΨΣΘΞ", "line\nbreak\r", "{[€]}", ""])
def test_is_gsm7_accepts_the_alphabet(text: str) -> None:
    assert is_gsm7(text)


@pytest.mark.parametrize("text", ["backtick `", "ş", "你好", EMOJI, "ç", "\x1b", "tab\t", "curly \u2019quote"])
def test_is_gsm7_rejects_anything_else(text: str) -> None:
    assert not is_gsm7(text)


# --- GSM-7 ----------------------------------------------------------------------------------------------------------


def test_empty_text_is_one_gsm_part_of_nothing() -> None:
    assert count("") == Segments(Encoding.GSM7, units=0, parts=1, per_part=160)


@pytest.mark.parametrize(
    ("length", "parts", "per_part"),
    [(1, 1, 160), (160, 1, 160), (161, 2, 153), (306, 2, 153), (307, 3, 153), (459, 3, 153), (460, 4, 153)],
)
def test_gsm7_boundaries(length: int, parts: int, per_part: int) -> None:
    assert count(gsm(length)) == Segments(Encoding.GSM7, units=length, parts=parts, per_part=per_part)


@pytest.mark.parametrize("char", EXTENSION)
def test_extension_characters_cost_two_septets(char: str) -> None:
    assert count(char) == Segments(Encoding.GSM7, units=2, parts=1, per_part=160)
    # 158 + 2 fits a single message exactly; one more septet does not.
    assert count(gsm(158) + char).parts == 1
    assert count(gsm(159) + char) == Segments(Encoding.GSM7, units=161, parts=2, per_part=153)


def test_euro_stays_in_part_one_when_it_fits() -> None:
    # 151 + 2 = 153 fills part 1 exactly; the 10 trailing septets open part 2.
    assert count(gsm(151) + "€" + gsm(10)) == Segments(Encoding.GSM7, units=163, parts=2, per_part=153)


def test_euro_moves_to_part_two_rather_than_split() -> None:
    # Part 1 holds 152 septets; the escape pair would straddle septet 153/154, so it starts part 2 (2 + 151 = 153).
    # Units are exactly 2 * 153 but greedy packing needs a third part for the last "a".
    text = gsm(152) + "€" + gsm(152)
    assert count(text) == Segments(Encoding.GSM7, units=306, parts=3, per_part=153)
    assert math.ceil(306 / 153) == 2
    # Without the straddle (151 before the euro) the same 306 units fit 2 parts.
    assert count(gsm(151) + "€" + gsm(153)).parts == 2


def test_all_extension_text() -> None:
    # 80 euros are 160 septets: one message. 81 are 162 septets: 76 euros (152) per part, so 2 parts.
    assert count("€" * 80) == Segments(Encoding.GSM7, units=160, parts=1, per_part=160)
    assert count("€" * 81) == Segments(Encoding.GSM7, units=162, parts=2, per_part=153)
    # 153 euros: 76 + 76 + 1 parts, although 306 septets would be 2 full parts.
    assert count("€" * 153) == Segments(Encoding.GSM7, units=306, parts=3, per_part=153)


# --- UCS-2 ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["ş", "你", "`", "ç"])
def test_one_non_gsm_character_switches_everything_to_ucs2(char: str) -> None:
    # 100 GSM characters would be one GSM-7 message; with one outsider they are 101 UCS-2 units in 67-unit parts.
    assert count(gsm(100)) == Segments(Encoding.GSM7, units=100, parts=1, per_part=160)
    assert count(gsm(100) + char) == Segments(Encoding.UCS2, units=101, parts=2, per_part=67)


def test_extension_characters_are_one_unit_in_ucs2() -> None:
    assert count("€你") == Segments(Encoding.UCS2, units=2, parts=1, per_part=70)


@pytest.mark.parametrize(
    ("length", "parts", "per_part"),
    [(1, 1, 70), (70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67), (201, 3, 67), (202, 4, 67)],
)
def test_ucs2_boundaries(length: int, parts: int, per_part: int) -> None:
    assert count(ucs(length)) == Segments(Encoding.UCS2, units=length, parts=parts, per_part=per_part)


def test_emoji_is_two_code_units() -> None:
    assert count(EMOJI) == Segments(Encoding.UCS2, units=2, parts=1, per_part=70)
    assert count(EMOJI * 35) == Segments(Encoding.UCS2, units=70, parts=1, per_part=70)
    assert count(EMOJI * 35 + "a").parts == 2


def test_emoji_straddling_a_boundary_moves_to_the_next_part() -> None:
    # Part 1 holds 66 units; the surrogate pair would take units 67 and 68, so it opens part 2 (2 + 65 = 67).
    text = ucs(66) + EMOJI + ucs(66)
    assert count(text) == Segments(Encoding.UCS2, units=134, parts=3, per_part=67)
    # Shifted by one, the pair ends part 1 exactly and the same 134 units fit 2 parts.
    assert count(ucs(65) + EMOJI + ucs(67)) == Segments(Encoding.UCS2, units=134, parts=2, per_part=67)


# --- cost -----------------------------------------------------------------------------------------------------------


def test_cost_is_parts_times_price_exactly() -> None:
    assert cost(gsm(160), Decimal("0.0079")) == Decimal("0.0079")
    assert cost(gsm(161), Decimal("0.0079")) == Decimal("0.0158")
    assert cost(ucs(135), Decimal("0.0079")) == Decimal("0.0237")
    assert cost("", Decimal("0.05")) == Decimal("0.05")
    assert isinstance(cost("hi", Decimal("0.01")), Decimal)


def test_cost_keeps_sub_cent_precision() -> None:
    # No rounding here: a price with many places multiplies exactly.
    assert cost(gsm(307), Decimal("0.00123456789")) == Decimal("0.00370370367")


# --- properties -----------------------------------------------------------------------------------------------------

gsm_text = st.text(alphabet=st.sampled_from(BASIC + EXTENSION), max_size=700)
any_text = st.text(max_size=400) | gsm_text


def _reference_parts(widths: list[int], single: int, multi: int) -> int:
    """An independent count: cut the unit stream at every `multi` units, then push back any cut through a pair."""
    if sum(widths) <= single:
        return 1
    # Unit offsets at which each character starts; a part may start only at one of them.
    starts: list[int] = []
    offset = 0
    for width in widths:
        starts.append(offset)
        offset += width
    boundaries = set(starts)
    parts, part_start = 0, 0
    while part_start < offset:
        parts += 1
        end = part_start + multi
        while end < offset and end not in boundaries:
            end -= 1
        part_start = end
    return parts


@given(any_text)
def test_parts_cover_the_units(text: str) -> None:
    segments = count(text)
    assert segments.parts >= max(1, math.ceil(segments.units / segments.per_part))
    # Each straddle wastes at most one unit per part.
    assert segments.parts <= max(1, math.ceil(segments.units / (segments.per_part - 1)))
    if segments.parts == 1:
        assert segments.per_part in (160, 70)
        assert segments.units <= segments.per_part
    else:
        assert segments.per_part in (153, 67)


@given(any_text)
def test_units_match_the_encoding(text: str) -> None:
    segments = count(text)
    if is_gsm7(text):
        assert segments.encoding is Encoding.GSM7
        assert segments.units == len(text) + sum(char in GSM7_EXTENSION for char in text)
        widths = [2 if char in GSM7_EXTENSION else 1 for char in text]
        assert segments.parts == _reference_parts(widths, 160, 153)
    else:
        assert segments.encoding is Encoding.UCS2
        assert segments.units == len(text.encode("utf-16-le", "surrogatepass")) // 2
        widths = [2 if ord(char) > 0xFFFF else 1 for char in text]
        assert segments.parts == _reference_parts(widths, 70, 67)


@given(st.text(alphabet=st.sampled_from(BASIC), max_size=1000))
def test_basic_only_text_is_plain_arithmetic(text: str) -> None:
    expected = 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert count(text) == Segments(
        Encoding.GSM7, units=len(text), parts=expected, per_part=160 if expected == 1 else 153
    )


@given(
    st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_characters=GSM7_BASIC | GSM7_EXTENSION), min_size=1)
)
def test_bmp_text_outside_gsm_is_plain_ucs2_arithmetic(text: str) -> None:
    expected = 1 if len(text) <= 70 else math.ceil(len(text) / 67)
    assert count(text).parts == expected
    assert count(text).units == len(text)
