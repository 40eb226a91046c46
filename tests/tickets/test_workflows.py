"""Workflows: conditions (pure), validation, the engine's actions through the services, the re-trigger rule and the
loop bounds, the SLA triggers from the breach check, and the admin form that refuses rules the engine cannot run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import Event
from tenancy.models import Tier
from tests.factories import OrganizationFactory, UserFactory
from tests.quotes.conftest import staff, staff_client  # noqa: F401
from tickets import workflows
from tickets.escalation import sla_check
from tickets.models import (
    Comment,
    SupportSettings,
    Technician,
    Ticket,
    TicketActivity,
    TicketStatus,
    Workflow,
    WorkflowRun,
)
from tickets.services import comment_add, ticket_create, ticket_set_priority, ticket_set_status, ticket_update
from tickets.workflow_rules import (
    ACTIONS,
    WorkflowConfigError,
    actions_errors,
    condition_holds,
    conditions_errors,
    conditions_hold,
)

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
MONDAY_9 = datetime(2026, 11, 23, 9, tzinfo=SYDNEY)

FACTS: dict[str, Any] = {
    "subject": "Printer on FIRE",
    "description": "",
    "category": "hardware",
    "requester_email": "alice@acme.test",
    "requester_domain": "acme.test",
    "assignee": "",
    "status": "NEW",
    "priority": "P2",
    "channel": "email",
    "tier": "PREMIUM",
    "tags": ["vip", "printer"],
    "changed": ["priority"],
    "business_hours": False,
}


def when(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def workflow(name: str, trigger: str, actions: list[dict[str, Any]], *, conditions: Any = (), **extra: Any) -> Workflow:
    return Workflow.objects.create(name=name, trigger=trigger, actions=actions, conditions=list(conditions), **extra)


def runs(ticket: Ticket) -> list[tuple[str, str, str]]:
    """(workflow, trigger, outcome) of the ticket's runs, oldest first."""
    found = WorkflowRun.objects.filter(ticket=ticket).order_by("created_at", "id")
    return [(run.workflow_name, run.trigger, run.summary) for run in found]


def no_routing(organization: Any) -> None:
    SupportSettings.objects.create(organization=organization, auto_routing=False)


# -- conditions (no database) ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        (when("subject", "contains", "fire"), True),  # text ignores case
        (when("subject", "not_contains", "fire"), False),
        (when("subject", "equals", "printer on fire"), True),
        (when("subject", "equals", "printer"), False),
        (when("category", "not_equals", "network"), True),
        (when("requester_domain", "in", ["globex.test", "ACME.test"]), True),
        (when("requester_domain", "not_in", ["acme.test"]), False),
        (when("assignee", "equals", ""), True),  # unassigned
        (when("priority", "equals", "P2"), True),
        (when("priority", "in", ["P1", "P2"]), True),
        (when("priority", "not_in", ["P1", "P2"]), False),
        (when("channel", "equals", "portal"), False),
        (when("tier", "equals", "PREMIUM"), True),
        (when("status", "not_equals", "NEW"), False),
        (when("tags", "contains", "VIP"), True),
        (when("tags", "contains", "vi"), False),  # a list contains whole items, not substrings
        (when("tags", "not_contains", "urgent"), True),
        (when("tags", "in", ["urgent", "printer"]), True),
        (when("tags", "not_in", ["urgent", "printer"]), False),
        (when("changed", "contains", "priority"), True),
        (when("changed", "contains", "status"), False),
        (when("business_hours", "equals", False), True),
        (when("business_hours", "equals", True), False),
    ],
)
def test_a_condition_holds_or_not(condition, holds):
    assert condition_holds(condition, FACTS) is holds


def test_all_conditions_must_hold_and_none_always_holds():
    assert conditions_hold([], FACTS) is True
    assert conditions_hold([when("priority", "equals", "P2"), when("tags", "contains", "vip")], FACTS) is True
    assert conditions_hold([when("priority", "equals", "P2"), when("tags", "contains", "nope")], FACTS) is False


