"""Transactional email: text and HTML templates under templates/email/, branded per organization.

Messages are rendered when the caller's transaction commits and handed to a Celery task that sends them through
django-anymail, so a rolled-back write never sends mail and a slow provider never holds a request.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from tenancy.models import Organization

logger = logging.getLogger(__name__)


def branding_context(organization: Organization | None) -> dict[str, Any]:
    if organization is None:
        return {
            "brand_name": "Keel",
            "brand_primary": "#1f4e79",
            "brand_accent": "#f2a900",
            "brand_support_email": settings.DEFAULT_FROM_EMAIL,
        }
    return {
        "brand_name": organization.display_name,
        "brand_primary": organization.brand_primary_color,
        "brand_accent": organization.brand_accent_color,
        "brand_support_email": organization.brand_support_email or settings.DEFAULT_FROM_EMAIL,
    }


def render_email(template: str, context: dict[str, Any], organization: Organization | None) -> dict[str, str]:
    full = {**branding_context(organization), "site_url": settings.SITE_URL, **context}
    subject = render_to_string(f"email/{template}.subject.txt", full).strip().replace("\n", " ")
    return {
        "subject": subject,
        "text": render_to_string(f"email/{template}.txt", full),
        "html": render_to_string(f"email/{template}.html", full),
    }


def email_send(
    *,
    to: str | list[str],
    template: str,
    context: dict[str, Any],
    organization: Organization | None = None,
    headers: dict[str, str] | None = None,
    attachments: Sequence[tuple[str, bytes | str, str]] | None = None,
    now: bool = False,
) -> None:
    """Send ``templates/email/<template>.{subject.txt,txt,html}`` to ``to`` after the current transaction commits.
    ``headers`` are extra message headers (``Auto-Submitted: auto-replied`` on automatic answers, so that other
    systems do not answer them in turn). ``attachments`` are files, each ``(filename, content, mimetype)``, text or
    bytes (a PDF travels base64-encoded): they go through the task queue, so keep them to what an email carries.

    ``now``: render and send it in this process at once, raising the email backend's error, for a caller that is a
    background job retrying and recording the outcome itself (a notification's delivery)."""
    recipients = [to] if isinstance(to, str) else list(to)
    if now:
        rendered = render_email(template, context, organization)
        message = EmailMultiAlternatives(rendered["subject"], rendered["text"], settings.DEFAULT_FROM_EMAIL,
                                         recipients, headers=headers)  # fmt: skip
        message.attach_alternative(rendered["html"], "text/html")
        for name, content, mimetype in attachments or ():
            message.attach(name, content, mimetype)
        message.send()
        return
    files = [
        [name, base64.b64encode(content).decode(), mimetype, "base64"]
        if isinstance(content, bytes)
        else [name, content, mimetype]
        for name, content, mimetype in attachments or ()
    ]

    def _enqueue() -> None:
        from tenancy.tasks import send_email

        message: dict[str, Any] = {**render_email(template, context, organization)}
        if headers:
            message["headers"] = dict(headers)
        if files:
            message["attachments"] = files
        try:
            send_email.delay(recipients=recipients, **message)
        except Exception:  # the broker is down: send in-process rather than lose the message
            logger.warning("could not enqueue email %r; sending it in-process", template, exc_info=True)
            send_email.apply(kwargs={"recipients": recipients, **message})

    transaction.on_commit(_enqueue)
