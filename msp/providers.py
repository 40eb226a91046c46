"""Choosing a provider adapter by setting: each app names its adapters (``sandbox``, the real one) and the setting
that picks one; ``get_provider()`` builds the named adapter once per process and hands out that instance (a real
adapter keeps its HTTP session, with its connection pool, and what it learned, such as tokens)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.utils.module_loading import import_string

Adapter = TypeVar("Adapter")


class ProviderChoice(Generic[Adapter]):
    """``get_provider = ProviderChoice[SomeProvider]("SOME_PROVIDER", {"sandbox": "app.providers.sandbox.X"})``;
    ``get_provider()`` is the adapter the setting names, one instance per name and process. An unknown name is a
    ``LookupError`` naming the setting and the names it takes."""

    def __init__(self, setting: str, adapters: Mapping[str, str]) -> None:
        self.setting = setting
        self.adapters = adapters  # the app's own table, not a copy: a test harness may point a name elsewhere
        self.instances: dict[str, Any] = {}

    def __call__(self) -> Adapter:
        name = getattr(settings, self.setting)
        if name not in self.adapters:
            raise LookupError(f"unknown {self.setting} {name!r}; expected one of {', '.join(self.adapters)}")
        if name not in self.instances:
            self.instances[name] = import_string(self.adapters[name])()
        instance: Adapter = self.instances[name]
        return instance
