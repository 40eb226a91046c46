"""Forms of the webhook settings pages. They check shape (which boxes are ticked, lengths); ``events.webhooks`` checks
the rules (where an address may point, which event types exist) and its refusals land on these fields."""

from __future__ import annotations

from typing import Any

from django import forms

from events import catalogue
from events.models import WebhookState

ALL_EVENTS = "*"

# The catalogue's event types are "<area>.<what happened>"; the form groups its checkboxes by area.
AREA_LABELS = {
    "organization": "Organization",
    "user": "People",
    "qualification": "Qualification",
    "quote": "Quotes",
    "subscription": "Subscriptions",
    "invoice": "Invoices",
    "payment": "Payments",
    "ticket": "Support tickets",
    "campaign": "SMS campaigns",
    "contact": "SMS contacts",
}


def event_type_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """The catalogue as ``[(area label, [(event type, description), ...]), ...]`` in the catalogue's order."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, (description, _example) in catalogue.EVENT_TYPES.items():
        area = name.split(".", 1)[0]
        groups.setdefault(AREA_LABELS.get(area, area.replace("_", " ").capitalize()), []).append((name, description))
    return list(groups.items())


def event_types_summary(event_types: list[str], shown: int = 3) -> str:
    """A short line for the list page: "All events", or the first few types and how many more."""
    if ALL_EVENTS in event_types:
        return "All events"
    head = ", ".join(event_types[:shown])
    more = len(event_types) - shown
    return f"{head} and {more} more" if more > 0 else head


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=500,
        help_text="An https:// address on the internet that answers a POST with any 2xx within 10 seconds. Keel does "
        "not post to private or loopback addresses and does not follow redirects.",
        widget=forms.URLInput(attrs={"autocomplete": "off", "placeholder": "https://example.com/keel/webhooks"}),
    )
    description = forms.CharField(
        label="Description", max_length=200, required=False, help_text="For you: what receives these events."
    )
    all_events = forms.BooleanField(
        label="All events, including event types added later", required=False, initial=False
    )
    event_types = forms.MultipleChoiceField(
        label="Event types",
        required=False,
        choices=[(group, [(name, name) for name, _ in events]) for group, events in event_type_groups()],
        widget=forms.CheckboxSelectMultiple,
    )
    active = forms.BooleanField(
        label="Active: send events to this endpoint",
        required=False,
        initial=True,
        help_text="Switching a disabled endpoint back on clears its count of failures.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("all_events"):
            cleaned["chosen_event_types"] = [ALL_EVENTS]
        elif cleaned.get("event_types"):
            cleaned["chosen_event_types"] = list(cleaned["event_types"])
        elif "event_types" not in self.errors:
            self.add_error("event_types", "Choose at least one event type, or all events.")
        return cleaned

    def event_type_groups(self) -> list[tuple[str, list[tuple[forms.boundfield.BoundWidget, str]]]]:
        """The checkboxes grouped by area, each with its description (for the template)."""
        boxes = {str(widget.data["value"]): widget for widget in self["event_types"].subwidgets}
        return [
            (group, [(boxes[name], description) for name, description in events if name in boxes])
            for group, events in event_type_groups()
        ]

    @classmethod
    def initial_for(cls, *, url: str, description: str, event_types: list[str], active: bool) -> dict[str, Any]:
        """The form's initial values for an existing endpoint."""
        every = ALL_EVENTS in event_types
        return {
            "url": url,
            "description": description,
            "all_events": every,
            "event_types": [] if every else list(event_types),
            "active": active,
        }


class DeliveryFilterForm(forms.Form):
    state = forms.ChoiceField(label="Show", required=False, choices=[("", "all deliveries"), *WebhookState.choices])

    def chosen_state(self) -> str:
        """The state asked for, or "" for all (an unknown state shows all, like an empty filter)."""
        return str(self.cleaned_data.get("state") or "") if self.is_valid() else ""
