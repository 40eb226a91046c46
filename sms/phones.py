"""Phone numbers as E.164, with the reason when a number cannot be one."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "AU"


def e164(raw: str, region: str = DEFAULT_REGION) -> str:
    """``raw`` (``0412 345 678``, ``+61412345678``, ``(02) 9876 5432``) as E.164, read in ``region`` when it has no
    country code. ValueError with a reason a person can act on when it is not a valid number."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("A phone number is required.")
    try:
        number = phonenumbers.parse(text, (region or DEFAULT_REGION).upper())
    except phonenumbers.NumberParseException:
        raise ValueError(f"{text!r} is not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid phone number in {region.upper()} or with its country code.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_valid(region: str) -> bool:
    return (region or "").upper() in phonenumbers.SUPPORTED_REGIONS
