"""Telling an organization's people about changes that matter to its security: an API key created, two-factor
sign-in turned off, an account locked after repeated failed sign-ins, and where its invoices are emailed changed.

Each goes through ``notifications.services.notify`` to every member, each on the channels they chose for the event
type (``notifications.catalogue``: by default owners and admins in the portal and by email, managers in the portal,
members not at all). A change to a person (two-factor sign-in, a lockout) is told in every organization they belong
to. The message says who did what and where to undo it, so that someone who did not expect it can act.
"""

from __future__ import annotations

from typing import Any

from notifications.services import notify
from tenancy.models import Membership, Organization, User


def organization_alert(organization: Organization, event_type: str, *, title: str, message: str, url: str) -> None:
    notify(organization=organization, event_type=event_type, context={"title": title, "message": message, "url": url})


def person_alert(user: User, event_type: str, *, title: str, message: str, url: str) -> None:
    """The alert in each organization ``user`` belongs to."""
    organization_ids = Membership.objects.filter(user=user).values_list("organization_id", flat=True)
    for organization in Organization.objects.filter(pk__in=organization_ids).order_by("name"):
        organization_alert(organization, event_type, title=title, message=message, url=url)


def who(actor: Any) -> str:
    return (actor.get_full_name() or actor.email) if actor is not None else "Someone"
