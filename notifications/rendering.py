"""The words of a notification: ``templates/notifications/<event_type>/<channel>.txt``, else the generic
``templates/notifications/generic/<channel>.txt``.

Templates are plain text, rendered without HTML escaping (the portal escapes titles and bodies when it shows them;
email HTML escapes them in ``email/notification.html``). For ``email`` and ``in_app`` the first line is the subject
(or title) and the rest the body; for ``sms`` and ``slack`` the whole text is the message. Slack reads ``&``, ``<``
and ``>`` as markup, so the context's text is escaped for Slack before it is rendered.

Every template sees the caller's context plus ``event_label`` (the event type's name for people), ``organization``
(its display name), ``recipient`` (the person's first name; empty for Slack) and ``url`` made absolute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.template import Context, engines
from django.utils import formats, timezone

from notifications.catalogue import EMAIL, EVENT_TYPES, IN_APP, SLACK

GENERIC = "generic"
TITLE_LENGTH = 200


@dataclass(frozen=True)
class Rendered:
    title: str  # the subject (email) or title (in-app); empty for SMS and Slack
    body: str


def template_names(event_type: str, channel: str) -> list[str]:
    return [f"notifications/{event_type}/{channel}.txt", f"notifications/{GENERIC}/{channel}.txt"]


def absolute_url(url: str) -> str:
    return f"{settings.SITE_URL}{url}" if url.startswith("/") else url


def _slack_escape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


def render(*, event_type: str, channel: str, context: dict[str, Any]) -> Rendered:
    """The notification for ``channel`` in the words of the event type's template (or the generic one)."""
    values = dict(context)
    if channel == SLACK:
        values = {name: _slack_escape(value) for name, value in values.items()}
    values.setdefault("event_label", EVENT_TYPES[event_type].label if event_type in EVENT_TYPES else event_type)
    values["url"] = absolute_url(str(context.get("url") or ""))
    engine = engines["django"].engine  # type: ignore[attr-defined]
    template = engine.select_template(template_names(event_type, channel))
    text = template.render(Context(values, autoescape=False)).replace("\r\n", "\n").strip()
    if channel not in (EMAIL, IN_APP):
        return Rendered(title="", body=text)
    first, _, rest = text.partition("\n")
    return Rendered(title=" ".join(first.split())[:TITLE_LENGTH], body=rest.strip())


def date_text(value: date | datetime | None, format: str) -> str:
    """``value`` written as an email template's ``|date:format`` writes it (a datetime in the current time zone); ""
    for None. A notice's context is stored as JSON, so callers pass dates already written this way."""
    if value is None:
        return ""
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, format)
