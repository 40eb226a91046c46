"""A price book with known prices (independent of the seeded defaults staff may change), and approved prospects."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from qualification.models import Qualification
from quotes.models import AddOn, AddOnKind, Plan
from tests.factories import UserFactory
from tests.helpers import admin_client

ALL_TIERS = ["core_plus", "premium", "enterprise"]
PROSPECT = "dana@prospect.test"


@pytest.fixture
def price_book(db: Any) -> dict[str, Any]:
    Plan.objects.all().delete()
    AddOn.objects.all().delete()
    plans = {
        "core_plus": Plan.objects.create(
            tier="core_plus", name="Core+", base_monthly=Decimal("499.00"), per_user=Decimal("45.00"),
            per_device=Decimal("15.00"), included_users=10, included_devices=15, sort_order=1,
        ),
        "premium": Plan.objects.create(
            tier="premium", name="Premium", base_monthly=Decimal("1299.00"), per_user=Decimal("39.00"),
            per_device=Decimal("12.00"), included_users=25, included_devices=40, sort_order=2,
        ),
        "enterprise": Plan.objects.create(
            tier="enterprise", name="Enterprise", base_monthly=Decimal("2999.00"), per_user=Decimal("35.00"),
            per_device=Decimal("10.00"), included_users=75, included_devices=120, custom_quote=True, sort_order=3,
        ),
    }  # fmt: skip
    add_ons = {
        "backup_tb": AddOn.objects.create(
            code="backup_tb", name="Cloud backup", kind=AddOnKind.BACKUP_TB, unit_price=Decimal("79.00"),
            unit_label="TB", allowed_tiers=ALL_TIERS,
        ),
        "sms_pack_250": AddOn.objects.create(
            code="sms_pack_250", name="SMS pack (250 messages)", kind=AddOnKind.SMS_PACK, unit_price=Decimal("25.00"),
            unit_label="pack", sms_credits=250, allowed_tiers=ALL_TIERS, max_quantity=20,
        ),
        "sms_pack_1000": AddOn.objects.create(
            code="sms_pack_1000", name="SMS pack (1,000 messages)", kind=AddOnKind.SMS_PACK,
            unit_price=Decimal("89.00"), unit_label="pack", sms_credits=1000, allowed_tiers=ALL_TIERS, max_quantity=20,
        ),
        "after_hours_support": AddOn.objects.create(
            code="after_hours_support", name="24/7 after-hours support", kind=AddOnKind.SERVICE,
            unit_price=Decimal("349.00"), unit_label="month", allowed_tiers=["premium", "enterprise"], max_quantity=1,
        ),
    }  # fmt: skip
    return {"plans": plans, "add_ons": add_ons}


@pytest.fixture
def qualify(db: Any) -> Callable[..., Qualification]:
    """Record a prospect's qualification directly (test data; scoring has its own tests)."""

    def make(email: str = PROSPECT, tier: str = "core_plus", status: str = "AUTO_APPROVED") -> Qualification:
        return Qualification.objects.create(tier=tier, customer_email=email, status=status, auto_score=90)

    return make


@pytest.fixture
def prospect(qualify: Callable[..., Qualification]) -> Qualification:
    return qualify()


@pytest.fixture
def staff(db: Any) -> Any:
    return UserFactory(email="sam@keel.test", full_name="Sam Sales", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff: Any) -> Any:
    """A staff client past the admin's one-time-password sign-in."""
    client = admin_client(staff)
    assert client.get("/admin/").status_code == 200
    return client
