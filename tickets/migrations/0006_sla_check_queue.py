import django.db.models.deletion
from django.db import migrations, models

OPEN_STATUSES = ["NEW", "OPEN", "PENDING_CUSTOMER", "ON_HOLD"]


def file_due_tickets(apps, schema_editor):
    """Queue every open ticket that has a check to come, at the instant it had."""
    Ticket = apps.get_model("tickets", "Ticket")
    SlaCheck = apps.get_model("tickets", "SlaCheck")
    due = Ticket.objects.filter(sla_next_check_at__isnull=False, status__in=OPEN_STATUSES).values_list(
        "pk", "sla_next_check_at"
    )
    SlaCheck.objects.bulk_create((SlaCheck(ticket_id=pk, due_at=at) for pk, at in due.iterator()), batch_size=5000)


def leave_room_for_updates(apps, schema_editor):
    """Fill ticket pages to 90 % (PostgreSQL), so a ticket's new version fits beside the old one on its page: with no
    indexed column changed, the update is then heap-only and no index is touched."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE tickets_ticket SET (fillfactor = 90)")


def fill_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE tickets_ticket RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0005_list_and_search_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="SlaCheck",
            fields=[
                (
                    "ticket",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="sla_check",
                        serialize=False,
                        to="tickets.ticket",
                    ),
                ),
                ("due_at", models.DateTimeField()),
            ],
        ),
        migrations.AddIndex(
            model_name="slacheck",
            index=models.Index(fields=["due_at", "ticket"], name="sla_check_due"),
        ),
        migrations.RunPython(file_due_tickets, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name="ticket",
            name="ticket_sla_due",
        ),
        migrations.RunPython(leave_room_for_updates, fill_pages),
    ]
