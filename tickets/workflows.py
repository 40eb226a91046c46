"""Workflows: staff-written automation rules run when something happens to a ticket.

A workflow has a trigger (``WorkflowTrigger``), conditions that must all hold, and actions applied in order through
``tickets.services`` (so the SLA clocks, activity and events stay right). Global and organization workflows run
together, ordered by position.

Actions change the ticket, and a change is itself a trigger (setting the priority is a ``ticket.updated``), so
workflows can set each other off. Two rules keep that finite:
- a workflow never runs again inside a chain it started: a change made by a workflow does not re-trigger it;
- a chain is at most ``MAX_DEPTH`` levels deep and runs at most ``MAX_RUNS`` workflows in all. Reaching either bound
  stops the chain, and the stop is logged on the ticket instead of raising.
The chain lives in a context variable, set only while a workflow's actions run, so threads and tasks never share it.

Each workflow runs in a savepoint: one that fails is rolled back alone and the failure logged, and whatever
triggered it (a new ticket, a reply) goes through. Every run that matched or failed is a ``WorkflowRun`` and a line
of the ticket's activity; non-matches are not logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from events.services import publish
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import User
from tickets import routing, services, sla
from tickets.clocks import organization_calendar
from tickets.models import (
    Technician,
    Ticket,
    TicketActivity,
    Workflow,
    WorkflowRun,
    WorkflowTrigger,
)
from tickets.workflow_rules import WorkflowActionError, WorkflowConfigError, conditions_hold, event_error

logger = logging.getLogger(__name__)

MAX_DEPTH = 5
MAX_RUNS = 50


def _needs_business_hours(workflows: Iterable[Workflow]) -> bool:
    return any(
        isinstance(item, dict) and item.get("field") == "business_hours"
        for workflow in workflows
        if isinstance(workflow.conditions, list)
        for item in workflow.conditions
    )


def ticket_facts(
    ticket: Ticket, *, changes: Sequence[str] | None = None, now: datetime | None = None, business_hours: bool = False
) -> dict[str, Any]:
    """What conditions can test. ``business_hours`` (reading the ticket's SLA calendar) only when asked for."""
    requester = (ticket.requester_email or "").lower()
    facts: dict[str, Any] = {
        "subject": ticket.subject,
        "description": ticket.description,
        "category": ticket.category,
        "requester_email": requester,
        "requester_domain": requester.rpartition("@")[2],
        "assignee": ticket.assignee.email.lower() if ticket.assignee else "",
        "status": ticket.status,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "tier": ticket.organization.tier,
        "tags": list(ticket.tags),
        "changed": list(changes or ()),
        "business_hours": False,
    }
    if business_hours:
        calendar = ticket.sla_calendar or organization_calendar(ticket.organization)
        facts["business_hours"] = sla.is_business_time(calendar.as_calendar(), now or timezone.now())
    return facts


# -- the engine ------------------------------------------------------------------------------------------------------


@dataclass
class _Budget:
    runs: int = 0
    stopped: bool = False


@dataclass(frozen=True)
class _Chain:
    """The workflows whose actions are running, outermost first, and what the whole chain has used."""

    workflows: tuple[Workflow, ...] = ()
    budget: _Budget = field(default_factory=_Budget)

    @property
    def depth(self) -> int:
        return len(self.workflows) + 1

    def running(self, workflow: Workflow) -> bool:
        return any(item.pk == workflow.pk for item in self.workflows)


_chain: ContextVar[_Chain | None] = ContextVar("tickets_workflow_chain", default=None)


def _ordered(workflows: Any) -> list[Workflow]:
    return list(workflows.order_by("position", F("organization").asc(nulls_first=True), "pk"))


def run_workflows(
    ticket: Ticket, trigger: str, *, changes: Sequence[str] | None = None, actor: User | None = None
) -> None:
    """Run the active workflows for ``trigger`` on ``ticket`` (called by the services, inside their transaction).
    ``ticket`` is refreshed in place when a workflow changed it."""
    if trigger not in WorkflowTrigger.values:
        raise ValueError(f"unknown workflow trigger {trigger!r}")
    chain = _chain.get()
    if chain is not None and chain.budget.stopped:
        return
    workflows = _ordered(
        Workflow.objects.filter(active=True, trigger=trigger).filter(
            Q(organization=None) | Q(organization_id=ticket.organization_id)
        )
    )
    if workflows:
        _evaluate(ticket, trigger, workflows, chain or _Chain(), changes=changes, actor=actor)


def run_workflows_many(triggered: Sequence[tuple[uuid.UUID, uuid.UUID, str]]) -> None:
    """``run_workflows`` for a batch (the breach check), given (ticket id, organization id, trigger): one query finds
    the workflows any of them could need, so a batch with none costs that query alone, and only the tickets some
    workflow could act on are read. A ticket with both clocks at risk at once triggers once."""
    unique = list(dict.fromkeys(triggered))
    if not unique:
        return
    workflows = _ordered(
        Workflow.objects.filter(active=True, trigger__in={trigger for _, _, trigger in unique}).filter(
            Q(organization=None) | Q(organization_id__in={organization for _, organization, _ in unique})
        )
    )
    runs = []
    for pk, organization, trigger in unique if workflows else ():
        mine = [w for w in workflows if w.trigger == trigger and w.organization_id in (None, organization)]
        if mine:
            runs.append((pk, trigger, mine))
    tickets = Ticket.objects.select_related("organization", "assignee").in_bulk({pk for pk, _, _ in runs})
    for pk, trigger, mine in runs:
        _evaluate(tickets[pk], trigger, mine, _Chain(), changes=None, actor=None)


def _evaluate(
    ticket: Ticket,
    trigger: str,
    workflows: list[Workflow],
    chain: _Chain,
    *,
    changes: Sequence[str] | None,
    actor: User | None,
) -> None:
    now = timezone.now()
    facts: dict[str, Any] | None = None
    for workflow in workflows:
        if chain.budget.stopped:
            return
        if chain.running(workflow):
            continue  # its own change does not re-trigger it
        if facts is None:
            facts = ticket_facts(ticket, changes=changes, now=now, business_hours=_needs_business_hours(workflows))
        try:
            matched = conditions_hold(workflow.conditions, facts)
        except (WorkflowConfigError, KeyError, TypeError, ValueError) as bad:
            _record(ticket, workflow, trigger, chain, matched=False, error=f"Conditions cannot be evaluated: {bad}")
            continue
        if not matched:
            continue
        if chain.depth > MAX_DEPTH:
            _stop(ticket, workflow, trigger, chain, f"Stopped: workflows set each other off more than {MAX_DEPTH} "
                                                    "levels deep; this one and any after it did not run.")  # fmt: skip
            return
        if chain.budget.runs >= MAX_RUNS:
            _stop(ticket, workflow, trigger, chain, f"Stopped: {MAX_RUNS} workflow runs in one chain; this one and "
                                                    "any after it did not run.")  # fmt: skip
            return
        chain.budget.runs += 1
        applied, error = _apply(ticket, workflow, trigger, chain, now)
        ticket.refresh_from_db()  # what the actions (or their rollback) left
        facts = None
        _record(ticket, workflow, trigger, chain, matched=True, applied=applied, error=error, actor=actor)
        if workflow.stop_processing and not error:
            return


def _apply(ticket: Ticket, workflow: Workflow, trigger: str, chain: _Chain, now: datetime) -> tuple[list[str], str]:
    """Apply the workflow's actions in a savepoint, with the workflow on the chain. (What was done, error)."""
    token = _chain.set(_Chain((*chain.workflows, workflow), chain.budget))
    applied: list[str] = []
    try:
        with transaction.atomic():
            if not isinstance(workflow.actions, list):
                raise WorkflowConfigError("actions must be a list")
            for action in workflow.actions:
                applied.append(_act(ticket, workflow, trigger, action, now))
                ticket.refresh_from_db()  # the next action (an event's payload, say) sees this one's change
    except ServiceValidationError as bad:
        return [], f"Failed, nothing applied: {'; '.join(bad.messages)}"
    except (ConflictError, WorkflowActionError, WorkflowConfigError) as bad:
        return [], f"Failed, nothing applied: {bad}"
    except Exception as bad:  # a rule must never break what triggered it; the failure is kept on the ticket
        logger.exception("workflow %s failed on ticket %s", workflow.pk, ticket.pk)
        return [], f"Failed, nothing applied: {type(bad).__name__}: {bad}"
    finally:
        _chain.reset(token)
    return applied, ""


def _staff(email: str) -> User:
    user = User.objects.filter(email__iexact=email.strip(), is_active=True, is_staff=True).first()
    if user is None:
        raise WorkflowActionError(f"{email} is not an active staff member")
    return user


def _fresh_tags(ticket: Ticket) -> set[str]:
    return set(Ticket.objects.filter(pk=ticket.pk).values_list("tags", flat=True).get())


def _alert(ticket: Ticket, workflow: Workflow, to: list[str], message: str | None) -> str:
    detail = message or f"The workflow {workflow.name} asked for you to be told about this ticket."
    routing.alert(ticket, to=to, headline=f"{ticket.reference}: {workflow.name}", detail=detail)
    return f"told {', '.join(to)}" if to else "nobody to tell"


def _act(ticket: Ticket, workflow: Workflow, trigger: str, action: Any, now: datetime) -> str:
    """Apply one action; returns what it did, in a few words."""
    if not isinstance(action, dict):
        raise WorkflowConfigError(f"action {action!r} is not an object")
    kind = action.get("type")
    reason = f"Workflow {workflow.name}"
    if kind == "assign_user":
        user = _staff(str(action["user"]))
        services.ticket_assign(ticket=ticket, assignee=user, reason=reason)
        return f"assigned to {user.email}"
    if kind == "assign_skill":
        skill = str(action["skill"]).strip().lower()
        technician, why = routing.choose(Ticket(organization=ticket.organization, required_skills=[skill]), now)
        if technician is None:
            return f"nobody with skill {skill} on shift; assignment unchanged"
        Technician.objects.filter(pk=technician.pk).update(last_assigned_at=now)
        services.ticket_assign(ticket=ticket, assignee=technician.user, reason=f"{reason}: {why}")
        return f"assigned to {technician.user.email} (skill {skill})"
    if kind == "set_priority":
        services.ticket_set_priority(ticket=ticket, priority=str(action["priority"]))
        return f"priority {action['priority']}"
    if kind == "set_status":
        services.ticket_set_status(ticket=ticket, status=str(action["status"]))
        return f"status {action['status']}"
    if kind in ("add_tags", "remove_tags"):
        tags = {str(tag).strip().lower() for tag in action["tags"]}
        current = _fresh_tags(ticket)
        wanted = current | tags if kind == "add_tags" else current - tags
        services.ticket_update(ticket=ticket, tags=sorted(wanted))
        sign = "+" if kind == "add_tags" else "-"
        return f"tags {' '.join(sign + tag for tag in sorted(tags))}"
    if kind == "add_note":
        services.comment_add(ticket=ticket, body=str(action["body"]), internal=True, by_staff=True)
        return "internal note added"
    if kind == "notify_user":
        return _alert(ticket, workflow, [_staff(str(action["user"])).email], action.get("message"))
    if kind == "notify_role":
        return _alert(ticket, workflow, routing.staff_in(str(action["role"])), action.get("message"))
    if kind == "publish_event":
        if event_error(action.get("event")):
            raise WorkflowConfigError(f"{action.get('event')!r} is not a workflow event name")
        payload = {
            "id": ticket.id,
            "number": ticket.reference,
            "status": ticket.status,
            "priority": ticket.priority,
            "assignee": ticket.assignee_id,
            "workflow": workflow.name,
            "workflow_id": workflow.pk,
            "trigger": trigger,
        }
        publish(ticket.organization, str(action["event"]), payload)
        return f"published {action['event']}"
    raise WorkflowConfigError(f"unknown action type {kind!r}")


def _record(
    ticket: Ticket,
    workflow: Workflow,
    trigger: str,
    chain: _Chain,
    *,
    matched: bool,
    applied: list[str] | None = None,
    error: str = "",
    actor: User | None = None,
) -> WorkflowRun:
    run = WorkflowRun.objects.create(
        organization_id=ticket.organization_id,
        ticket=ticket,
        workflow=workflow,
        workflow_name=workflow.name,
        trigger=trigger,
        matched=matched,
        actions_applied=applied or [],
        error=error,
        depth=chain.depth,
    )
    data: dict[str, Any] = {"workflow": workflow.pk, "run": run.pk, "trigger": trigger, "depth": chain.depth}
    if actor is not None:
        data["triggered_by"] = actor.email
    TicketActivity.objects.create(
        organization_id=ticket.organization_id,
        ticket=ticket,
        kind="workflow",
        message=f"Workflow {workflow.name} ({trigger}): {run.summary}"[:500],
        data=data,
    )
    return run


def _stop(ticket: Ticket, workflow: Workflow, trigger: str, chain: _Chain, error: str) -> None:
    """Stop the whole chain and say so on the ticket, against the workflow that ran into the bound."""
    chain.budget.stopped = True
    _record(ticket, workflow, trigger, chain, matched=True, error=error)
