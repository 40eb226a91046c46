"""Staff screens for workflows: a form that refuses rules the engine could not run, naming the condition or action at
fault, the last runs of each workflow, and the run log (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from tickets.models import Workflow, WorkflowRun
from tickets.workflow_rules import ACTIONS, FIELDS, OPS, actions_errors, conditions_errors

RECENT_RUNS = 10

CONDITIONS_HELP = (
    'A list; all must hold (none: always). Example: [{"field": "priority", "op": "in", "value": ["P1", "P2"]}, '
    '{"field": "business_hours", "op": "equals", "value": false}]. Fields: '
    + ", ".join(f"{name} ({', '.join(OPS[kind])})" for name, (kind, _) in FIELDS.items())
    + ". Text compares without regard to case."
)
ACTIONS_HELP = (
    'Applied in order; if one fails none is kept. Example: [{"type": "set_priority", "priority": "P1"}, '
    '{"type": "notify_role", "role": "Manager", "message": "VIP ticket"}]. Types: '
    + ", ".join(f"{kind} ({', '.join(keys)})" for kind, keys in ACTIONS.items())
    + ". Users are staff email addresses; a role is a staff group; events are named workflow.<name>."
)


class WorkflowForm(forms.ModelForm):
    class Meta:
        model = Workflow
        fields = ["name", "organization", "trigger", "position", "active", "stop_processing", "conditions", "actions"]
        help_texts = {"conditions": CONDITIONS_HELP, "actions": ACTIONS_HELP}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "conditions" in data:
            data["conditions"] = [] if data["conditions"] is None else data["conditions"]
            for error in conditions_errors(data["conditions"]):
                self.add_error("conditions", error)
        if "actions" in data:
            data["actions"] = [] if data["actions"] is None else data["actions"]
            for error in actions_errors(data["actions"]):
                self.add_error("actions", error)
        return data


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    form = WorkflowForm
    list_display = ["name", "scope", "trigger", "position", "active", "stop_processing", "run_count", "updated_at"]
    list_display_links = ["name"]
    list_editable = ["position", "active"]
    list_filter = ["trigger", "active", ("organization", admin.EmptyFieldListFilter), "organization"]
    search_fields = ["name", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["recent_runs"]
    ordering = ["trigger", "position", "pk"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workflow]:
        return super().get_queryset(request).annotate(run_total=Count("runs"))

    @admin.display(description="Applies to", ordering="organization__name")
    def scope(self, workflow: Workflow) -> str:
        return str(workflow.organization) if workflow.organization_id else "All organizations"

    @admin.display(description="Runs", ordering="run_total")
    def run_count(self, workflow: Workflow) -> int:
        return int(getattr(workflow, "run_total", 0))

    @admin.display(description="Last runs")
    def recent_runs(self, workflow: Workflow) -> str:
        runs = list(workflow.runs.select_related("ticket")[:RECENT_RUNS]) if workflow.pk else []
        if not runs:
            return "None yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((f"{run.created_at:%Y-%m-%d %H:%M}", run.ticket.reference, run.trigger, run.summary) for run in runs),
        )
        everything = reverse("admin:tickets_workflowrun_changelist") + f"?workflow__id__exact={workflow.pk}"
        return format_html('<table>{}</table><p><a href="{}">All runs</a></p>', rows, everything)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(admin.ModelAdmin):
    list_display = ["created_at", "ticket", "workflow_name", "trigger", "matched", "depth", "outcome"]
    list_filter = ["trigger", "matched", "workflow"]
    search_fields = ["workflow_name", "error"]
    list_select_related = ["ticket"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in WorkflowRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Outcome")
    def outcome(self, run: WorkflowRun) -> str:
        return run.summary
