"""Conversion of qualifications into customers, by tier and by sales rep (shown to staff in admin)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from qualification.models import Qualification, QualificationTier


@dataclass(frozen=True)
class ConversionRow:
    label: str
    total: int
    converted: int

    @property
    def rate(self) -> float:
        return round(100 * self.converted / self.total, 1) if self.total else 0.0


def conversion_by_tier(queryset: QuerySet[Qualification]) -> list[ConversionRow]:
    counts: dict[str, tuple[int, int]] = {
        row["tier"]: (row["total"], row["done"])
        for row in queryset.values("tier").annotate(total=Count("id"), done=Count("id", filter=Q(converted=True)))
    }
    return [ConversionRow(tier.label, *counts.get(tier.value, (0, 0))) for tier in QualificationTier]


def conversion_by_rep(queryset: QuerySet[Qualification]) -> list[ConversionRow]:
    rows = (
        queryset.values("assigned_to__email")
        .annotate(total=Count("id"), done=Count("id", filter=Q(converted=True)))
        .order_by("assigned_to__email")
    )
    return [ConversionRow(row["assigned_to__email"] or "unassigned", row["total"], row["done"]) for row in rows]
