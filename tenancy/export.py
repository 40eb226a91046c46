"""The organization data export. Each app registers a section: ``register("tickets", fn)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from tenancy.models import Organization

Exporter = Callable[[Organization], Any]
_sections: dict[str, Exporter] = {}


def register(section: str) -> Callable[[Exporter], Exporter]:
    def decorator(func: Exporter) -> Exporter:
        _sections[section] = func
        return func

    return decorator


def collect(organization: Organization) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": "keel.organization-export/1",
        "exported_at": timezone.now().isoformat(),
        "organization_id": str(organization.id),
    }
    for section, func in sorted(_sections.items()):
        data[section] = func(organization)
    return data
