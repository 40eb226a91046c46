"""The customer's Billing page (plan, status, price, next billing date, items, SMS credits; plan changes,
cancellation, Stripe's billing portal), the billing API, the sandbox billing portal and the staff admin screens.

Acme (alice owner, bob member) and Globex (carol owner) each have a subscription of their own, created directly in
the mirror; the sandbox provider answers changes from the mirror, so no HTTP is mocked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from rest_framework.test import APIClient

from billing.models import (
    ItemKind,
    SmsCreditEntry,
    StripeEvent,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)
from billing.providers import sandbox
from events.models import Event
from tenancy.models import AuditEvent, Organization, Tier, User
from tests.billing.conftest import CONFIGURATION
from tests.factories import UserFactory
from tests.helpers import admin_client

pytestmark = pytest.mark.django_db

# 02:00 UTC is 13:00 in Sydney (Acme's zone), so the page shows the same day.
NEXT_BILLING = datetime(2030, 3, 15, 2, 0, tzinfo=UTC)
NEXT_BILLING_TEXT = "15 Mar 2030"

# Acme is on Core+ with the configuration of tests/billing/conftest.py: 12 users (10 included, 2 extra at 45.00),
# 15 devices (all included), two 250-message SMS packs at 25.00 and 1 TB of backup at 79.00.
# (product, kind, code, description, quantity, unit amount)
ACME_ITEMS = [
    ("keel-core_plus-base", ItemKind.PLAN, "base", "Core+ plan (includes 10 users and 15 devices)", 1, "499.00"),
    ("keel-core_plus-extra_users", ItemKind.USERS, "extra_users", "Additional users", 2, "45.00"),
    ("keel-addon-sms_pack_250", ItemKind.ADD_ON, "sms_pack_250", "SMS pack (250 messages) (per pack)", 2, "25.00"),
    ("keel-addon-backup_tb", ItemKind.ADD_ON, "backup_tb", "Cloud backup (per TB)", 1, "79.00"),
]
# 499.00 + 2 x 45.00 + 2 x 25.00 + 79.00
ACME_TOTAL = Decimal("718.00")
# The same configuration on Premium (25 users and 40 devices included, so no extra lines):
# 1299.00 + 2 x 25.00 + 79.00
PREMIUM_TOTAL = Decimal("1428.00")
# Acme's SMS ledger: two packs bought (500), 37 spent.
ACME_SMS_BALANCE = 463

# Nothing of this may ever show to Acme.
GLOBEX_SECRETS = ("Globex", "globex", "cus_globex", "sub_globex", "4321.99", "Hammock fleet", "USD")
# Nor this to Globex.
ACME_SECRETS = ("Acme", "acme", "cus_acme", "sub_acme", "718.00", "Additional users", "Cloud backup")


def make_subscription(
    organization: Organization,
    *,
    subscription_id: str,
    customer: str,
    tier: str,
    plan_name: str,
    currency: str,
    items: Sequence[tuple[str, str, str, str, int, str]],
    configuration: Mapping[str, Any] | None = None,
) -> Subscription:
    Organization.objects.filter(pk=organization.pk).update(stripe_customer_id=customer)
    organization.stripe_customer_id = customer
    subscription = Subscription.objects.create(
        organization=organization,
        stripe_subscription_id=subscription_id,
        stripe_customer_id=customer,
        tier=tier,
        plan_name=plan_name,
        status=SubscriptionStatus.ACTIVE,
        price_monthly=sum((Decimal(unit) * quantity for *_, quantity, unit in items), Decimal("0.00")),
        currency=currency,
        configuration=dict(configuration or {}),
        current_period_end=NEXT_BILLING,
    )
    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(
            organization=organization,
            subscription=subscription,
            stripe_item_id=f"si_{subscription_id}_{position}",
            product=product,
            kind=kind,
            code=code,
            description=description,
            quantity=quantity,
            unit_amount=Decimal(unit),
        )
        for position, (product, kind, code, description, quantity, unit) in enumerate(items)
    )
    return subscription


@pytest.fixture
def acme_subscription(price_book: Any, acme: Organization, alice: User, bob: User) -> Subscription:
    subscription = make_subscription(
        acme,
        subscription_id="sub_acme",
        customer="cus_acme",
        tier=Tier.CORE_PLUS,
        plan_name="Core+",
        currency="AUD",
        items=ACME_ITEMS,
        configuration=CONFIGURATION,
    )
    SmsCreditEntry.objects.create(organization=acme, credits=500, reason="2 x SMS pack", source_key="cs_acme:sms")
    SmsCreditEntry.objects.create(organization=acme, credits=-37, reason="Campaign", source_key="spend:acme:1")
    return subscription


@pytest.fixture
def globex_subscription(price_book: Any, globex: Organization, carol: User) -> Subscription:
    subscription = make_subscription(
        globex,
        subscription_id="sub_globex",
        customer="cus_globex",
        tier=Tier.ENTERPRISE,
        plan_name="Enterprise",
        currency="USD",
        items=[("keel-enterprise-custom", ItemKind.CUSTOM, "custom", "Hammock fleet", 1, "4321.99")],
    )
    SmsCreditEntry.objects.create(organization=globex, credits=9999, reason="Globex pack", source_key="cs_globex:sms")
    return subscription


def messages_of(response: Any) -> list[str]:
    """The messages a response queued (they stay queued until a page shows them: see ``post``)."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def post(client: Any, path: str, data: dict[str, str] | None = None) -> tuple[Any, list[str]]:
    """POST a Billing action; return its response and the messages the Billing page then shows (so they do not
    linger into the next action)."""
    response = client.post(path, data or {})
    assert response.status_code == 302, path
    assert response["Location"] == "/billing/"
    page = client.get(response["Location"])
    shown = [str(message) for message in page.context["messages"]]
    assert shown == messages_of(response)
    return response, shown


