from django.db import migrations

# The defaults of tickets.sla.DEFAULT_POLICIES, as editable rows (minutes). Clocks run on each organization's own
# business calendar; Enterprise P1 runs around the clock.
DEFAULTS = {
    "CORE_PLUS": {"P1": (120, 480), "P2": (240, 960), "P3": (480, 2400), "P4": (960, 4800)},
    "PREMIUM": {"P1": (60, 240), "P2": (120, 480), "P3": (240, 1440), "P4": (480, 2400)},
    "ENTERPRISE": {"P1": (15, 240, True), "P2": (60, 480), "P3": (240, 960), "P4": (480, 2400)},
}
NAMES = {"CORE_PLUS": "Core+", "PREMIUM": "Premium", "ENTERPRISE": "Enterprise"}


def seed(apps, schema_editor):
    SlaPolicy = apps.get_model("tickets", "SlaPolicy")
    for tier, rows in DEFAULTS.items():
        targets = {
            priority: {"first_response": row[0], "resolution": row[1], "always_on": len(row) > 2}
            for priority, row in rows.items()
        }
        SlaPolicy.objects.get_or_create(
            tier=tier, organization=None, defaults={"name": f"{NAMES[tier]} standard", "targets": targets}
        )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
