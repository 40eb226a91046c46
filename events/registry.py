"""Handlers subscribe to event types. A pattern is an exact type or a prefix ending in ``*``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from events.models import Event

Handler = Callable[["Event"], None]


@dataclass(frozen=True)
class Subscription:
    name: str
    pattern: str
    func: Handler
    when: Callable[[Event], bool] | None = None  # a cheap check at fan-out: no delivery row when it says no

    def matches(self, event_type: str) -> bool:
        if self.pattern.endswith("*"):
            return event_type.startswith(self.pattern[:-1])
        return event_type == self.pattern

    def wants(self, event: Event) -> bool:
        return self.matches(event.type) and (self.when is None or self.when(event))


_subscriptions: dict[str, Subscription] = {}


def subscribe(
    pattern: str, name: str | None = None, when: Callable[[Event], bool] | None = None
) -> Callable[[Handler], Handler]:
    """Register ``func`` for events matching ``pattern`` (and, when given, for which ``when(event)`` is true at
    fan-out). The name is stored; keep it stable once deployed."""

    def decorator(func: Handler) -> Handler:
        key = name or f"{func.__module__}.{func.__qualname__}"
        _subscriptions[key] = Subscription(key, pattern, func, when)
        return func

    return decorator


def unsubscribe(name: str) -> None:
    _subscriptions.pop(name, None)


def handlers_for(event_type: str) -> list[Subscription]:
    return [sub for sub in _subscriptions.values() if sub.matches(event_type)]


def handler(name: str) -> Subscription | None:
    return _subscriptions.get(name)
