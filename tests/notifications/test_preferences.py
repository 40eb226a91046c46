"""Preferences as a service: role defaults until a choice is saved, choices stored per organization, unknown event
types and channels refused by field, and only for people in the organization."""

from __future__ import annotations

import pytest

from notifications.catalogue import EMAIL, IN_APP, SMS
from notifications.models import NotificationPreference
from notifications.services.preferences import channels_for, preferences_table, preferences_update
from tenancy.errors import ServiceValidationError

pytestmark = pytest.mark.django_db


def test_defaults_until_chosen_then_the_choice_per_organization(acme, globex, alice, bob, pat):
    assert channels_for(organization=acme, users=[alice, bob, pat], event_type="invoice.issued") == {
        alice.pk: {EMAIL, IN_APP}, bob.pk: set(), pat.pk: {EMAIL, IN_APP},
    }  # fmt: skip
    preferences_update(organization=acme, user=bob, choices={"invoice.issued": {IN_APP}})
    assert channels_for(organization=acme, users=[bob], event_type="invoice.issued") == {bob.pk: {IN_APP}}
    table = preferences_table(organization=acme, user=bob)
    assert (table["invoice.issued"], table["ticket.created"]) == (frozenset({IN_APP}), frozenset({IN_APP}))
    # Saving again changes the row in place.
    preferences_update(organization=acme, user=bob, choices={"invoice.issued": {EMAIL}})
    assert NotificationPreference.objects.get(user=bob).channels == {EMAIL}


@pytest.mark.parametrize(
    ("choices", "field"),
    [({"invoice.lost": {IN_APP}}, "event_type"), ({"invoice.issued": {"pager"}}, "channels"),
     ({"invoice.issued": {SMS}}, SMS)],
)  # fmt: skip
def test_bad_choices_are_refused_by_field(acme, alice, choices, field):
    with pytest.raises(ServiceValidationError) as refused:
        preferences_update(organization=acme, user=alice, choices=choices)
    assert field in refused.value.message_dict
    assert not NotificationPreference.objects.exists()


def test_only_for_people_in_the_organization(acme, carol):
    with pytest.raises(ServiceValidationError) as refused:
        preferences_update(organization=acme, user=carol, choices={"invoice.issued": {IN_APP}})
    assert refused.value.message_dict == {"user": ["This person is not in the organization."]}