def snapshot(subscription: Subscription) -> tuple[Any, ...]:
    """Everything a change could touch: the mirrored fields and the items."""
    subscription.refresh_from_db()
    items = sorted(
        SubscriptionItem.objects.for_org(subscription.organization_id)
        .filter(subscription=subscription)
        .values_list("stripe_item_id", "product", "quantity", "unit_amount")
    )
    return (
        subscription.status,
        subscription.tier,
        subscription.plan_name,
        subscription.price_monthly,
        subscription.currency,
        subscription.current_period_end,
        subscription.cancel_at_period_end,
        subscription.canceled_at,
        subscription.synced_at,
        items,
    )


def sent_operations() -> list[str]:
    return [operation for operation, _ in sandbox.SENT]


def sandbox_token(url: str) -> str:
    prefix = "/sandbox/stripe/billing-portal/"
    assert prefix in url
    return url.split(prefix, 1)[1]


def assert_none_of(secrets: tuple[str, ...], text: str) -> None:
    leaked = [secret for secret in secrets if secret in text]
    assert leaked == []


# -- 1. The Billing page -----------------------------------------------------------------------------------------------


def test_owner_sees_plan_status_price_next_billing_date_items_and_credits(client_for, alice, acme_subscription):
    response = client_for(alice).get("/billing/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "<dt>Plan</dt><dd>Core+</dd>" in body
    assert ">Active</span>" in body
    assert "<dt>Monthly</dt><dd>AUD 718.00</dd>" in body
    assert "Next billing date</dt>" in body
    assert f"<dd>{NEXT_BILLING_TEXT}</dd>" in body
    assert f"<dt>SMS credits</dt><dd>{ACME_SMS_BALANCE}</dd>" in body
    for _, _, _, description, quantity, unit in ACME_ITEMS:
        amount = f"{Decimal(unit) * quantity:.2f}"
        row = f'<td class="num">{quantity}</td><td class="num">{unit}</td><td class="num">{amount}</td>'
        assert description in body
        assert row in body
    assert "<strong>718.00</strong>" in body
    # Live: the plan change form offers Premium only (not the current plan, not the custom-quote Enterprise).
    choices = [value for value, _ in response.context["plan_form"].fields["tier"].choices]
    assert choices == ["premium"]
    assert "Cancel now" in body


def test_partner_admin_manages_billing_of_their_organization(client_for, pat, acme_subscription):
    response = client_for(pat).get("/billing/")

    assert response.status_code == 200
    assert "<dt>Monthly</dt><dd>AUD 718.00</dd>" in response.content.decode()
    assert response.context["plan_form"] is not None


def test_member_gets_404_on_every_billing_route(client_for, bob, acme_subscription):
    before = snapshot(acme_subscription)
    client = client_for(bob)

    assert client.get("/billing/").status_code == 404
    assert client.post("/billing/portal/").status_code == 404
    assert client.post("/billing/plan/", {"tier": "premium"}).status_code == 404
    assert client.post("/billing/cancel/", {"when": "now"}).status_code == 404
    assert client.post("/billing/resume/").status_code == 404

    assert snapshot(acme_subscription) == before
    assert sandbox.SENT == []


def test_organization_without_subscription_is_told_so(client_for, alice, acme):
    client = client_for(alice)
    response = client.get("/billing/")

    assert response.status_code == 200
    assert "Acme Pty Ltd has no self-serve subscription" in response.content.decode()
    # Nothing to change, cancel or resume.
    assert client.post("/billing/plan/", {"tier": "premium"}).status_code == 404
    assert client.post("/billing/cancel/", {"when": "now"}).status_code == 404
    assert client.post("/billing/resume/").status_code == 404
    assert sandbox.SENT == []


def test_provisioned_customer_sees_the_checkout_it_paid_for(client_for, customer):
    """End to end: the owner of an organization made by sandbox checkout sees the quote's lines and SMS credits."""
    body = client_for(customer.owner).get("/billing/").content.decode()

    assert "<dt>Plan</dt><dd>Core+</dd>" in body
    assert "<dt>Monthly</dt><dd>AUD 718.00</dd>" in body
    # Two 250-message packs were credited at checkout.
    assert "<dt>SMS credits</dt><dd>500</dd>" in body
    assert "Additional users" in body


def test_billing_page_query_count_does_not_grow_with_items(
    client_for, alice, acme, acme_subscription, django_assert_max_num_queries
):
    client = client_for(alice)
    # Every portal page: 1 the user, 1 the organizations alice may see (with her role), 1 whether she has a
    # second-factor device, 3 to save the session (savepoint, update, release). Then the page: 1 the subscription,
    # 1 its items (prefetched), 1 the SMS credit balance, 1 the plans offered by the plan change form; then the
    # contract summary: the contracts, their lines, the latest and open invoices, their credit notes, the saved card.
    with django_assert_max_num_queries(6 + 4 + 5):
        assert client.get("/billing/").status_code == 200

    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(
            organization=acme,
            subscription=acme_subscription,
            product="keel-addon-sms_pack_1000",
            kind=ItemKind.ADD_ON,
            code="sms_pack_1000",
            description=f"Extra pack {number}",
            quantity=1,
            unit_amount=Decimal("89.00"),
        )
        for number in range(30)
    )
    with django_assert_max_num_queries(6 + 4 + 5):
        response = client.get("/billing/")
    assert response.content.decode().count("Extra pack ") == 30


