from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models

# Full-text search indexes exist on PostgreSQL only (other databases search by containment). Their expressions are
# those tickets.search queries with; the two must stay the same for the planner to use the indexes.
SEARCH_INDEXES = (
    ("ticket", GinIndex(SearchVector("subject", "description", config="english"), name="ticket_search")),
    (
        "comment",
        GinIndex(
            SearchVector("body", config="english"), condition=models.Q(internal=False), name="comment_public_search"
        ),  # fmt: skip
    ),
)


def add_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in SEARCH_INDEXES:
        schema_editor.add_index(apps.get_model("tickets", model_name), index)


def remove_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in SEARCH_INDEXES:
        schema_editor.remove_index(apps.get_model("tickets", model_name), index)


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0001_initial"),
        ("tickets", "0004_workflows"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(fields=["organization", "-created_at", "id"], name="ticket_org_created"),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(fields=["-created_at", "id"], name="ticket_created"),
        ),
        migrations.RunPython(add_search_indexes, remove_search_indexes),
    ]
