"""The counters behind the budget, rate and warm-up gates: which ``SendCounter`` row holds what, and reading them.

Every counter is a ``(key, window)`` row. The window is the instant its period began, in UTC:

- ``spend:<organization>:day`` / ``spend:<organization>:month``: money spent (``amount``) since the organization's
  local midnight / the 1st of its local month;
- ``rate:<organization>``: messages sent in the UTC minute;
- ``second:<number>``: messages a sending number sent in the UTC second;
- ``day:<number>``: messages a sending number sent since the organization's local midnight (warm-up).

The dispatcher writes them while it holds the organization's lock (its ``SmsSettings`` row), so a reader inside that
lock sees exact values, and caps are never exceeded however many workers run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db.models import Q, Sum

from billing.models import SmsCreditEntry
from sms.models import SendCounter, SmsSettings
from tenancy.models import Organization

ALERT_SHARE = Decimal("0.8")


def day_window(now: datetime, zone: str) -> datetime:
    """The local midnight that began ``now``'s day in ``zone``, in UTC."""
    tz = ZoneInfo(zone)
    return datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz).astimezone(UTC)


def month_window(now: datetime, zone: str) -> datetime:
    tz = ZoneInfo(zone)
    return datetime.combine(now.astimezone(tz).date().replace(day=1), time(0), tzinfo=tz).astimezone(UTC)


def minute_window(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(second=0, microsecond=0)


def second_window(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(microsecond=0)


def spend_day_key(organization_id: UUID | str) -> str:
    return f"spend:{organization_id}:day"


def spend_month_key(organization_id: UUID | str) -> str:
    return f"spend:{organization_id}:month"


def rate_key(organization_id: UUID | str) -> str:
    return f"rate:{organization_id}"


def second_key(number_id: UUID | str) -> str:
    return f"second:{number_id}"


def day_key(number_id: UUID | str) -> str:
    return f"day:{number_id}"


def next_minute(now: datetime) -> datetime:
    return minute_window(now) + timedelta(minutes=1)


def next_second(now: datetime) -> datetime:
    return second_window(now) + timedelta(seconds=1)


@dataclass(frozen=True)
class Budget:
    """An organization's SMS spending now: what it spent today and this month (its own zone), its caps, its credits
    (message segments bought in packs, spent before money), and which caps have reached the 80 % alert line."""

    currency: str
    spent_today: Decimal
    spent_this_month: Decimal
    daily_cap: Decimal | None
    monthly_cap: Decimal | None
    credits: int

    @property
    def daily_share(self) -> Decimal | None:
        return None if not self.daily_cap else self.spent_today / self.daily_cap

    @property
    def monthly_share(self) -> Decimal | None:
        return None if not self.monthly_cap else self.spent_this_month / self.monthly_cap

    @property
    def alerts(self) -> list[str]:
        """``day`` and/or ``month`` when that cap is at least 80 % used."""
        shares = (("day", self.daily_share), ("month", self.monthly_share))
        return [name for name, share in shares if share is not None and share >= ALERT_SHARE]


def sms_settings(organization: Organization) -> SmsSettings:
    found, _ = SmsSettings.objects.get_or_create(organization=organization)
    return found


def budget(organization: Organization, now: datetime) -> Budget:
    settings = sms_settings(organization)
    zone = organization.timezone
    rows = dict(
        SendCounter.objects.filter(
            Q(key=spend_day_key(organization.pk), window=day_window(now, zone))
            | Q(key=spend_month_key(organization.pk), window=month_window(now, zone))
        ).values_list("key", "amount")
    )
    credits = SmsCreditEntry.objects.for_org(organization).aggregate(total=Sum("credits"))["total"] or 0
    return Budget(
        currency=organization.currency,
        spent_today=rows.get(spend_day_key(organization.pk), Decimal("0")),
        spent_this_month=rows.get(spend_month_key(organization.pk), Decimal("0")),
        daily_cap=settings.daily_budget,
        monthly_cap=settings.monthly_budget,
        credits=int(credits),
    )
