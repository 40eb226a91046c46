"""Bulk sends: one notice to the people with some roles in many organizations (an incident, planned maintenance).

Staff write a draft in the admin and start it with an action. The job (``notifications.tasks.run_bulk_send``) claims
the bulk send (QUEUED, or RUNNING without a sign of life for a while, to RUNNING: a conditional update that must change
one row), then calls ``notify()`` for each organization in turn, each in its own transaction, with the key
``bulk:<id>``: a job that runs again after a crash creates nothing twice, and recounts what was already done. Progress
(``sent``, ``skipped``, ``failed`` out of ``total``) is written after each organization.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import DateTimeField, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from notifications.catalogue import EVENT_TYPES, known
from notifications.models import BulkSend, BulkStatus
from notifications.services.delivery import BULK_STALLED
from notifications.services.notify import notify
from tenancy.errors import ServiceValidationError
from tenancy.models import Membership, Organization, OrgStatus, Role

logger = logging.getLogger(__name__)


def bulk_send_check(*, event_type: str, title: str, message: str, url: str, roles: Iterable[str]) -> None:
    """Refuse, by field, what a bulk send cannot be started with."""
    errors: dict[str, list[str]] = {}
    if not known(event_type):
        errors["event_type"] = [f"Unknown event type {event_type!r}."]
    elif not EVENT_TYPES[event_type].choosable:
        errors["event_type"] = [f"{event_type} is not sent to members."]
    if not title.strip():
        errors["title"] = ["Give the notice a title."]
    if not message.strip():
        errors["message"] = ["Say what happened."]
    if url and not ((url.startswith("/") and not url.startswith("//")) or url.startswith("https://")):
        errors["url"] = ["Use a path (/status/) or an https:// address."]
    chosen = list(roles)
    if not chosen:
        errors["roles"] = ["Choose who is told."]
    elif unknown := sorted(set(chosen) - set(Role.values)):
        errors["roles"] = [f"Unknown role(s): {', '.join(unknown)}."]
    if errors:
        raise ServiceValidationError(errors)


def bulk_send_save(*, bulk_send: BulkSend) -> BulkSend:
    """Save a draft (its organizations are set by the caller afterwards); a started one cannot change."""
    if bulk_send.status != BulkStatus.DRAFT:
        raise ServiceValidationError({"status": ["A bulk send that has started cannot be changed."]})
    bulk_send_check(
        event_type=bulk_send.event_type, title=bulk_send.title, message=bulk_send.message, url=bulk_send.url,
        roles=bulk_send.roles,
    )  # fmt: skip
    bulk_send.roles = sorted(set(bulk_send.roles))
    bulk_send.save()
    return bulk_send


def bulk_send_start(*, bulk_send: BulkSend) -> bool:
    """Queue a draft's job after commit; False when it was not a draft (already started)."""
    bulk_send_check(
        event_type=bulk_send.event_type, title=bulk_send.title, message=bulk_send.message, url=bulk_send.url,
        roles=bulk_send.roles,
    )  # fmt: skip
    started = BulkSend.objects.filter(pk=bulk_send.pk, status=BulkStatus.DRAFT).update(
        status=BulkStatus.QUEUED, queued_at=timezone.now()
    )
    if started != 1:
        return False
    bulk_send.refresh_from_db()
    queue_bulk_send(str(bulk_send.pk))
    return True


def queue_bulk_send(bulk_send_id: str) -> None:
    from notifications.tasks import run_bulk_send

    transaction.on_commit(lambda: run_bulk_send.delay(bulk_send_id))


def audience(bulk_send: BulkSend) -> QuerySet[Organization]:
    chosen = list(bulk_send.organizations.values_list("pk", flat=True))
    if chosen:
        return Organization.objects.filter(pk__in=chosen).order_by("pk")
    return Organization.objects.filter(status=OrgStatus.ACTIVE).order_by("pk")


def _members(organizations: Any, roles: list[str]) -> int:
    return Membership.objects.filter(organization__in=organizations, role__in=roles, user__is_active=True).count()


def bulk_send_run(*, bulk_send_id: Any) -> BulkSend | None:
    """Run the job of a queued (or stalled) bulk send; None when it is not this job's to run."""
    now = timezone.now()
    runnable = Q(status=BulkStatus.QUEUED) | Q(status=BulkStatus.RUNNING, heartbeat_at__lte=now - BULK_STALLED)
    claimed = BulkSend.objects.filter(runnable, pk=bulk_send_id).update(
        status=BulkStatus.RUNNING,
        started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
        heartbeat_at=now,
        sent=0,
        skipped=0,
        failed=0,
    )
    if claimed != 1:
        return None
    bulk = BulkSend.objects.get(pk=bulk_send_id)
    organizations = list(audience(bulk))
    BulkSend.objects.filter(pk=bulk.pk).update(total=_members(organizations, bulk.roles))
    context = {"title": bulk.title, "message": bulk.message, "url": bulk.url}
    for organization in organizations:
        progress: dict[str, Any] = {"heartbeat_at": timezone.now()}
        try:
            notice = notify(
                organization=organization, event_type=bulk.event_type, context=context, roles=bulk.roles,
                key=f"bulk:{bulk.pk}", bulk_send=bulk,
            )  # fmt: skip
        except Exception:
            logger.exception("bulk send %s: organization %s failed", bulk.pk, organization.pk)
            progress["failed"] = F("failed") + _members([organization], bulk.roles)
        else:
            progress["sent"] = F("sent") + notice.notified
            progress["skipped"] = F("skipped") + (notice.recipients - notice.notified)
        BulkSend.objects.filter(pk=bulk.pk).update(**progress)
    bulk.refresh_from_db()
    bulk.total = bulk.done  # exact at the end, if people joined or left while it ran
    bulk.status = BulkStatus.DONE
    bulk.finished_at = timezone.now()
    bulk.save(update_fields=["total", "status", "finished_at"])
    return bulk
