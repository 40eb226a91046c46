"""The card a customer saved at checkout: kept as the one charged automatically, and labelled as its owner knows it
("Visa ending 4242"), read from the payment provider once the card is saved."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from billing.models import BillingSettings
from billing.providers import get_provider
from billing.providers.base import ProviderError
from tenancy.models import Organization

logger = logging.getLogger(__name__)


def card_save(*, organization_id: Any, payment_method: str, customer: str) -> None:
    """Keep the card a customer chose to save at checkout as the one charged automatically. Its label ("Visa ending
    4242") is asked of the provider once this commits (``card_label_fill``): until then, no label, rather than the
    previous card's."""
    if not payment_method:
        return
    BillingSettings.objects.update_or_create(
        organization_id=organization_id,
        defaults={"payment_method_id": payment_method[:100], "payment_method_label": "", "autopay": True},
    )
    if customer:
        Organization.objects.filter(pk=organization_id, stripe_customer_id="").update(stripe_customer_id=customer[:64])

    def label() -> None:
        from billing.tasks import label_card

        try:
            label_card.delay(str(organization_id), payment_method[:100])
        except Exception:  # the broker is down: the card is saved; it shows without its label
            logger.warning("could not queue the label of a saved card", exc_info=True)

    transaction.on_commit(label)


def card_label_fill(*, organization_id: Any, payment_method: str) -> str:
    """Ask the provider how the saved card is shown ("Visa ending 4242") and keep that, if it is still the card
    saved. An outage leaves the card without a label (it is not worth a retry); returns the label kept."""
    try:
        label = get_provider().card_label(payment_method=payment_method)
    except ProviderError as error:
        logger.warning("the label of a saved card could not be read: %s", error)
        return ""
    BillingSettings.objects.filter(organization_id=organization_id, payment_method_id=payment_method).update(
        payment_method_label=label[:60]
    )
    return label