@pytest.mark.parametrize(
    "condition",
    [when("nope", "equals", "x"), when("priority", "contains", "P"), when("tags", "equals", "vip"), {"field": "tier"}],
)
def test_a_condition_the_engine_cannot_evaluate_is_an_error_not_a_guess(condition):
    with pytest.raises(WorkflowConfigError):
        condition_holds(condition, FACTS)


# -- validation ------------------------------------------------------------------------------------------------------


def test_conditions_are_validated_item_by_item():
    assert conditions_errors([when("priority", "in", ["P1"]), when("business_hours", "equals", True)]) == []
    assert conditions_errors([when("assignee", "equals", "")]) == []
    errors = conditions_errors(
        [
            when("priority", "equals", "P1"),
            when("prioroty", "equals", "P1"),
            when("priority", "contains", "P"),
            {"field": "category", "op": "equals"},
            when("priority", "equals", "P9"),
            when("status", "in", "OPEN"),
            when("business_hours", "equals", "yes"),
            when("subject", "contains", ""),
            {"field": "tags", "op": "contains", "value": "x", "extra": 1},
            "priority is P1",
        ]
    )
    assert errors[0].startswith("Condition 2: unknown field 'prioroty'")
    assert errors[1].startswith("Condition 3: priority cannot use op 'contains'")
    assert errors[2] == "Condition 4: category equals needs a value."
    assert errors[3].startswith("Condition 5: 'P9' is not a priority")
    assert errors[4] == "Condition 6: status in needs a list of values."
    assert errors[5] == "Condition 7: business_hours takes true or false."
    assert errors[6] == "Condition 8: subject contains needs a text value."
    assert errors[7].startswith("Condition 9: unknown key extra")
    assert errors[8].startswith("Condition 10: must be an object")
    assert len(errors) == 9
    assert conditions_errors({"field": "priority"})[0].startswith("Conditions must be a list")


def test_actions_are_validated_item_by_item():
    UserFactory(email="tess@keel.test", is_staff=True)
    UserFactory(email="alice@acme.test")
    Group.objects.get_or_create(name="Manager")
    good = [
        {"type": "assign_user", "user": "TESS@keel.test"},
        {"type": "assign_skill", "skill": "network"},
        {"type": "set_priority", "priority": "P1"},
        {"type": "set_status", "status": "ON_HOLD"},
        {"type": "add_tags", "tags": ["vip"]},
        {"type": "remove_tags", "tags": ["vip"]},
        {"type": "add_note", "body": "Call them."},
        {"type": "notify_user", "user": "tess@keel.test", "message": "Look"},
        {"type": "notify_role", "role": "Manager"},
        {"type": "publish_event", "event": "workflow.vip_ticket"},
    ]
    assert actions_errors(good) == []
    errors = actions_errors(
        [
            {"type": "set_priority", "priority": "P9"},
            {"type": "set_status", "status": "open"},
            {"type": "assign_user", "user": "alice@acme.test"},
            {"type": "assign_user", "user": "ghost@keel.test"},
            {"type": "assign_skill", "skill": "  "},
            {"type": "explode"},
            {"type": "add_tags", "tags": []},
            {"type": "notify_role", "role": "Wizards"},
            {"type": "publish_event", "event": "ticket.created"},
            {"type": "set_priority", "priority": "P1", "prio": "P2"},
        ]
    )
    assert errors == [
        "Action 1: set_priority 'P9' is not a priority (P1, P2, P3, P4).",
        "Action 2: set_status 'open' is not a status (NEW, OPEN, PENDING_CUSTOMER, ON_HOLD, RESOLVED, CLOSED).",
        "Action 3: assign_user alice@acme.test is not an active staff member.",
        "Action 4: assign_user no user 'ghost@keel.test'.",
        "Action 5: assign_skill needs a skill.",
        "Action 6: unknown type 'explode'; use one of " + ", ".join(ACTIONS) + ".",
        'Action 7: add_tags needs tags, a list such as ["vip"].',
        "Action 8: notify_role no staff group named 'Wizards'.",
        "Action 9: publish_event needs an event named workflow.<name> in lower case, such as workflow.vip_ticket.",
        "Action 10: set_priority does not take prio (it takes priority).",
    ]
    assert actions_errors([])[0].startswith("Add at least one action")


