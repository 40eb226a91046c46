"""Reading a NinjaOne webhook delivery: one activity, as NinjaOne's API v2 describes it. Pure: plain values in,
plain values out.

A condition activity looks like this (NinjaOne adds ``device`` when the webhook asks for it with ``expand``)::

    {"id": 12938, "activityTime": 1592600612.5, "activityType": "CONDITION", "statusCode": "TRIGGERED",
     "status": "TRIGGERED", "severity": "MAJOR", "priority": "HIGH", "seriesUid": "7b1f...", "deviceId": 100,
     "organizationId": 7, "sourceConfigUid": "1c2d...", "sourceName": "Disk free space",
     "message": "C: has 4% free space", "device": {"id": 100, "displayName": "ACME-SRV01",
     "systemName": "SRV01", "organizationId": 7, "nodeClass": "WINDOWS_SERVER"}}

``id`` is the activity's own id (unique per delivery); ``seriesUid`` is shared by the activities of one alert, so
TRIGGERED and its later RESET carry the same one. NinjaOne sends ``activityTime`` in epoch seconds; an ISO 8601
time is accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CONDITION = "CONDITION"
TRIGGERED = "TRIGGERED"
# NinjaOne says RESET when a condition clears; RESOLVED and CLEARED are read the same way.
RESET_STATUSES = frozenset({"RESET", "RESOLVED", "CLEARED"})

# NinjaOne severity -> ticket priority (tickets.models.Priority values). A severity NinjaOne does not document (or
# none at all) is P3, the priority of a ticket nobody has triaged.
PRIORITY_BY_SEVERITY = {"CRITICAL": "P1", "MAJOR": "P2", "MODERATE": "P3", "MINOR": "P4", "NONE": "P4"}
DEFAULT_PRIORITY = "P3"
SEVERITY_LABELS = {"CRITICAL": "Critical", "MAJOR": "Major", "MODERATE": "Moderate", "MINOR": "Minor", "NONE": "None"}

MAX_ID = 64
MAX_TEXT = 4000


class ActivityError(ValueError):
    """The delivery is not an activity Keel can read; ``errors`` maps each field to its reasons."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{field}: {' '.join(reasons)}" for field, reasons in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Activity:
    activity_id: str
    activity_type: str
    status: str
    organization_id: str
    occurred_at: datetime | None
    device_id: str = ""
    device_name: str = ""
    node_class: str = ""
    alert_uid: str = ""
    condition_uid: str = ""
    condition_name: str = ""
    severity: str = ""
    message: str = ""

    @property
    def is_condition(self) -> bool:
        return self.activity_type == CONDITION

    @property
    def is_trigger(self) -> bool:
        return self.is_condition and self.status == TRIGGERED

    @property
    def is_reset(self) -> bool:
        return self.is_condition and self.status in RESET_STATUSES

    @property
    def priority(self) -> str:
        return priority_for(self.severity)

    @property
    def severity_label(self) -> str:
        return SEVERITY_LABELS.get(self.severity, self.severity.title() or "Not given")


def priority_for(severity: str) -> str:
    return PRIORITY_BY_SEVERITY.get(severity.upper(), DEFAULT_PRIORITY)


