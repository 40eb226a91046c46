"""The saved card's label ("Visa ending 4242"), as the customer knows the card: asked of the provider once the card
is saved at checkout (Stripe's payment method: its brand and last four digits), shown on the Billing page, cleared
when another card replaces it, and never worth failing a payment over."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from billing import providers
from billing.models import BillingSettings
from billing.providers import sandbox
from billing.providers.base import card_label
from billing.services import stripe_event_process, stripe_event_receive
from billing.services.cards import card_label_fill, card_save
from billing.services.collection import invoice_checkout_start
from billing.services.invoices import invoice_create, invoice_finalize
from tenancy.models import Organization

pytestmark = pytest.mark.django_db

PAYMENT_METHOD = "https://api.stripe.com/v1/payment_methods/pm_1Q2w3E"


@pytest.mark.parametrize(
    ("brand", "last4", "label"),
    [
        ("visa", "4242", "Visa ending 4242"),
        ("amex", "0005", "American Express ending 0005"),
        ("mastercard", "4444", "Mastercard ending 4444"),
        ("eftpos_au", "1234", "eftpos ending 1234"),
        ("cartes_bancaires", "1001", "Cartes Bancaires ending 1001"),
        ("", "4242", "Card ending 4242"),
        ("visa", "", ""),
        ("visa", "42", ""),
    ],
)
def test_a_label_is_the_brand_as_people_know_it_and_the_last_four_digits(brand, last4, label):
    assert card_label(brand, last4) == label


def pay_and_save(organization: Organization, user: Any, card: str, capture: Any) -> BillingSettings:
    draft = invoice_create(organization=organization, lines=[{"description": "Support", "quantity": "1",
                                                              "unit_price": "100.00"}])  # fmt: skip
    invoice = invoice_finalize(invoice=draft)
    url = invoice_checkout_start(invoice=invoice, user=user, save_card=True)
    session = sandbox.invoice_checkout_read(url.rstrip("/").rsplit("/", 1)[-1])
    with capture(execute=True):
        for event in sandbox.invoice_checkout_events(session, card=card):
            body, signature = sandbox.signed(event)
            stored, _ = stripe_event_receive(payload=body, signature=signature)
            stripe_event_process(event_pk=stored.pk)
    return BillingSettings.objects.get(organization=organization)


def test_a_card_saved_at_checkout_gets_its_label_and_the_billing_page_shows_it(
    acme, alice, client_for, django_capture_on_commit_callbacks
):
    saved = pay_and_save(acme, alice, "4242 4242 4242 4242", django_capture_on_commit_callbacks)
    assert saved.payment_method_label == "Visa ending 4242"
    assert "Visa ending 4242 is saved." in client_for(alice).get("/billing/").content.decode()

    replaced = pay_and_save(acme, alice, "5555 5555 5555 4444", django_capture_on_commit_callbacks)
    assert replaced.payment_method_id != saved.payment_method_id
    assert replaced.payment_method_label == "Mastercard ending 4444"


def test_another_card_saved_clears_the_old_label_until_its_own_is_known(acme):
    BillingSettings.objects.create(
        organization=acme, payment_method_id="pm_old", payment_method_label="Visa ending 4242"
    )
    card_save(organization_id=acme.pk, payment_method="pm_new", customer="cus_1")  # its label comes after commit
    saved = BillingSettings.objects.get(organization=acme)
    assert (saved.payment_method_id, saved.payment_method_label) == ("pm_new", "")


@pytest.fixture
def stripe_api(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings.STRIPE_PROVIDER, settings.STRIPE_SECRET_KEY, settings.STRIPE_API_VERSION = "stripe", "sk_test_123", ""
    monkeypatch.setattr(providers.get_provider, "instances", {})
    with responses.RequestsMock() as mock:
        yield mock


def test_stripe_is_asked_for_the_payment_methods_card(acme, stripe_api):
    BillingSettings.objects.create(organization=acme, payment_method_id="pm_1Q2w3E")
    card = {"brand": "amex", "last4": "8431", "exp_month": 8, "exp_year": 2029}
    stripe_api.get(PAYMENT_METHOD, json={"id": "pm_1Q2w3E", "object": "payment_method", "type": "card", "card": card})
    assert card_label_fill(organization_id=acme.pk, payment_method="pm_1Q2w3E") == "American Express ending 8431"
    assert BillingSettings.objects.get(organization=acme).payment_method_label == "American Express ending 8431"


def test_a_label_that_cannot_be_read_leaves_the_card_saved_without_one(acme, stripe_api):
    BillingSettings.objects.create(organization=acme, payment_method_id="pm_1Q2w3E", autopay=True)
    stripe_api.get(PAYMENT_METHOD, status=500, json={"error": {"type": "api_error", "message": "Try again."}})
    stripe_api.get(PAYMENT_METHOD, status=500, json={"error": {"type": "api_error", "message": "Try again."}})
    stripe_api.get(PAYMENT_METHOD, status=500, json={"error": {"type": "api_error", "message": "Try again."}})
    assert card_label_fill(organization_id=acme.pk, payment_method="pm_1Q2w3E") == ""
    saved = BillingSettings.objects.get(organization=acme)
    assert (saved.payment_method_id, saved.payment_method_label, saved.autopay) == ("pm_1Q2w3E", "", True)


def test_a_label_read_after_the_card_was_replaced_is_not_kept(acme, stripe_api):
    BillingSettings.objects.create(organization=acme, payment_method_id="pm_newer")
    stripe_api.get(PAYMENT_METHOD, json={"id": "pm_1Q2w3E", "type": "card", "card": {"brand": "visa", "last4": "4242"}})
    card_label_fill(organization_id=acme.pk, payment_method="pm_1Q2w3E")
    assert BillingSettings.objects.get(organization=acme).payment_method_label == ""
