from django.db import migrations, models


def copy_notices(apps, schema_editor):
    """Each SlaNotice row becomes an entry of its ticket's ``notices_sent``: kind -> when it was given."""
    Ticket = apps.get_model("tickets", "Ticket")
    SlaNotice = apps.get_model("tickets", "SlaNotice")
    given: dict = {}
    for ticket_id, kind, created_at in SlaNotice.objects.values_list("ticket_id", "kind", "created_at").iterator():
        given.setdefault(ticket_id, {})[kind] = created_at.isoformat()
    for ticket in Ticket.objects.filter(pk__in=list(given)).only("pk", "notices_sent").iterator():
        ticket.notices_sent = given[ticket.pk]
        ticket.save(update_fields=["notices_sent"])


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0006_sla_check_queue"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="notices_sent",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(copy_notices, migrations.RunPython.noop),
        migrations.DeleteModel(
            name="SlaNotice",
        ),
    ]
