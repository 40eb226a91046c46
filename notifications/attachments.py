"""Files a template email carries, made when it is sent: a notice names each as ``{"kind", "id"}`` (plain values in
its context) and the app that owns the kind registers how to make it. The invoice email's PDF, for instance, is
``{"kind": "invoice_pdf", "id": "<invoice id>"}``, made by ``billing`` from the invoice as it then is.

A maker takes the organization's id and the object's id and returns ``(filename, content, mimetype)``; an object
that no longer exists raises ``LookupError``, and the email is not sent (there is nothing right to attach).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Maker = Callable[[Any, str], tuple[str, bytes | str, str]]
MAX_ATTACHMENTS = 5

_MAKERS: dict[str, Maker] = {}


def register(kind: str, maker: Maker) -> None:
    _MAKERS[kind] = maker


def problems(specs: Any) -> list[str]:
    """What is wrong with ``specs`` as a list of attachments ([] when nothing is)."""
    if not isinstance(specs, list) or len(specs) > MAX_ATTACHMENTS:
        return [f"Give at most {MAX_ATTACHMENTS} attachments as a list."]
    wrong = []
    for spec in specs:
        if not (
            isinstance(spec, dict) and set(spec) == {"kind", "id"} and all(isinstance(v, str) for v in spec.values())
        ):
            wrong.append('Each attachment is {"kind": ..., "id": ...} in text.')
        elif spec["kind"] not in _MAKERS:
            wrong.append(f"Unknown kind of attachment {spec['kind']!r}.")
    return wrong


def make(organization_id: Any, specs: list[dict[str, str]]) -> list[tuple[str, bytes | str, str]]:
    return [_MAKERS[spec["kind"]](organization_id, spec["id"]) for spec in specs]
