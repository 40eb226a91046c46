"""What a workflow is made of, apart from running it: its conditions (evaluated over plain values, the "facts" of a
ticket), the actions it may take, and the validation the admin form applies, with messages that name the faulty item.
The engine that runs workflows is ``tickets.workflows``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import Group

from tenancy.models import Tier, User
from tickets.models import Channel, Priority, TicketStatus

MAX_TAG_LENGTH = 40
MAX_NOTE = 10_000
MAX_MESSAGE = 500


class WorkflowConfigError(Exception):
    """A stored workflow the engine cannot run (written around the admin's validation)."""


class WorkflowActionError(Exception):
    """An action that cannot be applied to this ticket now (its user left, say)."""


# -- conditions: plain values in, plain values out -------------------------------------------------------------------

TEXT, CHOICE, LIST, BOOL = "text", "choice", "list", "bool"
OPS = {
    TEXT: ("equals", "not_equals", "contains", "not_contains", "in", "not_in"),
    CHOICE: ("equals", "not_equals", "in", "not_in"),
    LIST: ("contains", "not_contains", "in", "not_in"),
    BOOL: ("equals",),
}
# What ``changed`` can name: the fields the services report as changed.
CHANGE_NAMES = ("subject", "description", "category", "tags", "required_skills", "status", "priority", "assignee",
                "comments")  # fmt: skip
FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "subject": (TEXT, ()),
    "description": (TEXT, ()),
    "category": (TEXT, ()),
    "requester_email": (TEXT, ()),
    "requester_domain": (TEXT, ()),
    "assignee": (TEXT, ()),  # the assignee's email; "" when unassigned
    "status": (CHOICE, tuple(TicketStatus.values)),
    "priority": (CHOICE, tuple(Priority.values)),
    "channel": (CHOICE, tuple(Channel.values)),
    "tier": (CHOICE, tuple(Tier.values)),
    "tags": (LIST, ()),
    "changed": (LIST, CHANGE_NAMES),
    "business_hours": (BOOL, ()),
}


def condition_holds(condition: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """Whether one condition holds for the ticket described by ``facts`` (``ticket_facts``). Text compares without
    regard to case; a list field ``contains`` a value when one of its items is it, and is ``in`` a list when one of
    its items is in the list."""
    name, op, value = condition.get("field"), condition.get("op"), condition.get("value")
    if name not in FIELDS or op not in OPS[FIELDS[name][0]]:
        raise WorkflowConfigError(f"cannot evaluate {name!r} {op!r}")
    actual = facts[name]
    if isinstance(actual, bool):
        return actual is value
    wanted = {str(item).lower() for item in value} if isinstance(value, list | tuple) else {str(value).lower()}
    if isinstance(actual, list | tuple):
        hit = bool({str(item).lower() for item in actual} & wanted)
        return hit if op in ("contains", "in") else not hit
    text = str(actual or "").lower()
    if op in ("equals", "in"):
        return text in wanted
    if op in ("not_equals", "not_in"):
        return text not in wanted
    hit = any(item in text for item in wanted)
    return hit if op == "contains" else not hit


def conditions_hold(conditions: Sequence[Mapping[str, Any]], facts: Mapping[str, Any]) -> bool:
    """All conditions hold (an empty list always does)."""
    if not isinstance(conditions, list | tuple):
        raise WorkflowConfigError("conditions must be a list")
    return all(condition_holds(condition, facts) for condition in conditions)


# -- validation (the admin form; messages name the item) -------------------------------------------------------------


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, str) and item.strip() for item in value)


def _condition_error(condition: Any) -> str | None:
    if not isinstance(condition, dict):
        return 'must be an object such as {"field": "priority", "op": "equals", "value": "P1"}'
    unknown = sorted(set(condition) - {"field", "op", "value"})
    if unknown:
        return f"unknown key {', '.join(unknown)} (use field, op and value)"
    name, op = condition.get("field"), condition.get("op")
    if name not in FIELDS:
        return f"unknown field {name!r}; use one of {', '.join(FIELDS)}"
    kind, choices = FIELDS[name]
    if op not in OPS[kind]:
        return f"{name} cannot use op {op!r}; use one of {', '.join(OPS[kind])}"
    if "value" not in condition:
        return f"{name} {op} needs a value"
    value = condition["value"]
    if kind == BOOL:
        return None if isinstance(value, bool) else f"{name} takes true or false"
    if op in ("in", "not_in"):
        if not _strings(value):
            return f"{name} {op} needs a list of values"
        values = value
    elif not isinstance(value, str) or (not value.strip() and op not in ("equals", "not_equals")):
        return f"{name} {op} needs a text value"
    else:
        values = [value]
    bad = [item for item in values if choices and item not in choices]
    if bad:
        return f"{', '.join(map(repr, bad))} is not a {name}; use one of {', '.join(choices)}"
    return None


