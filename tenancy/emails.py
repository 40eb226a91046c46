"""Transactional email: text and HTML templates under templates/email/, branded per organization.

Messages are rendered when the caller's transaction commits and handed to a Celery task that sends them through
django-anymail, so a rolled-back write never sends mail and a slow provider never holds a request.

Every message carries a ``Message-ID`` of Keel's making, fixed before the first try and kept by every retry (the
task's arguments hold it; a notification's delivery derives it from its own id). SendGrid keeps no idempotency key:
an email it accepted while its answer was lost (a read timeout) is sent again by the retry, but as the same message.
Mailboxes that drop a repeated Message-ID (Gmail's among them) show it once, and every mail client threads the two
together instead of showing two different emails.

:func:`email_failure` reads a provider's refusal: 429, 5xx and no answer at all may pass and are retried (after the
``Retry-After`` the provider asked for, when it is longer); any other refusal would be refused again and is not.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from msp.retry_after import retry_after_header
from tenancy.models import Organization

logger = logging.getLogger(__name__)

EXCERPT = 200  # characters of a provider's answer kept in an error


def message_id(key: str | uuid.UUID | None = None) -> str:
    """A ``Message-ID`` on the sending domain: ``<key@domain>``, or a new random one without ``key``. A caller that
    retries an email itself passes the same key each time (a delivery's id), so every try is the same message."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "keel.invalid"
    return f"<{key or uuid.uuid4().hex}@{domain}>"


@dataclass(frozen=True)
class EmailFailure:
    """Why the email provider did not take a message, in words staff can act on; ``retryable`` when a later try
    may pass, after at least ``retry_after`` when the provider named a wait."""

    message: str
    retryable: bool
    retry_after: timedelta | None = None


def email_failure(error: Exception) -> EmailFailure:
    """Read an error the email backend raised: 429, 5xx and network errors may pass; any other refusal would not."""
    backend = getattr(getattr(error, "payload", None), "backend", None)  # a network error carries only its payload
    provider = getattr(error, "esp_name", None) or getattr(backend, "esp_name", None) or "The mail server"
    if isinstance(error, AnymailRequestsAPIError) and error.status_code is not None:
        status = int(error.status_code)
        answer = " ".join(str(getattr(error.response, "text", "") or "").split())[:EXCERPT]
        retryable = status == 429 or status >= 500
        wait = retry_after_header(getattr(error.response, "headers", None)) if retryable else None
        return EmailFailure(f"{provider} answered {status}: {answer}", retryable=retryable, retry_after=wait)
    if isinstance(error, AnymailRequestsAPIError) or not isinstance(error, AnymailError):
        cause = error.__cause__ or error
        return EmailFailure(f"{provider} could not be reached: {type(cause).__name__}.", retryable=True)
    # Refused before or without an HTTP answer (every recipient rejected, content it cannot send): it would be again.
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return EmailFailure(f"{provider} refused the email: {first_line[:EXCERPT]}", retryable=False)


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
    key: str | uuid.UUID | None = None,
) -> None:
    """Send ``templates/email/<template>.{subject.txt,txt,html}`` to ``to`` after the current transaction commits.
    ``headers`` are extra message headers (``Auto-Submitted: auto-replied`` on automatic answers, so that other
    systems do not answer them in turn). ``attachments`` are files, each ``(filename, content, mimetype)``, text or
    bytes (a PDF travels base64-encoded): they go through the task queue, so keep them to what an email carries.

    ``now``: render and send it in this process at once, raising the email backend's error, for a caller that is a
    background job retrying and recording the outcome itself (a notification's delivery). ``key``: what makes the
    message's ``Message-ID`` (:func:`message_id`) for such a caller, the same on each of its tries; without it the
    Message-ID is made here, once, and every retry of the task sends it."""
    recipients = [to] if isinstance(to, str) else list(to)
    headers = {"Message-ID": message_id(key), **(headers or {})}
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

        message: dict[str, Any] = {**render_email(template, context, organization), "headers": headers}
        if files:
            message["attachments"] = files
        try:
            send_email.delay(recipients=recipients, **message)
        except Exception:  # the broker is down: send in-process rather than lose the message
            logger.warning("could not enqueue email %r; sending it in-process", template, exc_info=True)
            send_email.apply(kwargs={"recipients": recipients, **message})

    transaction.on_commit(_enqueue)