# -- 2. Changing plan ------------------------------------------------------------------------------------------------


def test_change_plan_reprices_the_items_on_premium(client_for, alice, acme, acme_subscription):
    response = client_for(alice).post("/billing/plan/", {"tier": "premium"})

    assert response.status_code == 302
    assert response["Location"] == "/billing/"
    assert messages_of(response) == ["Your plan is now Premium. The difference is prorated on your next invoice."]

    subscription = Subscription.objects.get(pk=acme_subscription.pk)
    assert subscription.tier == Tier.PREMIUM
    assert subscription.plan_name == "Premium"
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.price_monthly == PREMIUM_TOTAL
    assert subscription.currency == "AUD"
    assert subscription.current_period_end == NEXT_BILLING
    items = sorted(
        SubscriptionItem.objects.for_org(acme)
        .filter(subscription=subscription)
        .values_list("product", "kind", "code", "quantity", "unit_amount")
    )
    assert items == [
        ("keel-addon-backup_tb", ItemKind.ADD_ON, "backup_tb", 1, Decimal("79.00")),
        ("keel-addon-sms_pack_250", ItemKind.ADD_ON, "sms_pack_250", 2, Decimal("25.00")),
        ("keel-premium-base", ItemKind.PLAN, "base", 1, Decimal("1299.00")),
    ]
    assert sum(item.amount for item in subscription.items.all()) == PREMIUM_TOTAL

    acme.refresh_from_db()
    assert acme.tier == Tier.PREMIUM

    audit = AuditEvent.objects.get(organization=acme, action="subscription.plan_changed")
    assert audit.actor == alice
    assert audit.changes == {"tier": [None, "Premium"]}
    event = Event.objects.get(organization=acme, type="subscription.updated")
    assert event.payload["tier"] == "PREMIUM"
    assert event.payload["price_monthly"] == "1428.00"
    assert "tier" in event.payload["changed"]

    # What the provider was asked to do, in cents.
    assert sent_operations() == ["subscription_replace_items"]
    _, detail = sandbox.SENT[0]
    assert detail["id"] == "sub_acme"
    lines = {line["product"]: (line["unit_amount"], line["quantity"]) for line in detail["lines"]}
    assert lines == {
        "keel-premium-base": (129900, 1),
        "keel-addon-sms_pack_250": (2500, 2),
        "keel-addon-backup_tb": (7900, 1),
    }

    page = client_for(alice).get("/billing/").content.decode()
    assert "<dt>Plan</dt><dd>Premium</dd>" in page
    assert "<dt>Monthly</dt><dd>AUD 1428.00</dd>" in page


