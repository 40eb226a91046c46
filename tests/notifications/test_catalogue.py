"""The table of role defaults and the event type catalogue, as plain values."""

from __future__ import annotations

import pytest

from notifications.catalogue import (
    CATEGORY_LABELS,
    CONTACTS,
    EMAIL,
    EVENT_TYPES,
    IN_APP,
    ROLE_DEFAULTS,
    SMS,
    STAFF,
    choosable,
    default_channels,
    grouped,
    with_required,
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


def test_every_event_type_has_a_known_category_and_the_choosable_ones_appear_once_grouped():
    assert {event.category for event in EVENT_TYPES.values()} <= set(CATEGORY_LABELS)
    names = [event.name for _, events in grouped() for event in events]
    assert sorted(names) == sorted(name for name, event in EVENT_TYPES.items() if event.choosable)
    assert len(names) == 17 and len(EVENT_TYPES) == 25
    assert [label for label, _ in grouped()] == ["Your account", "Billing", "Security", "Support tickets",
                                                 "Messaging", "Service notices"]  # fmt: skip


def test_what_goes_to_addresses_or_staff_is_always_emailed_and_offered_to_nobody():
    addressed = {name for name, event in EVENT_TYPES.items() if event.audience in (CONTACTS, STAFF)}
    assert addressed == {
        "account.invitation", "invoice.reminder", "contract.renewal", "ticket.received", "ticket.merged",
        "ticket.sender_unknown", "ticket.staff_alert", "sales.qualification_assigned",
    }  # fmt: skip
    assert all(EVENT_TYPES[name].required == {EMAIL} and not EVENT_TYPES[name].choosable for name in addressed)
    assert {event.name for event in choosable()} == set(EVENT_TYPES) - addressed


@pytest.mark.parametrize("role", [*ROLE_DEFAULTS, None])
def test_required_channels_are_on_by_default_whatever_the_role(role):
    assert EMAIL in default_channels(role, "account.welcome")
    assert with_required("account.welcome", frozenset()) == {EMAIL}
    assert with_required("invoice.issued", frozenset({SMS})) == {SMS}