# -- the engine ------------------------------------------------------------------------------------------------------


def test_a_matching_workflow_acts_through_the_services_and_is_logged(acme, alice):
    workflow(
        "VIP mail",
        "ticket.created",
        [
            {"type": "set_priority", "priority": "P1"},
            {"type": "add_tags", "tags": ["VIP"]},
            {"type": "add_note", "body": "VIP customer: call within the hour."},
        ],
        conditions=[when("requester_domain", "equals", "acme.test"), when("channel", "equals", "email")],
    )
    ticket = ticket_create(organization=acme, subject="Help", requester=alice, channel="email", now=MONDAY_9)
    # The returned ticket is what the workflow left, with the SLA targets of the new priority.
    assert ticket.priority == "P1" and ticket.tags == ["vip"]
    assert ticket.first_response_target == timedelta(hours=2)
    assert ticket.first_response_due == datetime(2026, 11, 23, 11, tzinfo=SYDNEY)
    (note,) = Comment.objects.filter(ticket=ticket)
    assert note.internal and note.by_staff and note.body.startswith("VIP customer")
    assert runs(ticket) == [
        ("VIP mail", "ticket.created", "priority P1; tags +vip; internal note added"),
    ]
    line = TicketActivity.objects.get(ticket=ticket, kind="workflow")
    assert line.message == "Workflow VIP mail (ticket.created): priority P1; tags +vip; internal note added"
    assert line.data["triggered_by"] == "alice@acme.test"
    # The same rule passes over a portal ticket, and says nothing about it.
    portal = ticket_create(organization=acme, subject="Other", requester=alice, channel="portal")
    assert portal.priority == "P3" and runs(portal) == []
    assert not TicketActivity.objects.filter(ticket=portal, kind="workflow").exists()


def test_global_and_organization_workflows_run_by_position_and_stop_processing(acme, globex):
    workflow("Org note", "ticket.created", [{"type": "add_tags", "tags": ["org"]}], organization=acme, position=20)
    workflow("Global first", "ticket.created", [{"type": "add_tags", "tags": ["global"]}], position=10)
    workflow("Globex only", "ticket.created", [{"type": "add_tags", "tags": ["globex"]}], organization=globex)
    acme_ticket = ticket_create(organization=acme, subject="A")
    assert [name for name, _, _ in runs(acme_ticket)] == ["Global first", "Org note"]
    assert acme_ticket.tags == ["global", "org"]
    globex_ticket = ticket_create(organization=globex, subject="G")
    assert globex_ticket.tags == ["global", "globex"]
    # A stop_processing workflow that matches ends the evaluation for its trigger.
    Workflow.objects.filter(name="Global first").update(stop_processing=True)
    assert ticket_create(organization=acme, subject="B").tags == ["global"]


def test_tier_and_priority_conditions(acme):
    bigco = OrganizationFactory(slug="bigco", tier=Tier.ENTERPRISE)
    workflow(
        "Enterprise P1s to on-call",
        "ticket.created",
        [{"type": "add_tags", "tags": ["on-call"]}],
        conditions=[when("tier", "equals", "ENTERPRISE"), when("priority", "in", ["P1"])],
    )
    assert ticket_create(organization=bigco, subject="Down", priority="P1").tags == ["on-call"]
    assert ticket_create(organization=bigco, subject="Slow", priority="P2").tags == []
    assert ticket_create(organization=acme, subject="Down", priority="P1").tags == []