def test_plan_round_trip_keeps_the_customers_users_and_devices(client_for, alice, acme, acme_subscription):
    client = client_for(alice)
    post(client, "/billing/plan/", {"tier": "premium"})

    post(client, "/billing/plan/", {"tier": "core_plus"})

    subscription = Subscription.objects.get(pk=acme_subscription.pk)
    assert subscription.tier == Tier.CORE_PLUS
    # Back to what Acme paid before: 12 users (2 extra), 15 devices (none extra), the same add-ons.
    assert subscription.price_monthly == ACME_TOTAL
    quantities = dict(subscription.items.values_list("code", "quantity"))
    assert quantities == {"base": 1, "extra_users": 2, "sms_pack_250": 2, "backup_tb": 1}


@pytest.mark.parametrize("tier", ["enterprise", "bogus", "core_plus", "CORE_PLUS", ""])
def test_change_plan_refuses_a_tier_not_on_offer(client_for, alice, acme, acme_subscription, tier):
    before = snapshot(acme_subscription)

    response = client_for(alice).post("/billing/plan/", {"tier": tier})

    assert response.status_code == 302
    assert response["Location"] == "/billing/"
    errors = messages_of(response)
    assert len(errors) == 1
    assert errors[0].startswith("New plan: ")
    assert snapshot(acme_subscription) == before
    acme.refresh_from_db()
    assert acme.tier == Tier.CORE_PLUS
    assert sandbox.SENT == []
    assert not AuditEvent.objects.filter(action="subscription.plan_changed").exists()
    assert not Event.objects.filter(type__startswith="subscription.").exists()


# -- 3. Cancelling and resuming ----------------------------------------------------------------------------------------


def test_cancel_at_period_end_then_resume(client_for, alice, acme, acme_subscription):
    client = client_for(alice)

    _, shown = post(client, "/billing/cancel/", {"when": "period_end"})
    assert shown == ["Your subscription will end at the close of the current billing period."]
    subscription = Subscription.objects.get(pk=acme_subscription.pk)
    assert subscription.cancel_at_period_end is True
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.price_monthly == ACME_TOTAL
    assert AuditEvent.objects.get(organization=acme, action="subscription.canceled").changes == {
        "when": [None, "at_period_end"]
    }
    assert Event.objects.get(organization=acme, type="subscription.updated").payload["cancel_at_period_end"] is True
    page = client.get("/billing/").content.decode()
    assert f"Your subscription is set to end on {NEXT_BILLING_TEXT}." in page
    assert "Ends on</dt>" in page
    assert "Keep my subscription" in page

    _, shown = post(client, "/billing/resume/")
    assert shown == ["The cancellation is withdrawn; your subscription continues."]
    subscription = Subscription.objects.get(pk=subscription.pk)
    assert subscription.cancel_at_period_end is False
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert AuditEvent.objects.filter(organization=acme, action="subscription.resumed").count() == 1
    assert sent_operations() == ["subscription_cancel", "subscription_resume"]
    assert "Keep my subscription" not in client.get("/billing/").content.decode()

    # Nothing is scheduled any more: a second resume is refused and asks nothing of the provider.
    _, shown = post(client, "/billing/resume/")
    assert shown == ["No cancellation is scheduled."]
    assert sent_operations() == ["subscription_cancel", "subscription_resume"]


def test_cancel_now_ends_the_subscription_once(client_for, alice, acme, acme_subscription):
    client = client_for(alice)

    _, shown = post(client, "/billing/cancel/", {"when": "now"})

    assert shown == ["Your subscription has been canceled."]
    subscription = Subscription.objects.get(pk=acme_subscription.pk)
    assert subscription.status == SubscriptionStatus.CANCELED
    assert subscription.canceled_at is not None
    event = Event.objects.get(organization=acme, type="subscription.canceled")
    assert event.payload["status"] == SubscriptionStatus.CANCELED
    assert AuditEvent.objects.get(organization=acme, action="subscription.canceled").changes == {"when": [None, "now"]}
    page = client.get("/billing/").content.decode()
    assert ">Canceled</span>" in page
    assert "Cancel now" not in page
    assert "Change plan" not in page

    # A canceled subscription cannot be canceled again, resumed or moved to another plan.
    before = snapshot(subscription)
    for path, data in [
        ("/billing/cancel/", {"when": "now"}),
        ("/billing/cancel/", {"when": "period_end"}),
        ("/billing/resume/", {}),
        ("/billing/plan/", {"tier": "premium"}),
    ]:
        _, shown = post(client, path, data)
        assert shown == ["This subscription has been canceled."], path
    assert snapshot(subscription) == before
    assert sent_operations() == ["subscription_cancel"]
    assert Event.objects.filter(organization=acme).count() == 1


