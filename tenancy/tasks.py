from __future__ import annotations

import base64
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from tenancy.models import Invitation
from tenancy.services.reports import scheduled_reports_send


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_email(
    *,
    recipients: list[str],
    subject: str,
    text: str,
    html: str,
    headers: dict[str, str] | None = None,
    attachments: list[list[str]] | None = None,
) -> None:
    """Send one message; ``attachments`` are ``[filename, content, mimetype]`` for text files, and
    ``[filename, base64 content, mimetype, "base64"]`` for binary ones."""
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, recipients, headers=headers)
    message.attach_alternative(html, "text/html")
    for filename, content, mimetype, *encoding in attachments or []:
        message.attach(filename, base64.b64decode(content) if encoding == ["base64"] else content, mimetype)
    message.send()


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
