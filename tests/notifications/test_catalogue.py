"""The table of role defaults and the event type catalogue, as plain values."""

from __future__ import annotations

import pytest

from notifications.catalogue import (
    CATEGORY_LABELS,
    EMAIL,
    EVENT_TYPES,
    IN_APP,
    ROLE_DEFAULTS,
    SMS,
    default_channels,
    grouped,
)


@pytest.mark.parametrize(
    ("role", "event_type", "channels"),
    [
        ("OWNER", "invoice.overdue", {EMAIL, IN_APP}),
        ("ADMIN", "security.mfa_disabled", {EMAIL, IN_APP}),
        ("OWNER", "ticket.replied", {IN_APP}),
        ("MANAGER", "payment.failed", {IN_APP}),
        ("MANAGER", "ticket.sla_breached", {EMAIL, IN_APP}),
        ("MEMBER", "ticket.assigned", {IN_APP}),
        ("MEMBER", "invoice.issued", set()),
        ("MEMBER", "security.api_key_created", set()),
        ("MEMBER", "platform.incident", {IN_APP}),
        (None, "invoice.overdue", {EMAIL, IN_APP}),  # a partner's admin: as an owner
    ],
)
def test_role_defaults(role, event_type, channels):
    assert default_channels(role, event_type) == channels


def test_sms_is_never_on_by_default_and_every_role_covers_every_category():
    for table in ROLE_DEFAULTS.values():
        assert set(table) == set(CATEGORY_LABELS)
        assert all(SMS not in channels for channels in table.values())


def test_every_event_type_has_a_known_category_and_appears_once_grouped():
    assert {event.category for event in EVENT_TYPES.values()} <= set(CATEGORY_LABELS)
    names = [event.name for _, events in grouped() for event in events]
    assert sorted(names) == sorted(EVENT_TYPES) and len(names) == 15
    assert [label for label, _ in grouped()] == ["Billing", "Security", "Support tickets", "Messaging",
                                                 "Service notices"]  # fmt: skip