@pytest.mark.parametrize("when", ["bogus", "", None])
def test_cancel_needs_a_valid_when(client_for, alice, acme_subscription, when):
    before = snapshot(acme_subscription)

    response = client_for(alice).post("/billing/cancel/", {} if when is None else {"when": when})

    assert response.status_code == 302
    assert messages_of(response) == ["Choose when to cancel: at the end of the billing period, or now."]
    assert snapshot(acme_subscription) == before
    assert sandbox.SENT == []


# -- 4. Stripe's billing portal (the sandbox's stand-in) ---------------------------------------------------------------


def test_billing_portal_goes_to_the_sandbox_portal_of_the_customer(client_for, alice, acme_subscription):
    response = client_for(alice).post("/billing/portal/")

    assert response.status_code == 302
    assert response["Location"].startswith("/sandbox/stripe/billing-portal/")
    assert sandbox.SENT == [("billing_portal_url", {"customer": "cus_acme"})]

    portal = client_for(alice).get(response["Location"])
    assert portal.status_code == 200
    body = portal.content.decode()
    assert "Billing account cus_acme" in body
    assert "Core+" in body
    assert "2 x SMS pack (250 messages) (per pack): AUD 50.00" in body
    assert "2 x Additional users: AUD 90.00" in body
    assert 'href="http://testserver/billing/"' in body


def test_billing_portal_without_a_stripe_customer_is_refused(client_for, alice, acme):
    response = client_for(alice).post("/billing/portal/")

    assert response.status_code == 302
    assert response["Location"] == "/billing/"
    assert messages_of(response) == [
        "This organization has no billing account yet: it was not set up through checkout."
    ]
    assert sandbox.SENT == []


# -- 5. The billing API ------------------------------------------------------------------------------------------------


def expected_status(subscription: Subscription) -> dict[str, Any]:
    return {
        "organization": "acme",
        "subscription": {
            "id": str(subscription.pk),
            "status": "ACTIVE",
            "tier": "CORE_PLUS",
            "plan": "Core+",
            "price_monthly": "718.00",
            "currency": "AUD",
            "next_billing_date": NEXT_BILLING,
            "trial_end": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "items": [
                {"code": code, "kind": kind, "description": description, "quantity": quantity, "unit_amount": unit}
                for _, kind, code, description, quantity, unit in ACME_ITEMS
            ],
        },
        "sms_credits": ACME_SMS_BALANCE,
    }


def read_status(response: Any) -> dict[str, Any]:
    data = response.json()
    if data.get("subscription"):
        when = datetime.fromisoformat(data["subscription"]["next_billing_date"])
        assert when.tzinfo is not None  # ISO 8601 with an offset
        data["subscription"]["next_billing_date"] = when
    return data


def test_status_with_an_organization_key(api, api_key_for, acme, acme_subscription):
    _, raw = api_key_for(organization=acme, scopes=("read",))
    for path in ("/api/billing/status", "/api/billing/status/"):
        response = api(raw).get(path)
        assert response.status_code == 200, path
        assert read_status(response) == expected_status(acme_subscription)


def test_status_with_a_partner_key_names_the_organization(api, api_key_for, summit, pat, acme_subscription, initech):
    _, raw = api_key_for(partner=summit)

    response = api(raw, "acme").get("/api/billing/status")
    assert response.status_code == 200
    assert read_status(response) == expected_status(acme_subscription)

    # An organization without a subscription: null, and no credits.
    response = api(raw, "initech").get("/api/billing/status")
    assert response.status_code == 200
    assert response.json() == {"organization": "initech", "subscription": None, "sms_credits": 0}

    response = api(raw).get("/api/billing/status")
    assert response.status_code == 400
    assert "X-Organization" in response.json()


def test_status_with_the_portal_session(alice, acme_subscription):
    client = APIClient()
    client.force_login(alice)

    response = client.get("/api/billing/status")

    assert response.status_code == 200
    assert read_status(response) == expected_status(acme_subscription)


def test_status_reports_money_to_the_cent(api, api_key_for, acme, acme_subscription):
    SubscriptionItem.objects.filter(subscription=acme_subscription, code="backup_tb").update(
        unit_amount=Decimal("79.05")
    )
    Subscription.objects.filter(pk=acme_subscription.pk).update(price_monthly=Decimal("718.05"))
    _, raw = api_key_for(organization=acme)

    data = api(raw).get("/api/billing/status").json()

    assert data["subscription"]["price_monthly"] == "718.05"
    assert [item["unit_amount"] for item in data["subscription"]["items"]] == ["499.00", "45.00", "25.00", "79.05"]