def _identifier(value: Any) -> str | None:
    """NinjaOne's ids are integers or strings; anything else (a bool, a float, an object) is not an id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    if isinstance(value, str) and value.strip() and len(value.strip()) <= MAX_ID:
        return value.strip()
    return None


def _text(data: dict[str, Any], name: str, errors: dict[str, list[str]], limit: int = MAX_TEXT) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[name] = ["Must be text."]
        return ""
    return value.strip()[:limit]


def _time(value: Any, errors: dict[str, list[str]]) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value  # milliseconds, from some NinjaOne endpoints
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            errors["activityTime"] = ["Not a time NinjaOne could have sent."]
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    errors["activityTime"] = ["Epoch seconds or an ISO 8601 time with its offset."]
    return None


def activity_parse(data: Any) -> Activity:
    """The activity in a decoded webhook body. Raises ActivityError naming each field that is missing or wrong.

    Any activity needs ``id`` and ``activityType``; a condition activity also needs its status (``statusCode``, or
    ``status``), its organization (``organizationId``, or ``device.organizationId``), its device (``deviceId``, or
    ``device.id``) and the alert it belongs to (``seriesUid``; without one, the device and ``sourceConfigUid`` name
    the alert)."""
    if not isinstance(data, dict):
        raise ActivityError({"body": ["Must be a JSON object: one NinjaOne activity."]})
    errors: dict[str, list[str]] = {}
    activity_id = _identifier(data.get("id"))
    if activity_id is None:
        errors["id"] = ["The activity id is required (a number or text)."]
    activity_type = _text(data, "activityType", errors, limit=40).upper()
    if not activity_type and "activityType" not in errors:
        errors["activityType"] = ["Required."]
    device = data.get("device")
    if device is not None and not isinstance(device, dict):
        errors["device"] = ["Must be an object."]
        device = None
    device = device or {}
    if errors or activity_type != CONDITION:
        if errors:
            raise ActivityError(errors)
        return Activity(
            activity_id=str(activity_id),
            activity_type=activity_type,
            status=str(data.get("statusCode") or data.get("status") or "")[:40],
            organization_id=_identifier(data.get("organizationId")) or "",
            occurred_at=None,
        )

    status = _text(data, "statusCode", errors, limit=40).upper() or _text(data, "status", errors, limit=40).upper()
    if not status and "statusCode" not in errors and "status" not in errors:
        errors["statusCode"] = ["Required for a condition activity (TRIGGERED or RESET)."]

    organization_id = _identifier(data.get("organizationId"))
    device_organization_id = _identifier(device.get("organizationId"))
    if data.get("organizationId") is not None and organization_id is None:
        errors["organizationId"] = ["Must be NinjaOne's organization id."]
    elif organization_id and device_organization_id and organization_id != device_organization_id:
        errors["organizationId"] = ["Does not match device.organizationId."]
    organization_id = organization_id or device_organization_id
    if organization_id is None and "organizationId" not in errors:
        errors["organizationId"] = ["Required (or device.organizationId)."]

    device_id = _identifier(data.get("deviceId")) or _identifier(device.get("id"))
    if device_id is None:
        errors["deviceId"] = ["Required for a condition activity (or device.id)."]
    elif device.get("id") is not None and _identifier(device.get("id")) != device_id:
        errors["deviceId"] = ["Does not match device.id."]

    condition_uid = _text(data, "sourceConfigUid", errors, limit=100)
    alert_uid = _text(data, "seriesUid", errors, limit=100)
    if not alert_uid and "seriesUid" not in errors:
        if condition_uid and device_id:
            alert_uid = f"device-{device_id}-condition-{condition_uid}"[:100]
        else:
            errors["seriesUid"] = ["Required to tell which alert this is (or sourceConfigUid)."]

    occurred_at = _time(data.get("activityTime"), errors)
    severity = _text(data, "severity", errors, limit=20).upper()
    condition_name = _text(data, "sourceName", errors, limit=200)
    message = _text(data, "message", errors) or _text(data, "subject", errors)
    names = [device.get(key) for key in ("displayName", "systemName", "dnsName")]
    device_name = next((name.strip()[:200] for name in names if isinstance(name, str) and name.strip()), "")
    node_class = device.get("nodeClass") if isinstance(device.get("nodeClass"), str) else ""
    if errors:
        raise ActivityError(errors)
    return Activity(
        activity_id=str(activity_id),
        activity_type=activity_type,
        status=status,
        organization_id=str(organization_id),
        occurred_at=occurred_at,
        device_id=str(device_id),
        device_name=device_name,
        node_class=str(node_class)[:40],
        alert_uid=alert_uid,
        condition_uid=condition_uid,
        condition_name=condition_name,
        severity=severity,
        message=message,
    )
