"""A fresh database gets a default price book (AUD a month, excluding GST). Staff change it in the admin; this
migration only creates rows that are missing, so it never overwrites their prices."""

from decimal import Decimal

from django.db import migrations

ALL_TIERS = ["core_plus", "premium", "enterprise"]

PLANS = [
    {
        "tier": "core_plus",
        "name": "Core+",
        "description": "Managed support, patching, monitoring and security essentials for small teams.",
        "base_monthly": Decimal("499.00"),
        "per_user": Decimal("45.00"),
        "per_device": Decimal("15.00"),
        "included_users": 10,
        "included_devices": 15,
        "custom_quote": False,
        "sort_order": 1,
    },
    {
        "tier": "premium",
        "name": "Premium",
        "description": "Everything in Core+, plus faster response times, compliance reporting and a named engineer.",
        "base_monthly": Decimal("1299.00"),
        "per_user": Decimal("39.00"),
        "per_device": Decimal("12.00"),
        "included_users": 25,
        "included_devices": 40,
        "custom_quote": False,
        "sort_order": 2,
    },
    {
        "tier": "enterprise",
        "name": "Enterprise",
        "description": "A tailored service for larger or regulated organizations, quoted after a discovery call.",
        "base_monthly": Decimal("2999.00"),
        "per_user": Decimal("35.00"),
        "per_device": Decimal("10.00"),
        "included_users": 75,
        "included_devices": 120,
        "custom_quote": True,
        "sort_order": 3,
    },
]

ADD_ONS = [
    {
        "code": "backup_tb",
        "name": "Cloud backup",
        "description": "Encrypted off-site backup with daily restore tests.",
        "kind": "backup_tb",
        "unit_price": Decimal("79.00"),
        "unit_label": "TB",
        "allowed_tiers": ALL_TIERS,
        "max_quantity": 100,
        "sort_order": 1,
    },
    {
        "code": "sms_pack_250",
        "name": "SMS pack (250 messages)",
        "description": "250 SMS credits a month for campaigns and notifications.",
        "kind": "sms_pack",
        "unit_price": Decimal("25.00"),
        "unit_label": "pack",
        "sms_credits": 250,
        "allowed_tiers": ALL_TIERS,
        "max_quantity": 20,
        "sort_order": 2,
    },
    {
        "code": "sms_pack_1000",
        "name": "SMS pack (1,000 messages)",
        "description": "1,000 SMS credits a month for campaigns and notifications.",
        "kind": "sms_pack",
        "unit_price": Decimal("89.00"),
        "unit_label": "pack",
        "sms_credits": 1000,
        "allowed_tiers": ALL_TIERS,
        "max_quantity": 20,
        "sort_order": 3,
    },
    {
        "code": "storage_100gb",
        "name": "Extra storage",
        "description": "Additional managed cloud storage.",
        "kind": "storage",
        "unit_price": Decimal("19.00"),
        "unit_label": "100 GB",
        "allowed_tiers": ALL_TIERS,
        "max_quantity": 100,
        "sort_order": 4,
    },
    {
        "code": "after_hours_support",
        "name": "24/7 after-hours support",
        "description": "Phone support outside business hours, every day of the year.",
        "kind": "service",
        "unit_price": Decimal("349.00"),
        "unit_label": "month",
        "allowed_tiers": ["premium", "enterprise"],
        "max_quantity": 1,
        "sort_order": 5,
    },
]


def seed(apps, schema_editor):
    Plan = apps.get_model("quotes", "Plan")
    AddOn = apps.get_model("quotes", "AddOn")
    for plan in PLANS:
        Plan.objects.get_or_create(tier=plan["tier"], defaults={**plan, "currency": "AUD"})
    for add_on in ADD_ONS:
        AddOn.objects.get_or_create(code=add_on["code"], defaults={**add_on, "currency": "AUD"})


class Migration(migrations.Migration):
    dependencies = [("quotes", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