def test_portal_api_returns_the_url(api, api_key_for, acme, acme_subscription, settings):
    settings.ALLOWED_HOSTS = ["testserver", "portal.keel.test"]
    _, raw = api_key_for(organization=acme)

    for path in ("/api/billing/portal", "/api/billing/portal/"):
        response = api(raw).post(path, {}, format="json")
        assert response.status_code == 200, path
        assert set(response.json()) == {"url"}
        assert response.json()["url"].startswith("http://testserver/sandbox/stripe/billing-portal/")
    assert sandbox.SENT == [("billing_portal_url", {"customer": "cus_acme"})] * 2

    # The portal page links back to the Billing page by default ...
    url = response.json()["url"]
    assert 'href="http://testserver/billing/"' in APIClient().get(url).content.decode()
    # ... or to the return_url asked for, when it is on this site; never to another site.
    ours = api(raw).post(
        "/api/billing/portal",
        {"return_url": "http://portal.keel.test/billing/?from=api"},
        format="json",
        HTTP_HOST="portal.keel.test",
    )
    assert ours.status_code == 200
    ours_page = APIClient().get(ours.json()["url"], HTTP_HOST="portal.keel.test").content.decode()
    assert 'href="http://portal.keel.test/billing/?from=api"' in ours_page
    theirs = api(raw).post("/api/billing/portal", {"return_url": "https://evil.example/steal"}, format="json")
    page = APIClient().get(theirs.json()["url"]).content.decode()
    assert "evil.example" not in page
    assert 'href="/"' in page


def test_portal_api_with_a_partner_key(api, api_key_for, summit, pat, acme_subscription):
    _, raw = api_key_for(partner=summit)

    assert api(raw, "acme").post("/api/billing/portal", {}, format="json").status_code == 200
    # A write without naming the organization is refused.
    response = api(raw).post("/api/billing/portal", {}, format="json")
    assert response.status_code == 400
    assert "X-Organization" in response.json()
    assert sandbox.SENT == [("billing_portal_url", {"customer": "cus_acme"})]


def test_status_api_is_for_owners_and_admins(bob, acme_subscription):
    member = APIClient()
    member.force_login(bob)
    response = member.get("/api/billing/status")
    assert response.status_code == 403
    assert "718.00" not in response.content.decode()


def test_a_plan_sold_by_sales_changes_through_sales(client_for, carol, globex_subscription):
    client = client_for(carol)
    page = client.get("/billing/").content.decode()
    assert "talk to your account manager" in page and 'name="tier"' not in page
    _, shown = post(client, "/billing/plan/", {"tier": "core_plus"})
    assert shown == ["This subscription was set up by our sales team; ask them to change your plan."]
    assert Subscription.objects.get(pk=globex_subscription.pk).tier == Tier.ENTERPRISE
    assert sandbox.SENT == []


def test_a_plan_in_another_currency_is_refused(client_for, alice, acme_subscription):
    Subscription.objects.filter(pk=acme_subscription.pk).update(currency="USD")
    _, shown = post(client_for(alice), "/billing/plan/", {"tier": "premium"})
    assert shown == ["New plan: Select a valid choice. premium is not one of the available choices."]
    assert Subscription.objects.get(pk=acme_subscription.pk).tier == Tier.CORE_PLUS
    assert sandbox.SENT == []


def test_portal_api_refuses_read_only_keys_and_members(api, api_key_for, acme, bob, acme_subscription):
    _, read_only = api_key_for(organization=acme, scopes=("read",))
    assert api(read_only).post("/api/billing/portal", {}, format="json").status_code == 403

    member = APIClient()
    member.force_login(bob)
    response = member.post("/api/billing/portal", {}, format="json")
    assert response.status_code == 403
    assert "url" not in response.json()

    assert sandbox.SENT == []


def test_portal_api_without_a_stripe_customer_is_a_conflict(api, api_key_for, acme):
    _, raw = api_key_for(organization=acme)

    response = api(raw).post("/api/billing/portal", {}, format="json")

    assert response.status_code == 409
    assert "no billing account" in response.json()["detail"]
    assert sandbox.SENT == []


# -- 6. Tenant isolation -----------------------------------------------------------------------------------------------


def pointed_at(client: Any, organization: Organization) -> Any:
    """``client`` with its session's current organization set to ``organization`` (tampered with)."""
    session = client.session
    session["organization_id"] = str(organization.pk)
    session.save()
    return client


@pytest.mark.isolation("portal:billing")
def test_billing_page_shows_nothing_of_another_organization(
    client_for, alice, carol, globex, acme_subscription, globex_subscription
):
    # Even with her session pointed at Globex, alice sees Acme's subscription and nothing of Globex's.
    for client in (client_for(alice), pointed_at(client_for(alice), globex)):
        response = client.get("/billing/")
        assert response.status_code == 200
        body = response.content.decode()
        assert "AUD 718.00" in body
        assert_none_of(GLOBEX_SECRETS, body)
        assert "9999" not in body

    # And carol sees Globex's, nothing of Acme's.
    body = client_for(carol).get("/billing/").content.decode()
    assert "USD 4321.99" in body
    assert_none_of(ACME_SECRETS, body)
    assert str(ACME_SMS_BALANCE) not in body


