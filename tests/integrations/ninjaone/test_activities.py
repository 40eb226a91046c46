"""Reading NinjaOne activities (pure): the fields Keel uses, where NinjaOne may put them, times in seconds,
milliseconds or ISO 8601, the alert id when seriesUid is missing, and the severity-to-priority table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.ninjaone.activities import ActivityError, activity_parse, priority_for
from tests.integrations.ninjaone.conftest import TRIGGERED_AT, activity


def test_a_condition_activity_is_read():
    parsed = activity_parse(activity(activity_id=12938))
    assert parsed.activity_id == "12938"
    assert (parsed.is_condition, parsed.is_trigger, parsed.is_reset) == (True, True, False)
    assert (parsed.organization_id, parsed.device_id, parsed.device_name) == ("7", "1042", "ACME-SRV01")
    assert (parsed.alert_uid, parsed.condition_uid, parsed.condition_name) == (
        "series-disk-1042", "cond-disk", "Disk free space")  # fmt: skip
    assert (parsed.severity, parsed.severity_label, parsed.priority) == ("MAJOR", "Major", "P2")
    assert parsed.occurred_at == TRIGGERED_AT
    assert parsed.node_class == "WINDOWS_SERVER"


@pytest.mark.parametrize("status", ["RESET", "RESOLVED", "CLEARED", "reset"])
def test_reset_statuses(status):
    assert activity_parse(activity(status=status)).is_reset


def test_the_status_may_be_in_status_alone():
    body = activity()
    del body["statusCode"]
    assert activity_parse(body).is_trigger


def test_the_organization_and_device_may_come_from_the_device_object():
    body = activity()
    del body["organizationId"], body["deviceId"]
    parsed = activity_parse(body)
    assert (parsed.organization_id, parsed.device_id) == ("7", "1042")


def test_without_series_uid_the_device_and_condition_name_the_alert():
    body = activity()
    del body["seriesUid"]
    assert activity_parse(body).alert_uid == "device-1042-condition-cond-disk"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1772442000, TRIGGERED_AT),
        (1772442000.25, datetime(2026, 3, 2, 9, 0, 0, 250000, tzinfo=UTC)),
        (1772442000000, TRIGGERED_AT),
        ("2026-03-02T20:00:00+11:00", TRIGGERED_AT),
        ("2026-03-02T09:00:00Z", TRIGGERED_AT),
        (None, None),
    ],
)
def test_activity_times(value, expected):
    assert activity_parse(activity(activityTime=value)).occurred_at == expected


@pytest.mark.parametrize("value", ["2026-03-02T09:00:00", "soon", True, [1]])
def test_a_time_without_an_offset_or_not_a_time_is_refused(value):
    with pytest.raises(ActivityError) as bad:
        activity_parse(activity(activityTime=value))
    assert list(bad.value.errors) == ["activityTime"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": True}, "id"),
        ({"id": -1}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"organizationId": 7.5}, "organizationId"),
        ({"deviceId": 1043}, "deviceId"),
        ({"severity": 3}, "severity"),
        ({"message": {"text": "no"}}, "message"),
    ],
)
def test_wrong_fields_are_named(changes, field):
    with pytest.raises(ActivityError) as bad:
        activity_parse(activity(**changes))
    assert field in bad.value.errors


def test_a_device_that_is_not_an_object_is_named():
    with pytest.raises(ActivityError) as bad:
        activity_parse({**activity(), "device": "ACME-SRV01"})
    assert bad.value.errors == {"device": ["Must be an object."]}


def test_other_activities_need_only_an_id_and_a_type():
    parsed = activity_parse({"id": "abc", "activityType": "system", "statusCode": "SYSTEM_REBOOTED"})
    assert (parsed.activity_id, parsed.activity_type, parsed.is_condition) == ("abc", "SYSTEM", False)


@pytest.mark.parametrize(
    ("severity", "priority"),
    [("CRITICAL", "P1"), ("MAJOR", "P2"), ("MODERATE", "P3"), ("MINOR", "P4"), ("NONE", "P4"), ("minor", "P4"),
     ("", "P3"), ("SEVERE", "P3")],
)  # fmt: skip
def test_priority_for_severity(severity, priority):
    assert priority_for(severity) == priority
