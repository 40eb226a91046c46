"""POST /webhooks/stripe: signatures, replays (also concurrent), processing after commit, provisioning exactly once,
and the subscription mirror's ordering rule."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from billing.models import SmsCreditEntry, StripeEvent, StripeEventStatus, Subscription, SubscriptionStatus
from billing.selectors import sms_credit_balance
from billing.services import stripe_event_process, stripe_event_receive
from billing.signatures import sign
from events.models import Event
from qualification.models import Qualification
from quotes.models import QuoteStatus
from tenancy.models import Membership, Organization, Role, Tier, User
from tests.billing.conftest import SECRET, deliver, event
from tests.helpers import race

pytestmark = pytest.mark.django_db


def subscription_obj(sub_id: str, **fields: Any) -> dict[str, Any]:
    obj = {
        "id": sub_id,
        "object": "subscription",
        "customer": "cus_x",
        "status": "active",
        "items": {
            "data": [
                {
                    "id": "si_base",
                    "price": {"product": "keel-core_plus-base", "unit_amount": 49900, "currency": "aud"},
                    "quantity": 1,
                    "current_period_end": 1_900_000_000,
                },
                {
                    "id": "si_sms",
                    "price": {"product": "keel-addon-sms_pack_250", "unit_amount": 2500, "currency": "aud"},
                    "quantity": 3,
                    "current_period_end": 1_900_000_000,
                },
            ]
        },
        "trial_end": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "metadata": {"tier": "core_plus"},
    }
    obj.update(fields)
    return obj


# -- receiving ---------------------------------------------------------------------------------------------------


@pytest.mark.isolation("stripe-webhook")
def test_webhook_serves_both_spellings_and_answers_a_new_event(client, quote, alice, globex):
    # The endpoint is Stripe's alone: no session or tenant changes what it does or reveals.
    client.force_login(alice)
    body = event("customer.created", {"id": "cus_1"}, event_id="evt_a")
    response = deliver(client, body)
    assert response.status_code == 200
    assert response.json() == {"received": True, "id": "evt_a", "duplicate": False}
    raw = json.dumps(event("customer.created", {"id": "cus_2"}, event_id="evt_b")).encode()
    response = client.post("/webhooks/stripe/", raw, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=sign(raw, SECRET, int(time.time())))  # fmt: skip
    assert response.status_code == 200
    assert "globex" not in response.content.decode().lower()
    assert StripeEvent.objects.filter(event_id__in=["evt_a", "evt_b"]).count() == 2
    assert client.get("/webhooks/stripe").status_code == 405


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "stale", "future", "no_header", "garbage_header", "body_changed"],
)
def test_a_bad_signature_is_400_and_stores_nothing(client, quote, tamper):
    body = event("checkout.session.completed", {"id": "cs_1"}, event_id="evt_bad")
    raw = json.dumps(body).encode()
    now = int(time.time())
    headers = {
        "wrong_secret": sign(raw, "whsec_not_ours", now),
        "stale": sign(raw, SECRET, now - 301),
        "future": sign(raw, SECRET, now + 301),
        "no_header": "",
        "garbage_header": "nonsense",
        "body_changed": sign(raw, SECRET, now),
    }
    if tamper == "body_changed":
        raw = raw.replace(b"cs_1", b"cs_2")
    response = client.post("/webhooks/stripe", raw, content_type="application/json",
                           **({"HTTP_STRIPE_SIGNATURE": headers[tamper]} if headers[tamper] else {}))  # fmt: skip
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({"type": "x", "created": 1, "data": {"object": {}}}).encode(), "id"),
        (json.dumps({"id": "evt_1", "created": 1, "data": {"object": {}}}).encode(), "type"),
        (json.dumps({"id": "evt_1", "type": "x", "created": "yesterday", "data": {"object": {}}}).encode(), "created"),
        (json.dumps({"id": "evt_1", "type": "x", "created": 1, "data": {}}).encode(), "data.object"),
    ],
)
def test_a_signed_body_that_is_not_an_event_is_400_naming_the_field(client, raw, field):
    response = deliver(client, raw)
    assert response.status_code == 400
    assert field in response.json()
    assert not StripeEvent.objects.exists()


def test_a_replay_is_a_200_no_op(client, checkout_events, django_capture_on_commit_callbacks, mailoutbox):
    events = checkout_events()
    with django_capture_on_commit_callbacks(execute=True):
        for item in events:
            deliver(client, item)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        replies = [deliver(client, item) for item in events]
    assert [reply.status_code for reply in replies] == [200, 200, 200]
    assert all(reply.json()["duplicate"] for reply in replies)
    assert callbacks == []  # nothing queued for processing again
    assert StripeEvent.objects.count() == 3
    assert Subscription.objects.count() == 1
    assert len([mail for mail in mailoutbox if "Welcome" in mail.subject]) == 1


def test_processing_waits_for_the_commit(client, checkout_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for item in checkout_events():
            deliver(client, item)
    assert len(callbacks) == 3
    assert StripeEvent.objects.filter(status=StripeEventStatus.PENDING).count() == 3
    assert not Subscription.objects.exists()
    for callback in callbacks:
        callback()
    assert StripeEvent.objects.filter(status=StripeEventStatus.DONE).count() == 3
    assert Subscription.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_replay_stores_and_processes_once(settings, checkout_events):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent inserts need PostgreSQL")
    events = checkout_events()
    for item in events:
        raw = json.dumps(item).encode()
        receive = partial(stripe_event_receive, payload=raw, signature=sign(raw, SECRET, int(time.time())))
        outcomes = race(receive, 4)
        stored = [outcome[1] for outcome in outcomes if isinstance(outcome, tuple)]
        assert sorted(stored) == [False, False, False, True], outcomes
    assert StripeEvent.objects.count() == 3
    assert Subscription.objects.count() == 1
    assert Organization.objects.exclude(stripe_customer_id="").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_processing_the_same_checkout_provision_once(checkout_events):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    subscription_created, completed, _ = checkout_events()
    # The same checkout announced twice under two event ids (a resend after a Stripe-side retry).
    second = {**completed, "id": completed["id"] + "_again"}
    pks = []
    for item in (subscription_created, completed, second):
        pks.append(
            StripeEvent.objects.create(
                event_id=item["id"], type=item["type"], created=item["created"], payload=item,
                object_id=item["data"]["object"]["id"],
            ).pk
        )  # fmt: skip
    stripe_event_process(event_pk=pks[0])
    queue = [pks[1], pks[2]]
    outcomes = race(lambda: stripe_event_process(event_pk=queue.pop()), 2)
    assert outcomes == [StripeEventStatus.DONE, StripeEventStatus.DONE]
    assert Subscription.objects.count() == 1
    assert Organization.objects.exclude(stripe_customer_id="").count() == 1
    assert Membership.objects.filter(role=Role.OWNER, user__email="dana@prospect.test").count() == 1
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {StripeEventStatus.DONE}


# -- provisioning ----------------------------------------------------------------------------------------------


def test_checkout_provisions_the_customer(customer, quote, mailoutbox):
    org = customer.organization
    owner = User.objects.get(email="dana@prospect.test")
    assert org.tier == Tier.CORE_PLUS
    assert org.currency == "AUD"
    assert org.stripe_customer_id == customer.stripe_customer_id and org.stripe_customer_id.startswith("cus_sbx_")
    assert Membership.objects.get(organization=org).user == owner
    assert Membership.objects.get(organization=org).role == Role.OWNER
    assert not owner.has_usable_password()
    # The subscription mirrors the quote: 499 base + 2 x 45 users + 2 x 25 SMS + 79 backup = 718.00.
    assert customer.status == SubscriptionStatus.ACTIVE
    assert customer.tier == Tier.CORE_PLUS and customer.plan_name == "Core+"
    assert customer.price_monthly == Decimal("718.00") == quote.price_monthly
    assert sorted((item.code, item.quantity, item.unit_amount) for item in customer.items.all()) == [
        ("backup_tb", 1, Decimal("79.00")),
        ("base", 1, Decimal("499.00")),
        ("extra_users", 2, Decimal("45.00")),
        ("sms_pack_250", 2, Decimal("25.00")),
    ]
    assert customer.current_period_end is not None
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.ACCEPTED and quote.organization == org
    qualification = Qualification.objects.get(customer_email="dana@prospect.test")
    assert qualification.converted and qualification.organization == org
    # Two 250-message packs.
    assert sms_credit_balance(org) == 500
    types = set(Event.objects.filter(organization=org).values_list("type", flat=True))
    assert {"organization.created", "subscription.created", "quote.accepted"} <= types
    welcome = [mail for mail in mailoutbox if mail.to == ["dana@prospect.test"]]
    assert len(welcome) == 1
    assert "Welcome" in welcome[0].subject
    assert "/login/welcome/?token=" in welcome[0].body
    assert "718.00" in welcome[0].body


def test_a_trial_plan_starts_trialing(client, price_book, checkout_events, django_capture_on_commit_callbacks):
    price_book["plans"]["core_plus"].trial_days = 14
    price_book["plans"]["core_plus"].save()
    with django_capture_on_commit_callbacks(execute=True):
        for item in checkout_events():
            deliver(client, item)
    subscription = Subscription.objects.get()
    assert subscription.status == SubscriptionStatus.TRIALING
    assert subscription.trial_end is not None
    assert 13 < (subscription.trial_end - subscription.created_at).total_seconds() / 86400 <= 14


def test_company_name_and_an_existing_account_are_used(client, quote, prospect, checkout_events,
                                                       django_capture_on_commit_callbacks, mailoutbox):  # fmt: skip
    prospect.company_name = "Dana Dental"
    prospect.save()
    existing = User.objects.create_user(email="Dana@Prospect.test", password="s3cret-Pa55word")
    Organization.objects.create(name="Dana Dental", slug="dana-dental")
    with django_capture_on_commit_callbacks(execute=True):
        for item in checkout_events():
            deliver(client, item)
    subscription = Subscription.objects.get()
    assert subscription.organization.name == "Dana Dental"
    assert subscription.organization.slug == "dana-dental-2"
    assert subscription.owner == existing and not subscription.owner_created
    assert User.objects.filter(email__iexact="dana@prospect.test").count() == 1


def test_an_unknown_quote_fails_the_event_for_staff_and_creates_nothing(
    client, checkout_events, django_capture_on_commit_callbacks
):
    _, completed, _ = checkout_events()
    completed["data"]["object"]["metadata"]["quote_key"] = "x" * 43
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, completed).status_code == 200
    stored = StripeEvent.objects.get()
    assert stored.status == StripeEventStatus.PENDING and stored.attempts == 1
    assert "No quote" in stored.last_error
    assert not Organization.objects.exclude(stripe_customer_id="").exists()
    assert not Subscription.objects.exists()


def test_a_failing_event_is_retried_then_given_up(client, checkout_events, django_capture_on_commit_callbacks):
    _, completed, _ = checkout_events()
    completed["data"]["object"]["metadata"]["quote_key"] = "x" * 43
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, completed)
    stored = StripeEvent.objects.get()
    for _ in range(10):
        stripe_event_process(event_pk=stored.pk)
    stored.refresh_from_db()
    assert stored.status == StripeEventStatus.FAILED
    assert stored.attempts == 8


def test_unhandled_event_types_are_kept_as_ignored(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, event("customer.created", {"id": "cus_1"}, event_id="evt_c"))
    assert StripeEvent.objects.get().status == StripeEventStatus.IGNORED


# -- the mirror ----------------------------------------------------------------------------------------------------


def _deliver_now(client: Client, capture: Any, *items: dict[str, Any]) -> None:
    with capture(execute=True):
        for item in items:
            assert deliver(client, item).status_code == 200


def test_subscription_updates_keep_the_mirror_right(client, customer, django_capture_on_commit_callbacks):
    sub_id = customer.stripe_subscription_id
    now = int(time.time())
    updated = subscription_obj(sub_id, status="past_due", cancel_at_period_end=True, trial_end=None)
    _deliver_now(client, django_capture_on_commit_callbacks,
                 event("customer.subscription.updated", updated, created=now + 10, event_id="evt_u1"))  # fmt: skip
    customer.refresh_from_db()
    assert customer.status == SubscriptionStatus.PAST_DUE
    assert customer.cancel_at_period_end is True
    # 499 + 3 x 25 = 574.00, read from the items Stripe reports.
    assert customer.price_monthly == Decimal("574.00")
    assert customer.current_period_end.timestamp() == 1_900_000_000
    assert Event.objects.filter(organization=customer.organization, type="subscription.past_due").exists()


def test_an_older_event_never_moves_the_mirror_back(client, customer, django_capture_on_commit_callbacks):
    sub_id = customer.stripe_subscription_id
    now = int(time.time())
    newer = event("customer.subscription.deleted", subscription_obj(sub_id, status="canceled", canceled_at=now),
                  created=now + 20, event_id="evt_new")  # fmt: skip
    older = event("customer.subscription.updated", subscription_obj(sub_id, status="active"), created=now + 10,
                  event_id="evt_old")  # fmt: skip
    _deliver_now(client, django_capture_on_commit_callbacks, newer, older)
    customer.refresh_from_db()
    assert customer.status == SubscriptionStatus.CANCELED
    assert customer.canceled_at is not None
    assert StripeEvent.objects.get(event_id="evt_old").status == StripeEventStatus.DONE  # processed, not applied
    # An older invoice event does not revive it either.
    paid = event("invoice.paid", {"id": "in_1", "subscription": sub_id, "billing_reason": "subscription_cycle"},
                 created=now + 15, event_id="evt_paid")  # fmt: skip
    _deliver_now(client, django_capture_on_commit_callbacks, paid)
    customer.refresh_from_db()
    assert customer.status == SubscriptionStatus.CANCELED


def test_a_subscription_event_before_the_checkout_is_applied_at_provisioning(
    client, checkout_events, django_capture_on_commit_callbacks
):
    created, completed, _ = checkout_events()
    sub = created["data"]["object"]
    sub["status"] = "past_due"
    _deliver_now(client, django_capture_on_commit_callbacks, created, completed)
    subscription = Subscription.objects.get()
    assert subscription.status == SubscriptionStatus.PAST_DUE
    assert subscription.synced_at == created["created"]


def test_payment_failed_then_paid(client, customer, django_capture_on_commit_callbacks):
    sub_id = customer.stripe_subscription_id
    now = int(time.time())
    failed = event("invoice.payment_failed", {"id": "in_2", "subscription": sub_id}, created=now + 10,
                   event_id="evt_failed")  # fmt: skip
    _deliver_now(client, django_capture_on_commit_callbacks, failed)
    customer.refresh_from_db()
    assert customer.status == SubscriptionStatus.PAST_DUE
    paid = event(
        "invoice.paid",
        {
            "id": "in_2",
            # Newer API versions name the subscription under parent.subscription_details.
            "parent": {"subscription_details": {"subscription": sub_id}},
            "billing_reason": "subscription_cycle",
            "lines": {"data": [{"period": {"start": now, "end": 1_950_000_000}}]},
        },
        created=now + 20,
        event_id="evt_paid2",
    )
    _deliver_now(client, django_capture_on_commit_callbacks, paid)
    customer.refresh_from_db()
    assert customer.status == SubscriptionStatus.ACTIVE
    assert customer.current_period_end.timestamp() == 1_950_000_000
    # A renewal credits the SMS packs again, once per invoice.
    assert sms_credit_balance(customer.organization) == 1000
    replay = {**paid, "id": "evt_paid2_resent"}
    _deliver_now(client, django_capture_on_commit_callbacks, replay)
    assert sms_credit_balance(customer.organization) == 1000
    assert SmsCreditEntry.objects.for_org(customer.organization).count() == 2