@pytest.mark.isolation("portal:billing_change_plan")
def test_change_plan_touches_only_the_callers_subscription(
    client_for, alice, carol, acme, globex, acme_subscription, globex_subscription
):
    globex_before = snapshot(globex_subscription)

    response = pointed_at(client_for(alice), globex).post("/billing/plan/", {"tier": "premium"})

    assert response.status_code == 302
    assert snapshot(globex_subscription) == globex_before
    globex.refresh_from_db()
    assert globex.tier == Tier.CORE_PLUS  # the organization's own default, untouched
    assert Subscription.objects.get(pk=acme_subscription.pk).tier == Tier.PREMIUM
    assert [detail["id"] for _, detail in sandbox.SENT] == ["sub_acme"]
    assert not Event.objects.filter(organization=globex).exists()
    assert not AuditEvent.objects.filter(organization=globex).exists()

    # carol's attempt (Globex's plan is sales-managed, so refused) touches nothing of Acme's.
    acme_before = snapshot(acme_subscription)
    client_for(carol).post("/billing/plan/", {"tier": "core_plus"})
    assert snapshot(acme_subscription) == acme_before
    assert [detail["id"] for _, detail in sandbox.SENT] == ["sub_acme"]
    assert Event.objects.filter(organization=acme).count() == 1


@pytest.mark.isolation("portal:billing_cancel")
def test_cancel_touches_only_the_callers_subscription(
    client_for, alice, carol, acme, globex, acme_subscription, globex_subscription
):
    globex_before = snapshot(globex_subscription)

    pointed_at(client_for(alice), globex).post("/billing/cancel/", {"when": "now"})

    assert Subscription.objects.get(pk=acme_subscription.pk).status == SubscriptionStatus.CANCELED
    assert snapshot(globex_subscription) == globex_before
    assert not Event.objects.filter(organization=globex).exists()

    acme_before = snapshot(acme_subscription)
    client_for(carol).post("/billing/cancel/", {"when": "period_end"})
    assert Subscription.objects.get(pk=globex_subscription.pk).cancel_at_period_end is True
    assert snapshot(acme_subscription) == acme_before
    assert [detail["id"] for _, detail in sandbox.SENT] == ["sub_acme", "sub_globex"]


@pytest.mark.isolation("portal:billing_resume")
def test_resume_cannot_withdraw_another_organizations_cancellation(
    client_for, alice, carol, globex, acme_subscription, globex_subscription
):
    Subscription.objects.filter(pk=globex_subscription.pk).update(cancel_at_period_end=True)
    globex_before = snapshot(globex_subscription)

    # Acme has nothing scheduled; Globex's scheduled cancellation is out of alice's reach.
    _, shown = post(pointed_at(client_for(alice), globex), "/billing/resume/")

    assert shown == ["No cancellation is scheduled."]
    assert snapshot(globex_subscription) == globex_before
    assert sandbox.SENT == []

    # carol withdraws her own; Acme is untouched.
    Subscription.objects.filter(pk=acme_subscription.pk).update(cancel_at_period_end=True)
    acme_before = snapshot(acme_subscription)
    client_for(carol).post("/billing/resume/")
    assert Subscription.objects.get(pk=globex_subscription.pk).cancel_at_period_end is False
    assert snapshot(acme_subscription) == acme_before
    assert [detail["id"] for _, detail in sandbox.SENT] == ["sub_globex"]


@pytest.mark.isolation("portal:billing_portal")
def test_billing_portal_opens_only_the_callers_account(
    client_for, alice, carol, globex, acme_subscription, globex_subscription
):
    response = pointed_at(client_for(alice), globex).post("/billing/portal/")

    assert sandbox.SENT == [("billing_portal_url", {"customer": "cus_acme"})]
    body = client_for(alice).get(response["Location"]).content.decode()
    assert "cus_acme" in body
    assert_none_of(GLOBEX_SECRETS, body)

    response = client_for(carol).post("/billing/portal/")
    assert sandbox.SENT[-1] == ("billing_portal_url", {"customer": "cus_globex"})
    body = client_for(carol).get(response["Location"]).content.decode()
    assert "Hammock fleet" in body
    assert_none_of(ACME_SECRETS, body)


