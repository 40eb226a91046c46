"""What a campaign message says: a template's placeholders filled in, the sender named, the opt-out line at the end.

Australia's Spam Act asks every commercial message to identify who sent it and to carry a working way to
unsubscribe. So a message begins with the organization's business name (unless the text already names it) and ends
with "Reply STOP to opt out" (unless it already says how to opt out).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

PLACEHOLDERS = frozenset({"first_name", "last_name", "link"})
OPT_OUT_LINE = "Reply STOP to opt out"
# Wording that already tells the reader how to opt out: "reply STOP", "text STOP to ...", "opt out: ...".
_HAS_OPT_OUT = re.compile(r"\b(reply|text|send|sms)\s+stop\b|\bopt[\s-]?out\b|\bunsubscribe\b", re.IGNORECASE)
_FORMATTER = string.Formatter()


def placeholders_of(body: str) -> list[str]:
    """The placeholders ``body`` uses, in order; ValueError naming a malformed or unknown one."""
    names = []
    try:
        parsed = list(_FORMATTER.parse(body))
    except ValueError:
        raise ValueError("A brace is not closed; write {{ or }} for a literal brace.") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            known = ", ".join(f"{{{known}}}" for known in sorted(PLACEHOLDERS))
            raise ValueError(f"{{{name}}} is not a placeholder; use {known}.")
        names.append(name)
    return names


def has_opt_out(text: str) -> bool:
    return bool(_HAS_OPT_OUT.search(text))


def compose(body: str, values: Mapping[str, str], sender: str) -> str:
    """The message a contact receives: ``body`` with its placeholders filled (empty when unknown), starting with
    ``sender`` unless the text names it, ending with the opt-out line unless it has one."""
    text = body.format_map({name: values.get(name, "") for name in PLACEHOLDERS}).strip()
    text = re.sub(r"[ \t]{2,}", " ", text)  # an empty first name leaves no double space
    if sender and sender.lower() not in text.lower():
        text = f"{sender}: {text}"
    if not has_opt_out(text):
        text = f"{text} {OPT_OUT_LINE}"
    return text
