from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from tenancy.models import Invitation


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_email(
    *, recipients: list[str], subject: str, text: str, html: str, headers: dict[str, str] | None = None
) -> None:
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, recipients, headers=headers)
    message.attach_alternative(html, "text/html")
    message.send()


@shared_task
def purge_expired_invitations() -> int:
    """Invitations expired for more than 30 days are deleted; their audit events remain."""
    cutoff = timezone.now() - timedelta(days=30)
    deleted, _ = Invitation.objects.filter(accepted_at__isnull=True, expires_at__lt=cutoff).delete()
    return deleted