def aimed_at_globex(api: Any, api_key_for: Any, acme: Any, summit: Any, alice: Any, globex: Any) -> tuple[str, list]:
    """Acme's key, Summit's partner key (by slug and by id) and alice's session, each naming Globex."""
    _, acme_key = api_key_for(organization=acme)
    _, partner_key = api_key_for(partner=summit)
    alice_session = APIClient()
    alice_session.force_login(alice)
    alice_session.credentials(HTTP_X_ORGANIZATION="globex")
    clients = [api(key, ident) for key in (acme_key, partner_key) for ident in ("globex", str(globex.pk))]
    return acme_key, [*clients, alice_session]


@pytest.mark.isolation("api-billing-status")
def test_status_api_never_answers_for_another_organization(
    api, api_key_for, acme, summit, pat, alice, globex, acme_subscription, globex_subscription
):
    acme_key, clients = aimed_at_globex(api, api_key_for, acme, summit, alice, globex)
    for client in clients:
        response = client.get("/api/billing/status")
        assert response.status_code == 404
        assert_none_of(GLOBEX_SECRETS, response.content.decode())

    # Without the header, Acme's own answer, and nothing of Globex.
    response = api(acme_key).get("/api/billing/status")
    assert response.json()["organization"] == "acme"
    assert_none_of(GLOBEX_SECRETS, response.content.decode())


@pytest.mark.isolation("api-billing-portal")
def test_portal_api_never_opens_another_organizations_account(
    api, api_key_for, acme, summit, pat, alice, globex, acme_subscription, globex_subscription
):
    acme_key, clients = aimed_at_globex(api, api_key_for, acme, summit, alice, globex)
    for client in clients:
        response = client.post("/api/billing/portal", {}, format="json")
        assert response.status_code == 404
        assert "url" not in response.json()
    assert sandbox.SENT == []

    response = api(acme_key).post("/api/billing/portal", {}, format="json")
    assert sandbox.SENT == [("billing_portal_url", {"customer": "cus_acme"})]
    assert_none_of(GLOBEX_SECRETS, APIClient().get(response.json()["url"]).content.decode())


@pytest.mark.isolation("billing:sandbox_portal")
def test_sandbox_portal_shows_only_the_signed_customer(client, settings, acme_subscription, globex_subscription):
    url = sandbox.SandboxProvider().billing_portal_url(customer="cus_acme", return_url="http://testserver/billing/")
    token = sandbox_token(url)

    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "cus_acme" in body
    assert_none_of(GLOBEX_SECRETS, body)

    # A token tampered with (to name Globex's customer, or just altered) is no page at all.
    _, timestamp, signature = token.split(":")
    globex_payload = sandbox.signing.b64_encode(b'{"customer":"cus_globex","return_url":"http://testserver/billing/"}')
    forged = f"{globex_payload.decode()}:{timestamp}:{signature}"
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    checkout_token = sandbox.signing.dumps({"customer": "cus_globex", "return_url": "/"}, salt=sandbox.CHECKOUT_SALT)
    for bad in (forged, altered, checkout_token, "nonsense"):
        assert client.get(f"/sandbox/stripe/billing-portal/{bad}").status_code == 404

    # With the real provider the sandbox pages do not exist.
    settings.STRIPE_PROVIDER = "stripe"
    assert client.get(url).status_code == 404


# -- 7. The staff admin ------------------------------------------------------------------------------------------------


def test_staff_admin_lists_subscriptions_and_stripe_events(staff_client, acme_subscription, globex_subscription):
    StripeEvent.objects.create(
        event_id="evt_admin_1", type="invoice.paid", created=1_700_000_000, object_id="in_1", payload={"id": "evt"}
    )

    subscriptions = staff_client.get("/admin/billing/subscription/")
    assert subscriptions.status_code == 200
    body = subscriptions.content.decode()
    assert "Acme Pty Ltd" in body and "Globex Corporation" in body
    assert "718.00" in body

    detail = staff_client.get(f"/admin/billing/subscription/{acme_subscription.pk}/change/")
    assert detail.status_code == 200
    assert "Additional users" in detail.content.decode()

    events = staff_client.get("/admin/billing/stripeevent/")
    assert events.status_code == 200
    assert "evt_admin_1" in events.content.decode()


def test_billing_group_may_view_subscriptions(acme_subscription):
    group = Group.objects.get(name="Billing")
    assert group.permissions.filter(content_type__app_label="billing", codename="view_subscription").exists()

    created = UserFactory(email="bill@keel.test", is_staff=True)
    created.groups.add(group)
    member = User.objects.get(pk=created.pk)  # fresh permission cache
    assert member.has_perm("billing.view_subscription")
    assert not member.has_perm("billing.change_subscription")

    client = admin_client(member)
    assert client.get("/admin/billing/subscription/").status_code == 200
    assert client.get(f"/admin/billing/subscription/{acme_subscription.pk}/change/").status_code == 200
    # The group cannot see what it holds no permission for.
    assert client.get("/admin/tenancy/apikey/").status_code == 403
