"""Which failed card payments are worth trying again, and what to tell the customer. Pure: no Django.

A *hard* decline is one no retry can fix: the card is lost, stolen, closed or wrong, or the bank wants the card
holder present (authentication, a PIN). Collection never retries those; it asks the customer to pay another way.
Everything else (insufficient funds, a generic decline, the bank being unavailable) is *soft* and retried on the
schedule. Codes are Stripe's: ``failure_code`` is the error code (``card_declined``, ``expired_card``, …) and
``decline_code`` the issuer's reason when the card was declined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# Error codes that are final whatever the decline code.
HARD_FAILURE_CODES = frozenset(
    {
        "authentication_required",
        "card_not_supported",
        "expired_card",
        "incorrect_cvc",
        "incorrect_number",
        "incorrect_zip",
        "invalid_cvc",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "invalid_number",
        "payment_intent_authentication_failure",
        "payment_method_not_available",
        "payment_method_unactivated",
    }
)

HARD_DECLINE_CODES = frozenset(
    {
        "authentication_required",
        "card_not_supported",
        "currency_not_supported",
        "do_not_try_again",
        "expired_card",
        "fraudulent",
        "incorrect_cvc",
        "incorrect_number",
        "incorrect_pin",
        "incorrect_zip",
        "invalid_account",
        "invalid_amount",
        "invalid_cvc",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "invalid_number",
        "invalid_pin",
        "lost_card",
        "merchant_blacklist",
        "new_account_information_available",
        "not_permitted",
        "offline_pin_required",
        "online_or_offline_pin_required",
        "pickup_card",
        "pin_try_exceeded",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "service_not_allowed",
        "stolen_card",
        "stop_payment_order",
        "testmode_decline",
        "transaction_not_allowed",
    }
)

# What the customer reads. Lost, stolen and fraud declines get the generic wording, as card networks ask.
_MESSAGES = {
    "authentication_required": "Your bank asked you to confirm this payment, which we cannot do for you.",
    "expired_card": "The card has expired.",
    "insufficient_funds": "The card has insufficient funds.",
    "incorrect_cvc": "The card's security code was wrong.",
    "incorrect_number": "The card number is wrong.",
    "card_not_supported": "The card does not support this kind of payment.",
    "currency_not_supported": "The card does not support payments in this currency.",
    "card_velocity_exceeded": "The card has reached its spending limit.",
    "processing_error": "The payment could not be processed.",
    "try_again_later": "The bank could not be reached.",
}
_GENERIC = "The card was declined."


@dataclass(frozen=True)
class Decline:
    hard: bool
    reason: str  # the code that decided, for staff
    message: str  # for the customer


def classify(failure_code: str | None, decline_code: str | None = None) -> Decline:
    """A failed payment's verdict. Unknown codes are soft: a retry costs little, and the schedule is finite."""
    failure = (failure_code or "").strip().lower()
    decline = (decline_code or "").strip().lower()
    hard = failure in HARD_FAILURE_CODES or decline in HARD_DECLINE_CODES
    reason = decline or failure or "unknown"
    message = _MESSAGES.get(decline) or _MESSAGES.get(failure) or _GENERIC
    return Decline(hard=hard, reason=reason, message=message)


_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_schedule(text: str) -> tuple[timedelta, ...]:
    """``"1h,6h,1d,3d,7d"``: the waits before each retry, in order. Raises ValueError naming the bad part."""
    waits = []
    for part in (piece.strip().lower() for piece in text.split(",")):
        number, unit = part[:-1], part[-1:]
        if unit not in _UNITS or not number.isdigit() or int(number) == 0:
            raise ValueError(f"{part!r} is not a wait such as 30m, 6h or 3d")
        waits.append(int(number) * _UNITS[unit])
    return tuple(waits)


def parse_days(text: str) -> tuple[int, ...]:
    """``"-3,1,7,14"``: days from a due date (negative: before it), sorted. Raises ValueError naming the bad part."""
    days = set()
    for part in (piece.strip() for piece in text.split(",") if piece.strip()):
        try:
            days.add(int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a whole number of days") from None
    return tuple(sorted(days))


def next_retry(failures: int, schedule: tuple[timedelta, ...], max_attempts: int) -> timedelta | None:
    """How long after the ``failures``-th failed automatic charge to try again; None once ``max_attempts`` charges
    were made. The last wait repeats when there are more attempts than waits."""
    if failures >= max_attempts or not schedule:
        return None
    return schedule[min(failures, len(schedule)) - 1]
