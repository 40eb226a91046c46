"""The event type keeps its b-tree index (same name) and loses the LIKE-prefix index db_index added on PostgreSQL."""

from django.db import migrations, models


def drop_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS events_event_type_369b1d2e_like")


def create_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS events_event_type_369b1d2e_like ON events_event (type varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("events", "0005_endpoint_paused_until")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="event", name="type", field=models.CharField(max_length=100)),
                migrations.AddIndex(
                    model_name="event", index=models.Index(fields=["type"], name="events_event_type_369b1d2e")
                ),
            ],
            database_operations=[migrations.RunPython(drop_like_index, create_like_index)],
        )
    ]