def test_business_hours_follow_the_tickets_calendar(acme):
    workflow(
        "After hours",
        "ticket.created",
        [{"type": "add_tags", "tags": ["after-hours"]}],
        conditions=[when("business_hours", "equals", False)],
    )
    with time_machine.travel(datetime(2026, 11, 23, 10, tzinfo=SYDNEY), tick=False):  # Monday 10:00 Sydney
        assert ticket_create(organization=acme, subject="Day").tags == []
    with time_machine.travel(datetime(2026, 11, 23, 19, tzinfo=SYDNEY), tick=False):  # Monday 19:00
        assert ticket_create(organization=acme, subject="Evening").tags == ["after-hours"]
    with time_machine.travel(datetime(2026, 12, 25, 10, tzinfo=SYDNEY), tick=False):  # Christmas, a holiday
        assert ticket_create(organization=acme, subject="Christmas").tags == ["after-hours"]


def test_updates_say_what_changed(acme):
    workflow(
        "Escalated by hand",
        "ticket.updated",
        [{"type": "add_note", "body": "Priority raised: tell the account manager."}],
        conditions=[when("changed", "contains", "priority"), when("priority", "equals", "P1")],
    )
    ticket = ticket_create(organization=acme, subject="Slow")
    ticket_set_status(ticket=ticket, status=TicketStatus.OPEN)
    ticket_set_priority(ticket=ticket, priority="P2")
    assert runs(ticket) == []
    ticket_set_priority(ticket=ticket, priority="P1")
    assert runs(ticket) == [("Escalated by hand", "ticket.updated", "internal note added")]


def test_assign_to_a_skill_picks_the_best_technician_with_it(acme):
    no_routing(acme)
    generalist = Technician.objects.create(user=UserFactory(email="gen@keel.test", is_staff=True), skills=[])
    network = Technician.objects.create(user=UserFactory(email="net@keel.test", is_staff=True), skills=["network"])
    workflow(
        "Network queue",
        "ticket.created",
        [{"type": "assign_skill", "skill": "Network"}],
        conditions=[when("category", "equals", "network")],
    )
    ticket = ticket_create(organization=acme, subject="VPN", category="Network")
    assert ticket.assignee == network.user
    assert ticket.routing_reason.startswith("Workflow Network queue: Routed to net@keel.test")
    network.refresh_from_db()
    assert network.last_assigned_at is not None
    network.active = False
    network.save(update_fields=["active"])
    other = ticket_create(organization=acme, subject="Wifi", category="network")
    assert other.assignee is None  # the generalist lacks the skill
    assert runs(other)[0][2] == "nobody with skill network on shift; assignment unchanged"
    assert generalist.user.assigned_tickets.count() == 0


def test_notify_and_publish(acme, mailoutbox, django_capture_on_commit_callbacks):
    no_routing(acme)  # no unrouted-ticket mail to the managers
    tess = UserFactory(email="tess@keel.test", is_staff=True)
    manager = UserFactory(email="manager@keel.test", is_staff=True)
    Group.objects.get_or_create(name="Manager")[0].user_set.add(manager)
    workflow(
        "Outage",
        "ticket.created",
        [
            {"type": "set_priority", "priority": "P1"},
            {"type": "notify_user", "user": tess.email, "message": "Outage reported."},
            {"type": "notify_role", "role": "Manager"},
            {"type": "publish_event", "event": "workflow.outage"},
        ],
        conditions=[when("subject", "contains", "outage")],
    )
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_create(organization=acme, subject="Email outage")
    assert sorted(mail.to[0] for mail in mailoutbox) == ["manager@keel.test", "tess@keel.test"]
    told = next(mail for mail in mailoutbox if mail.to == ["tess@keel.test"])
    assert "Outage reported." in told.body and "T-1001" in told.subject
    event = Event.objects.get(type="workflow.outage")
    # The event was published after the priority changed, and says so.
    assert event.organization == acme
    assert event.payload["priority"] == "P1" and event.payload["workflow"] == "Outage"
    assert event.payload["number"] == ticket.reference and event.payload["trigger"] == "ticket.created"