def conditions_errors(conditions: Any) -> list[str]:
    if not isinstance(conditions, list):
        return ['Conditions must be a list: [{"field": "priority", "op": "equals", "value": "P1"}, ...].']
    found = [(number, _condition_error(item)) for number, item in enumerate(conditions, 1)]
    return [f"Condition {number}: {error}." for number, error in found if error]


def _staff_error(email: Any) -> str | None:
    if not isinstance(email, str) or not email.strip():
        return "needs a user (an email address)"
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        return f"no user {email!r}"
    if not (user.is_staff and user.is_active):
        return f"{email} is not an active staff member"
    return None


def _text_error(value: Any, name: str, limit: int, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        return f"needs a {name}"
    return f"the {name} is longer than {limit} characters" if len(value) > limit else None


def _tags_error(value: Any) -> str | None:
    if not _strings(value):
        return 'needs tags, a list such as ["vip"]'
    too_long = [tag for tag in value if len(tag.strip()) > MAX_TAG_LENGTH]
    return f"tags longer than {MAX_TAG_LENGTH} characters: {', '.join(too_long)}" if too_long else None


EVENT_NAME = re.compile(r"^workflow\.[a-z0-9_]+(\.[a-z0-9_]+)*$")


def event_error(value: Any) -> str | None:
    if not isinstance(value, str) or not EVENT_NAME.match(value) or len(value) > 100:
        return "needs an event named workflow.<name> in lower case, such as workflow.vip_ticket"
    return None


def _role_error(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "needs a role (a staff group such as Manager)"
    return None if Group.objects.filter(name=value).exists() else f"no staff group named {value!r}"


ACTIONS: dict[str, dict[str, Any]] = {
    "assign_user": {"user": _staff_error},
    "assign_skill": {"skill": lambda value: _text_error(value, "skill", MAX_TAG_LENGTH)},
    "set_priority": {
        "priority": lambda value: (
            None if value in Priority.values else f"{value!r} is not a priority ({', '.join(Priority.values)})"
        )
    },
    "set_status": {
        "status": lambda value: (
            None if value in TicketStatus.values else f"{value!r} is not a status ({', '.join(TicketStatus.values)})"
        )
    },
    "add_tags": {"tags": _tags_error},
    "remove_tags": {"tags": _tags_error},
    "add_note": {"body": lambda value: _text_error(value, "body", MAX_NOTE)},
    "notify_user": {
        "user": _staff_error,
        "message": lambda value: _text_error(value, "message", MAX_MESSAGE, required=False),
    },
    "notify_role": {
        "role": _role_error,
        "message": lambda value: _text_error(value, "message", MAX_MESSAGE, required=False),
    },
    "publish_event": {"event": event_error},
}


def _action_error(action: Any) -> str | None:
    if not isinstance(action, dict):
        return 'must be an object such as {"type": "set_priority", "priority": "P1"}'
    kind = action.get("type")
    if kind not in ACTIONS:
        return f"unknown type {kind!r}; use one of {', '.join(ACTIONS)}"
    checks = ACTIONS[kind]
    unknown = sorted(set(action) - {"type", *checks})
    if unknown:
        return f"{kind} does not take {', '.join(unknown)} (it takes {', '.join(checks)})"
    for key, check in checks.items():
        error = check(action.get(key))
        if error:
            return f"{kind} {error}"
    return None


def actions_errors(actions: Any) -> list[str]:
    if not isinstance(actions, list) or not actions:
        return ['Add at least one action: [{"type": "set_priority", "priority": "P1"}, ...].']
    found = [(number, _action_error(item)) for number, item in enumerate(actions, 1)]
    return [f"Action {number}: {error}." for number, error in found if error]
