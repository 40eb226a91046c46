"""Writing the dispatcher's tallies: the gate counters, each campaign's gate counts, and the 80 % budget alert."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection

from sms import counters
from sms.models import CampaignGateCount, SendCounter, SmsSettings
from tenancy.emails import email_send
from tenancy.models import Membership, Role

ALERT_ROLES = (Role.OWNER, Role.ADMIN, Role.MANAGER)


def add_to_counters(rows: Sequence[tuple[str, datetime, int, Decimal]]) -> None:
    """Add ``(key, window, count, amount)`` to the counters, creating the rows that do not exist, in one statement."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(SendCounter._meta.db_table)
    window = quote("window")
    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
    params: list[Any] = []
    for key, at, added, amount in sorted(rows):  # a fixed order: concurrent upserts lock rows alike
        params += [key, at, added, amount]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, {window}, count, amount) VALUES {values} "  # noqa: S608 - names from the model
            f"ON CONFLICT (key, {window}) DO UPDATE SET count = {table}.count + EXCLUDED.count, "
            f"amount = {table}.amount + EXCLUDED.amount",
            params,
        )


def take_from_counters(rows: Sequence[tuple[str, datetime, int, Decimal]]) -> None:
    """Take ``(key, window, count, amount)`` off counters that :func:`add_to_counters` added them to (a claim given
    back); a counter no longer there (purged) is left alone."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(SendCounter._meta.db_table)
    # The windows go as add_to_counters sends them, so that they match what it wrote on every database.
    params: list[list[Any]] = [[taken, amount, key, at] for key, at, taken, amount in sorted(rows)]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET count = count - %s, amount = amount - %s "  # noqa: S608 - names from the model
            f"WHERE key = %s AND {quote('window')} = %s",
            params,
        )


def add_gate_hits(hits: Counter[tuple[uuid.UUID, str]]) -> None:
    if not hits:
        return
    quote = connection.ops.quote_name
    table = quote(CampaignGateCount._meta.db_table)
    values = ", ".join(["(%s, %s, %s)"] * len(hits))
    params: list[Any] = []
    campaign_field = CampaignGateCount._meta.get_field("campaign")
    for (campaign_id, gate), hits_count in sorted(hits.items()):
        params += [campaign_field.get_db_prep_value(campaign_id, connection), gate, hits_count]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, gate, count) VALUES {values} "  # noqa: S608 - names from the model
            f"ON CONFLICT (campaign_id, gate) DO UPDATE SET count = {table}.count + EXCLUDED.count",
            params,
        )


def budget_alert(
    sms_settings: SmsSettings, now: datetime, zone: str, spent_today: Decimal, spent_this_month: Decimal
) -> None:
    """Email the organization's owners, admins and managers once per day (or month) when spending reaches 80 % of the
    daily (or monthly) budget. ``budget_alerted`` remembers the periods already told."""
    local = now.astimezone(ZoneInfo(zone))
    marks = set(sms_settings.budget_alerted.split())
    due = []
    day_mark, month_mark = f"D{local:%Y%m%d}", f"M{local:%Y%m}"
    if sms_settings.daily_budget and spent_today >= sms_settings.daily_budget * counters.ALERT_SHARE:
        if day_mark not in marks:
            due.append(("daily", spent_today, sms_settings.daily_budget))
        marks = {mark for mark in marks if not mark.startswith("D")} | {day_mark}
    if sms_settings.monthly_budget and spent_this_month >= sms_settings.monthly_budget * counters.ALERT_SHARE:
        if month_mark not in marks:
            due.append(("monthly", spent_this_month, sms_settings.monthly_budget))
        marks = {mark for mark in marks if not mark.startswith("M")} | {month_mark}
    if not due:
        return
    sms_settings.budget_alerted = " ".join(sorted(marks))
    sms_settings.save(update_fields=["budget_alerted", "updated_at"])
    organization = sms_settings.organization
    recipients = sorted(
        Membership.objects.filter(organization=organization, role__in=ALERT_ROLES, user__is_active=True).values_list(
            "user__email", flat=True
        )
    )
    if recipients:
        email_send(
            to=recipients,
            template="sms_budget_alert",
            context={
                "organization": organization,
                "caps": [
                    {"period": period, "spent": spent, "cap": cap, "share": round(spent * 100 / cap)}
                    for period, spent, cap in due
                ],
                "currency": organization.currency,
            },
            organization=organization,
        )
