"""Every route must have a test proving tenant isolation, so a new route without one fails the suite.

A test claims a route with ``@pytest.mark.isolation("<url name>")``. It must show that alice (Acme) cannot read,
change or learn of Globex data through that route: 404 for another organization's objects, and nothing of Globex in
what she sees. The staff admin is exempt (staff are not tenants; OTP and model permissions guard it).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

import tests

EXEMPT_NAMESPACES = {"admin"}


def route_names(patterns: list, namespace: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = (*namespace, pattern.namespace) if pattern.namespace else namespace
            if set(ns) & EXEMPT_NAMESPACES:
                continue
            yield from route_names(pattern.url_patterns, ns)
        elif isinstance(pattern, URLPattern):
            yield ":".join((*namespace, pattern.name or "")), str(pattern.pattern)


def _marks(obj: object) -> Iterator[str]:
    marks = getattr(obj, "pytestmark", [])
    for item in marks if isinstance(marks, list) else [marks]:
        mark = getattr(item, "mark", item)  # a MarkDecorator wraps its Mark
        if isinstance(mark, pytest.Mark) and mark.name == "isolation":
            yield from mark.args


def claimed_routes() -> set[str]:
    claimed: set[str] = set()
    for module_info in pkgutil.walk_packages(tests.__path__, "tests."):
        if not module_info.name.rsplit(".", 1)[-1].startswith("test_"):
            continue
        module = importlib.import_module(module_info.name)
        claimed.update(_marks(module))
        for _, member in inspect.getmembers(module):
            claimed.update(_marks(member))
            if inspect.isclass(member):
                for _, method in inspect.getmembers(member, inspect.isfunction):
                    claimed.update(_marks(method))
    return claimed


def test_every_route_is_named():
    unnamed = [pattern for name, pattern in route_names(get_resolver().url_patterns) if name.endswith(":") or not name]
    assert unnamed == []


def test_every_route_has_an_isolation_test():
    routes = {name for name, _ in route_names(get_resolver().url_patterns)}
    missing = sorted(routes - claimed_routes())
    assert missing == [], f"routes without an isolation test: {missing}"


def test_claims_name_real_routes():
    routes = {name for name, _ in route_names(get_resolver().url_patterns)}
    assert sorted(claimed_routes() - routes) == []
