"""A person's in-app notifications: what is unread, and marking it read.

Callers pass the organizations the person may see (the portal's current one, or the API caller's), so another
organization's notification, like another person's, is never found.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from notifications.models import Notification
from tenancy.models import Organization, User


def inbox(*, user: User, organizations: Organization | Iterable[Organization] | QuerySet[Organization]) -> Any:
    """The person's in-app notifications in ``organizations``, newest first."""
    if isinstance(organizations, Organization):
        scoped = Notification.objects.for_org(organizations)
    else:
        scoped = Notification.objects.for_orgs(organizations)
    return scoped.filter(user=user, in_app=True).order_by("-created_at", "-id")


def unread_count(*, user: User, organization: Organization) -> int:
    return int(inbox(user=user, organizations=organization).filter(read_at__isnull=True).count())


def notification_read(*, notification: Notification) -> Notification:
    """Mark one notification read (once: reading it again keeps the first time)."""
    now = timezone.now()
    if Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now):
        notification.read_at = now
    elif notification.read_at is None:
        notification.refresh_from_db(fields=["read_at"])
    return notification


def notifications_read_all(
    *, user: User, organizations: Organization | Iterable[Organization] | QuerySet[Organization]
) -> int:
    """Mark every unread notification of the person in ``organizations`` read; how many were unread."""
    unread = inbox(user=user, organizations=organizations).filter(read_at__isnull=True)
    return int(unread.order_by().update(read_at=timezone.now()))
