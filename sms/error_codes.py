"""What the SMS provider's error codes mean, in words staff and customers can act on.

Twilio reports why a message failed as a number (``ErrorCode`` in status callbacks, ``error_code`` on a refused
send); a job keeps that number. :func:`describe` adds the meaning of the codes a campaign meets in practice, and
leaves any other code as it is. Pure: no Django.
"""

from __future__ import annotations

MEANINGS: dict[str, str] = {
    # Refused when sending.
    "20003": "the provider refused Keel's credentials",
    "20429": "the provider was asked too often and asked Keel to slow down",
    "21211": "the number is not a valid phone number",
    "21408": "sending to this country is not enabled on the provider account",
    "21606": "the sending number cannot send messages to this destination",
    "21610": "the person replied STOP to the provider and is unsubscribed there",
    "21612": "the provider cannot route messages between these two numbers",
    "21614": "the number is not a mobile number",
    "21617": "the message is longer than the provider's 1,600 character limit",
    # Reported by the carrier after sending.
    "30001": "the provider's queue for the sending number overflowed",
    "30002": "the provider account is suspended",
    "30003": "the handset was unreachable (switched off or out of coverage)",
    "30004": "the message was blocked (the person or their carrier blocks this sender)",
    "30005": "the number is unknown to its carrier or no longer in service",
    "30006": "the number is a landline or its carrier cannot be reached",
    "30007": "the carrier filtered the message as spam or against its rules",
    "30008": "the carrier gave no reason",
    "30010": "the message cost more than the price limit set for it",
}


def describe(code: str | None) -> str:
    """``code`` with its meaning (``"30007: the carrier filtered the message ..."``), the bare code when its
    meaning is not known here, and ``""`` for no code."""
    code = (code or "").strip()
    if not code:
        return ""
    meaning = MEANINGS.get(code)
    return f"{code}: {meaning}" if meaning else code
