"""SMS segment counting, the way carriers bill it. Pure: standard library only, plain values in, plain values out.

Encoding
--------
A text goes out in the GSM 03.38 (3GPP TS 23.038) 7-bit default alphabet when every character is in its basic table
or its extension table; otherwise the whole text goes out in UCS-2. One character outside the alphabet ("ş", "你",
an emoji, a backtick) therefore switches the whole message, and roughly halves what each segment holds.

- GSM-7 counts septets. A basic-table character is one septet. An extension-table character (``^ { } \\ [ ~ ] |``,
  the euro sign and form feed) is sent as ESC followed by the character: two septets.
- UCS-2 counts UTF-16 code units. A character outside the Basic Multilingual Plane (most emoji) is a surrogate pair:
  two code units. Python strings count code points, so ``len`` is not the count.

0x09 of the basic table is the capital C with cedilla, as drawn in TS 23.038. Unicode's mapping file reads it as the
small c with cedilla; we keep the capital only, so a text with "ç" is counted (and priced) as UCS-2. Erring that way
never bills more segments than we quoted.

Parts
-----
A text that fits in one message is one part: up to 160 septets or 70 code units. A longer text is sent as a
concatenated message: each part gives 7 septets (6 octets) to the user data header, leaving 153 septets or 67 code
units per part. Parts are packed greedily, and neither an escape pair nor a surrogate pair is ever split between two
parts (a phone could not rebuild the character), so a two-unit character that would straddle a boundary moves whole to
the next part and leaves one unit of the previous part empty. That is why ``parts`` can exceed
``ceil(units / per_part)``.

The empty text is one part of 0 units: a provider still sends, and bills, one message for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Encoding",
    "Segments",
    "cost",
    "count",
    "is_gsm7",
]

# The 128 positions of the basic table, in code order, minus 0x1B (ESC, which announces the extension table and is
# not a character of its own): 127 characters. Greek capitals are written as escapes so nobody mistakes them for Latin.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039eÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# Characters reached through ESC: each costs two septets. Form feed is 0x1B 0x0A.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

_GSM7_SINGLE = 160
_GSM7_MULTI = 153
_UCS2_SINGLE = 70
_UCS2_MULTI = 67


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class Segments:
    """How a text is sent: its encoding, its size in that encoding, and the parts billed.

    ``per_part`` is what one part of this message holds: 160 or 70 when it is a single message, 153 or 67 when it is
    concatenated.
    """

    encoding: Encoding
    units: int
    parts: int
    per_part: int


_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 basic or extension table."""
    return _GSM7_ALL.issuperset(text)


def count(text: str) -> Segments:
    """Encoding, units and billed parts of ``text`` (see the module docstring for the rules)."""
    if is_gsm7(text):
        # Most texts fit one part with no escapes: settle those without looking at each character in Python.
        units = len(text) + sum(map(GSM7_EXTENSION.__contains__, text))
        if units <= _GSM7_SINGLE:
            return Segments(encoding=Encoding.GSM7, units=units, parts=1, per_part=_GSM7_SINGLE)
        widths = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return _pack(Encoding.GSM7, widths, single=_GSM7_SINGLE, multi=_GSM7_MULTI)
    # A code point above U+FFFF is a surrogate pair in UTF-16. (A lone surrogate in a Python string is one unit.)
    widths = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return _pack(Encoding.UCS2, widths, single=_UCS2_SINGLE, multi=_UCS2_MULTI)


def cost(text: str, price_per_segment: Decimal) -> Decimal:
    """Price of sending ``text``: billed parts times the price of one segment, exact (rounding is the caller's)."""
    return price_per_segment * count(text).parts


def _pack(encoding: Encoding, widths: list[int], *, single: int, multi: int) -> Segments:
    units = sum(widths)
    if units <= single:
        return Segments(encoding=encoding, units=units, parts=1, per_part=single)
    parts, filled = 1, 0
    for width in widths:
        # A two-unit character never straddles parts: it starts the next one whole.
        if filled + width > multi:
            parts, filled = parts + 1, 0
        filled += width
    return Segments(encoding=encoding, units=units, parts=parts, per_part=multi)
