"""Read-only questions other code asks about quotes and the price book (the API, the portal, checkout)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quotes import pricing
from quotes.models import AddOn, Plan, Quote

QUOTE_KEY = re.compile(r"[A-Za-z0-9_-]{20,64}")  # the URL-safe alphabet of the keys quotes are given


def quote_by_key(quote_key: str) -> Quote | None:
    """The quote with exactly this key, its lines prefetched (two queries); None for anything else."""
    if not isinstance(quote_key, str) or not QUOTE_KEY.fullmatch(quote_key):
        return None
    return Quote.objects.prefetch_related("lines").filter(quote_key=quote_key).first()


@dataclass(frozen=True)
class PriceBook:
    plans: list[Plan]
    add_ons: list[AddOn]

    def add_ons_for(self, tier: str) -> list[AddOn]:
        return [add_on for add_on in self.add_ons if tier in (add_on.allowed_tiers or ())]


def price_book() -> PriceBook:
    """Active plans and add-ons, in display order (the plan comparison page, the quote form)."""
    return PriceBook(plans=list(Plan.objects.filter(active=True)), add_ons=list(AddOn.objects.filter(active=True)))


def quote_preview(*, tier: str, configuration: Mapping[str, Any]) -> pricing.Priced:
    """Price a configuration without storing anything (a live total on the quote form).
    Raises pricing.PricingError on a bad configuration and LookupError when the tier has no self-serve plan."""
    plan = Plan.objects.filter(tier=tier, active=True, custom_quote=False).first()
    if plan is None:
        raise LookupError(tier)
    catalogue = {add_on.code: add_on.as_price() for add_on in AddOn.objects.filter(active=True)}
    return pricing.price_quote(plan.as_price(), catalogue, configuration)
