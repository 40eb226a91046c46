"""The event catalogue partners read is the set of events Keel publishes: every type in it is named by the code that
publishes it (a ``publish``/``publish_many`` call, or a table of types a service picks from), and every literal type
published is in it (or is an internal event no endpoint can subscribe to)."""

from __future__ import annotations

import ast
import pathlib

from events.catalogue import EVENT_TYPES

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = ("tenancy", "qualification", "quotes", "billing", "tickets", "sms", "integrations")
# Published for Keel's own handlers and the audit trail, not offered to partners.
INTERNAL = {
    "organization.reactivated",
    "quote.updated",
    "quote.sent",
    "quote.rejected",
    "quote.expired",
    "invoice.voided",
    "qualification.reviewed",
}


def _sources() -> list[ast.Module]:
    modules = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                modules.append(ast.parse(path.read_text(encoding="utf-8")))
    return modules


def _literals(modules: list[ast.Module]) -> set[str]:
    found = set()
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
                found.add(node.value)
    return found


def _published_literals(modules: list[ast.Module]) -> set[str]:
    """Types passed as a literal to ``publish(organization, "<type>", payload)``."""
    found = set()
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "publish" and len(node.args) >= 2:
                kind = node.args[1]
                if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
                    found.add(kind.value)
    return found


def test_every_catalogued_event_is_named_by_the_code_that_publishes_it():
    literals = _literals(_sources())
    assert sorted(set(EVENT_TYPES) - literals) == []


def test_every_event_published_by_name_is_catalogued_or_internal():
    published = _published_literals(_sources())
    assert published, "the scan found no publish() calls"
    assert sorted(published - set(EVENT_TYPES) - INTERNAL) == []


def test_every_type_is_described_with_an_example():
    for name, (description, example) in EVENT_TYPES.items():
        assert description.endswith("."), name
        assert isinstance(example, dict) and example, name