def test_a_failing_workflow_is_rolled_back_alone_and_logged(acme):
    leaver = UserFactory(email="leaver@keel.test", is_staff=True)
    workflow(
        "Broken",
        "ticket.created",
        [{"type": "set_priority", "priority": "P1"}, {"type": "assign_user", "user": leaver.email}],
        position=1,
    )
    workflow("Still runs", "ticket.created", [{"type": "add_tags", "tags": ["ok"]}], position=2)
    leaver.is_staff = False
    leaver.save(update_fields=["is_staff"])
    ticket = ticket_create(organization=acme, subject="Still created")
    assert ticket.priority == "P3" and ticket.assignee is None  # the priority change was rolled back with the rest
    assert ticket.tags == ["ok"]
    failed = WorkflowRun.objects.get(ticket=ticket, workflow_name="Broken")
    assert failed.actions_applied == []
    assert failed.error == "Failed, nothing applied: leaver@keel.test is not an active staff member"
    assert not TicketActivity.objects.filter(ticket=ticket, kind="priority").exists()


def test_a_workflow_stored_with_bad_conditions_is_logged_not_raised(acme):
    workflow("Hand-written", "ticket.created", [{"type": "add_tags", "tags": ["x"]}],
             conditions=[when("nope", "equals", "x")])  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Fine")
    assert ticket.tags == []
    ((name, _, outcome),) = runs(ticket)
    assert name == "Hand-written" and outcome.startswith("Conditions cannot be evaluated")


def test_inactive_workflows_do_not_run(acme):
    workflow("Off", "ticket.created", [{"type": "add_tags", "tags": ["x"]}], active=False)
    assert ticket_create(organization=acme, subject="Quiet").tags == []


# -- re-triggering and the loop bounds -------------------------------------------------------------------------------


def test_a_workflows_own_change_does_not_re_trigger_it(acme):
    # Every update adds a tag, and adding a tag is an update: without the rule this would feed itself.
    workflow("Touch", "ticket.updated", [{"type": "add_tags", "tags": ["touched"]}])
    ticket = ticket_create(organization=acme, subject="Loop")
    ticket = ticket_set_status(ticket=ticket, status=TicketStatus.OPEN)
    assert ticket.tags == ["touched"]
    assert runs(ticket) == [("Touch", "ticket.updated", "tags +touched")]


def test_a_note_added_by_a_workflow_does_not_add_another(acme, alice):
    workflow("Ack", "comment.added", [{"type": "add_note", "body": "Customer replied: check the queue."}],
             conditions=[when("status", "not_equals", "CLOSED")])  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Reply", requester=alice)
    comment_add(ticket=ticket, body="Any news?", author=alice)
    bodies = list(Comment.objects.filter(ticket=ticket).values_list("body", flat=True))
    assert bodies == ["Any news?", "Customer replied: check the queue."]
    assert len(runs(ticket)) == 1


def test_two_workflows_undoing_each_other_run_once_each(acme):
    workflow("Up", "ticket.updated", [{"type": "set_priority", "priority": "P2"}],
             conditions=[when("priority", "equals", "P3"), when("tags", "contains", "go")], position=1)  # fmt: skip
    workflow("Down", "ticket.updated", [{"type": "set_priority", "priority": "P3"}],
             conditions=[when("priority", "equals", "P2")], position=2)  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Ping pong")
    ticket = ticket_update(ticket=ticket, tags=["go"])
    # Up (P3 to P2) set Down off (P2 to P3); that change sets off neither: both are in the chain.
    assert ticket.priority == "P3"
    assert runs(ticket) == [("Down", "ticket.updated", "priority P3"), ("Up", "ticket.updated", "priority P2")]
    assert list(WorkflowRun.objects.filter(ticket=ticket).order_by("depth").values_list("depth", flat=True)) == [1, 2]
    assert not WorkflowRun.objects.filter(ticket=ticket).exclude(error="").exists()


