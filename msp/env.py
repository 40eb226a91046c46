"""Typed access to environment variables.

Every setting Keel reads comes through :func:`env`. A secret may instead be provided as a file: when
``NAME`` is unset and ``NAME_FILE`` names a readable file, its stripped contents are used (Docker and
Kubernetes secrets mount this way).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, overload

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class EnvValueError(ValueError):
    """A variable is present but cannot be read as the type the setting needs."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is not None:
        return value
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text(encoding="utf-8").strip()
    return None


def to_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}, got {value!r}")


def to_count_or_off(value: str) -> int | None:
    """A count of zero or more, or None for ``off``."""
    lowered = value.strip().lower()
    if lowered == "off":
        return None
    count = int(lowered)
    if count < 0:
        raise ValueError(f"expected a count of 0 or more, or off, got {value!r}")
    return count


def to_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@overload
def env(name: str, default: str) -> str: ...
@overload
def env(name: str, default: T, cast: Callable[[str], T]) -> T: ...
@overload
def env(name: str, default: None = None) -> str | None: ...
def env(name: str, default: object = None, cast: Callable[[str], object] = str) -> object:
    """Return the variable ``name`` converted by ``cast``, or ``default`` when it is not set."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        raise EnvValueError(f"{name}: {exc}") from exc


def is_set(name: str) -> bool:
    return _raw(name) is not None
