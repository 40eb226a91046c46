from __future__ import annotations

import base64
import logging
from datetime import timedelta
from typing import Any

from anymail.exceptions import AnymailError
from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from msp.retry_after import wait_before_retry
from tenancy.emails import email_failure
from tenancy.models import Invitation
from tenancy.services.reports import scheduled_reports_send

logger = logging.getLogger(__name__)

EMAIL_RETRY_DELAYS = (60, 300, 1800, 7200)  # seconds before retries 1..4: the last try about 2.5 hours in


@shared_task(bind=True, max_retries=len(EMAIL_RETRY_DELAYS))
def send_email(
    self: Any,
    *,
    recipients: list[str],
    subject: str,
    text: str,
    html: str,
    headers: dict[str, str] | None = None,
    attachments: list[list[str]] | None = None,
) -> None:
    """Send one message; ``attachments`` are ``[filename, content, mimetype]`` for text files, and
    ``[filename, base64 content, mimetype, "base64"]`` for binary ones. ``headers`` hold the message's Message-ID
    (``tenancy.emails.email_send`` makes it), so a retry sends the same message.

    A refusal that may pass (429, 5xx, no answer) is retried after ``EMAIL_RETRY_DELAYS``, or after the provider's
    ``Retry-After`` when that is longer; any other refusal (a 400: a sender the provider does not know, an address it
    rejects) would be refused again, so it fails at once with the provider's words in the log."""
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, recipients, headers=headers)
    message.attach_alternative(html, "text/html")
    for filename, content, mimetype, *encoding in attachments or []:
        message.attach(filename, base64.b64decode(content) if encoding == ["base64"] else content, mimetype)
    try:
        message.send()
    except (AnymailError, OSError) as error:
        failure = email_failure(error)
        tries = self.request.retries
        if not failure.retryable or tries >= len(EMAIL_RETRY_DELAYS):
            logger.error("email %r to %d recipient(s) not sent after %d tries: %s", subject, len(recipients), tries + 1,
                         failure.message)  # fmt: skip
            raise
        longest = timedelta(seconds=max(EMAIL_RETRY_DELAYS))
        wait = wait_before_retry(timedelta(seconds=EMAIL_RETRY_DELAYS[tries]), failure.retry_after, longest=longest)
        logger.warning("email %r: %s; trying again in %ds", subject, failure.message, wait.total_seconds())
        raise self.retry(exc=error, countdown=wait.total_seconds()) from error


@shared_task
def purge_expired_invitations() -> int:
    """Invitations expired for more than 30 days are deleted; their audit events remain."""
    cutoff = timezone.now() - timedelta(days=30)
    deleted, _ = Invitation.objects.filter(accepted_at__isnull=True, expires_at__lt=cutoff).delete()
    return deleted


@shared_task
def send_scheduled_reports() -> int:
    """Every 15 minutes: send the scheduled reports that are due (see ``scheduled_reports_send``)."""
    return scheduled_reports_send()