def test_a_chain_deeper_than_the_bound_is_stopped_and_logged(acme):
    # Step i runs when the ticket has tag t(i-1) and not t(i), and adds t(i): each step sets off the next.
    for step in range(1, 8):
        previous, this = when("tags", "contains", f"t{step - 1}"), when("tags", "not_contains", f"t{step}")
        workflow(f"Step {step}", "ticket.updated", [{"type": "add_tags", "tags": [f"t{step}"]}],
                 conditions=[previous, this], position=step)  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Deep")
    ticket = ticket_update(ticket=ticket, tags=["t0"])  # does not raise
    assert ticket.tags == ["t0", "t1", "t2", "t3", "t4", "t5"]
    stopped = WorkflowRun.objects.filter(ticket=ticket).exclude(error="").get()
    assert stopped.workflow_name == "Step 6" and stopped.depth == workflows.MAX_DEPTH + 1
    assert stopped.error.startswith(f"Stopped: workflows set each other off more than {workflows.MAX_DEPTH} levels")
    assert WorkflowRun.objects.filter(ticket=ticket, error="").count() == 5
    assert TicketActivity.objects.filter(ticket=ticket, kind="workflow", message__contains="Stopped").count() == 1
    # The stop is for that chain only: the next change starts a new one.
    ticket = ticket_update(ticket=ticket, subject="Deep again")
    assert ticket.tags == ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]


def test_a_chain_running_too_many_workflows_is_stopped_and_logged(acme, monkeypatch):
    monkeypatch.setattr(workflows, "MAX_RUNS", 3)
    for number in range(1, 6):
        workflow(f"Tag {number}", "ticket.created", [{"type": "add_tags", "tags": [f"a{number}"]}], position=number)
    ticket = ticket_create(organization=acme, subject="Busy")
    assert ticket.tags == ["a1", "a2", "a3"]
    assert [outcome for _, _, outcome in runs(ticket)][-1] == (
        "Stopped: 3 workflow runs in one chain; this one and any after it did not run."
    )
    assert WorkflowRun.objects.get(ticket=ticket, error__startswith="Stopped").workflow_name == "Tag 4"
    assert not WorkflowRun.objects.filter(ticket=ticket, workflow_name="Tag 5").exists()


# -- SLA triggers from the breach check ------------------------------------------------------------------------------


@pytest.fixture
def on_call(acme):
    manager = UserFactory(email="manager@keel.test", is_staff=True)
    Group.objects.get_or_create(name="Manager")[0].user_set.add(manager)
    return Technician.objects.create(user=UserFactory(email="oncall@keel.test", is_staff=True), skills=[])


def test_sla_triggers_run_once_for_the_tickets_that_changed(acme, on_call):
    workflow("Risk tag", "sla.at_risk", [{"type": "add_tags", "tags": ["sla-risk"]}])
    workflow("Breach hold", "sla.breached", [{"type": "add_note", "body": "Breached: call the customer."}])
    risky = ticket_create(organization=acme, subject="Slow", priority="P1", now=MONDAY_9)
    calm = ticket_create(organization=acme, subject="Calm", priority="P4", now=MONDAY_9)
    sla_check(now=MONDAY_9 + timedelta(minutes=97), dry_run=True)
    assert not WorkflowRun.objects.exists()  # a dry run runs no workflow
    sla_check(now=MONDAY_9 + timedelta(minutes=97))  # the P1's first response is at risk at 10:36
    sla_check(now=MONDAY_9 + timedelta(minutes=98))
    risky.refresh_from_db()
    assert risky.tags == ["sla-risk"]
    assert runs(risky) == [("Risk tag", "sla.at_risk", "tags +sla-risk")]
    sla_check(now=MONDAY_9 + timedelta(hours=2, minutes=1))  # breached at 11:00: level 1
    sla_check(now=MONDAY_9 + timedelta(hours=3, minutes=1))  # level 2 at 12:00 is not a new breach
    assert [run[0] for run in runs(risky)] == ["Risk tag", "Breach hold"]
    assert Comment.objects.filter(ticket=risky, body__startswith="Breached").count() == 1
    assert runs(calm) == []


