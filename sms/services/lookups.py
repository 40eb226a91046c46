"""What the dispatcher looks up besides the jobs themselves: prices, each contact's last campaign message, zones and
warm-up curves."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection
from django.db.models import Max

from sms.gates import parse_curve
from sms.models import JobState, SendJob, SmsPrice

SENT_STATES = (JobState.SENDING, JobState.SENT, JobState.DELIVERED)


class Prices:
    """Per-segment prices by destination, longest prefix first; read once per run."""

    def __init__(self) -> None:
        rows = SmsPrice.objects.values_list("prefix", "segment_price")
        self._rows = sorted(rows, key=lambda row: len(row[0]), reverse=True)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one Prices per run, dropped with it
    def of(self, phone: str) -> Decimal | None:
        return next((price for prefix, price in self._rows if phone.startswith(prefix)), None)


@functools.lru_cache(maxsize=512)
def zone_or_none(name: str) -> str | None:
    """``name`` when it is a zone this machine knows, else None."""
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


@functools.lru_cache(maxsize=256)
def warmup_curve(text: str) -> tuple[int, ...]:
    try:
        return parse_curve(text)
    except ValueError:
        return (0,)  # an unreadable curve sends nothing rather than everything


def last_messages(organization_id: uuid.UUID, contact_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """When each contact last got (or is getting) a campaign message from the organization.

    On PostgreSQL, one index lookup per contact (``send_job_contact_sent``) driven by the array of ids: a plain
    ``GROUP BY`` lets the planner, misled by statistics taken before a big campaign started sending, scan every sent
    job of the organization once per contact."""
    if connection.vendor != "postgresql":
        rows = (
            SendJob.objects.for_org(organization_id)
            .filter(contact_id__in=contact_ids, state__in=SENT_STATES, sent_at__isnull=False)
            .order_by()
            .values("contact_id")
            .annotate(last=Max("sent_at"))
            .values_list("contact_id", "last")
        )
        return dict(rows)
    table = connection.ops.quote_name(SendJob._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, (SELECT max(j.sent_at) FROM {table} j WHERE j.organization_id = %s "  # noqa: S608 - model
            f"AND j.contact_id = c.id AND j.sent_at IS NOT NULL AND j.state = ANY(%s)) "
            f"FROM unnest(%s::uuid[]) AS c(id)",
            [organization_id, [str(state) for state in SENT_STATES], list(contact_ids)],
        )
        return {contact_id: last for contact_id, last in cursor.fetchall() if last is not None}


# Where the price table starts (per segment, AUD), as the sms migration 0002 writes it; staff adjust it in the admin.
STARTING_PRICES = (("+", "0.1200", "Everywhere else"), ("+61", "0.0550", "Australia"), ("+64", "0.0900", "New Zealand"))


def starting_prices() -> int:
    """Add the starting prices that are missing (a table emptied by hand, a flushed database); returns how many."""
    added = 0
    for prefix, amount, description in STARTING_PRICES:
        _, created = SmsPrice.objects.get_or_create(
            prefix=prefix, defaults={"segment_price": Decimal(amount), "currency": "AUD", "description": description}
        )
        added += created
    return added
