"""Text from outside that no database column can hold. Shared by the services that store what others send."""

from __future__ import annotations

from typing import Any


def unstorable(value: Any) -> bool:
    """Whether ``value`` holds, anywhere (keys of objects included), text that cannot be stored: a NUL (PostgreSQL
    refuses it in text and in JSON), or a lone surrogate (valid as a JSON escape, not in UTF-8)."""
    if isinstance(value, str):
        return "\x00" in value or (not value.isascii() and any("\ud800" <= char <= "\udfff" for char in value))
    if isinstance(value, list | tuple):
        return any(unstorable(item) for item in value)
    if isinstance(value, dict):
        return any(unstorable(key) or unstorable(item) for key, item in value.items())
    return False