def test_the_breach_check_asks_once_whether_any_workflow_applies(acme, on_call):
    workflow("Created only", "ticket.created", [{"type": "add_tags", "tags": ["new"]}], organization=acme)
    workflow("Inactive", "sla.at_risk", [{"type": "add_tags", "tags": ["x"]}], active=False)
    for n in range(3):
        ticket_create(organization=acme, subject=f"Slow {n}", priority="P1", now=MONDAY_9)
    with CaptureQueriesContext(connection) as queries:
        report = sla_check(now=MONDAY_9 + timedelta(minutes=97))
    assert len(report.actions) == 3
    assert len([query for query in queries if '"tickets_workflow"' in query["sql"]]) == 1
    assert not WorkflowRun.objects.filter(trigger="sla.at_risk").exists()


# -- admin -----------------------------------------------------------------------------------------------------------


def form(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "VIP",
        "organization": "",
        "trigger": "ticket.created",
        "position": "10",
        "active": "on",
        "conditions": '[{"field": "requester_domain", "op": "equals", "value": "acme.test"}]',
        "actions": '[{"type": "set_priority", "priority": "P1"}]',
    }
    return {**data, **overrides}


def test_admin_refuses_bad_rules_naming_the_item(staff_client):  # noqa: F811
    UserFactory(email="alice@acme.test")
    bad = staff_client.post(
        "/admin/tickets/workflow/add/",
        form(
            conditions='[{"field": "prioroty", "op": "equals", "value": "P1"}, {"field": "priority", "op": "in"}]',
            actions='[{"type": "set_priority", "priority": "P9"}, {"type": "assign_user", "user": "alice@acme.test"},'
            ' {"type": "assign_skill", "skill": ""}, {"type": "set_status", "status": "DONE"}]',
        ),
    )
    assert bad.status_code == 200
    body = bad.content.decode()
    for message in (
        "Condition 1: unknown field &#x27;prioroty&#x27;",
        "Condition 2: priority in needs a value.",
        "Action 1: set_priority &#x27;P9&#x27; is not a priority",
        "Action 2: assign_user alice@acme.test is not an active staff member.",
        "Action 3: assign_skill needs a skill.",
        "Action 4: set_status &#x27;DONE&#x27; is not a status",
    ):
        assert message in body
    assert not Workflow.objects.exists()
    empty = staff_client.post("/admin/tickets/workflow/add/", form(actions="[]"))
    assert "Add at least one action" in empty.content.decode()
    assert not Workflow.objects.exists()


def test_admin_saves_a_good_rule_and_shows_its_runs(staff_client, acme, alice):  # noqa: F811
    assert staff_client.post("/admin/tickets/workflow/add/", form(conditions="")).status_code == 302
    saved = Workflow.objects.get(name="VIP")
    assert saved.organization is None and saved.conditions == [] and saved.actions[0]["priority"] == "P1"
    ticket_create(organization=acme, subject="Printer", requester=alice)
    listing = staff_client.get("/admin/tickets/workflow/").content.decode()
    assert "All organizations" in listing
    page = staff_client.get(f"/admin/tickets/workflow/{saved.pk}/change/").content.decode()
    assert "T-1001" in page and "priority P1" in page
    log = staff_client.get(f"/admin/tickets/workflowrun/?workflow__id__exact={saved.pk}")
    assert log.status_code == 200 and "priority P1" in log.content.decode()
    assert staff_client.get("/admin/tickets/workflowrun/add/").status_code == 403


def test_admin_lists_do_not_grow_queries_with_rows(staff_client, acme, django_assert_max_num_queries):  # noqa: F811
    for n in range(8):
        workflow(f"Rule {n}", "ticket.created", [{"type": "add_tags", "tags": [f"r{n}"]}], organization=acme)
    ticket_create(organization=acme, subject="Many runs")
    ticket_create(organization=acme, subject="More runs")
    # User, OTP device; the organization filter's choices; the filtered and total counts; the page of workflows
    # with their organization and run totals; the session save (3 statements with its savepoint).
    with django_assert_max_num_queries(9):
        assert staff_client.get("/admin/tickets/workflow/").status_code == 200
    # User, OTP device; the workflow filter's choices; two counts; the page of runs with their tickets; the date
    # hierarchy's range and days; the session save (3).
    with django_assert_max_num_queries(11):
        assert staff_client.get("/admin/tickets/workflowrun/").status_code == 200
