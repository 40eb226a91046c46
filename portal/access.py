"""Who may reach a portal view, declared on the view and enforced by :class:`portal.middleware.PortalMiddleware`.

Every view in the ``portal`` URL namespace is an organization page unless it says otherwise with :func:`access`:

- ``PUBLIC``: anyone (landing, sign-in, password reset, magic links, invitations, sign-out);
- ``ASSET``: anyone, and the current organization is not even resolved (logos);
- ``MFA_VERIFY``: signed in, while the second factor is still to be entered;
- ``MFA_ENROL``: signed in, second factor satisfied or still to be set up (the two-factor settings);
- ``ACCOUNT``: signed in with the second factor satisfied; works while the current organization is suspended
  (switching organization);
- ``ORG`` (the default): signed in, second factor satisfied, and the current organization exists and is active.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.http import Http404, HttpRequest

from tenancy.models import Organization, User

PUBLIC = "public"
ASSET = "asset"
MFA_VERIFY = "mfa_verify"
MFA_ENROL = "mfa_enrol"
ACCOUNT = "account"
ORG = "org"
LEVELS = frozenset({PUBLIC, ASSET, MFA_VERIFY, MFA_ENROL, ACCOUNT, ORG})

View = TypeVar("View", bound=Callable[..., Any])


class PortalRequest(HttpRequest):
    """A request as :class:`portal.middleware.PortalMiddleware` leaves it (defaults outside the portal)."""

    organization: Organization | None
    organizations: Sequence[Organization]
    membership_role: str | None  # None for a partner admin who is not a member
    is_partner_admin: bool
    can_manage: bool  # owners, admins and partner admins
    is_owner: bool  # owners and partner admins
    actor_role: str | None  # the role services check; None is owner-level (a partner admin)
    mfa_step: str | None  # "verify" or "enrol" while the second factor is owed
    user_has_mfa: bool | None  # None when not looked up


class MemberRequest(PortalRequest):
    """The request of an organization page (``ORG`` level): signed in, second factor settled, organization
    present and active."""

    user: User
    organization: Organization


class AccountRequest(PortalRequest):
    """The request of a signed-in page that does not need an organization."""

    user: User


def access(level: str) -> Callable[[View], View]:
    if level not in LEVELS:
        raise ValueError(f"unknown portal access level {level!r}")

    def decorate(view: View) -> View:
        view.portal_access = level  # type: ignore[attr-defined]
        return view

    return decorate


def view_access(view: Callable[..., Any]) -> str:
    return getattr(view, "portal_access", ORG)


def can_manage(request: HttpRequest) -> bool:
    """Owners and admins of the current organization, and partner admins over it."""
    return bool(getattr(request, "can_manage", False))


def is_owner(request: HttpRequest) -> bool:
    """Owners of the current organization, and partner admins over it."""
    return bool(getattr(request, "is_owner", False))


def require_manager(request: HttpRequest) -> None:
    # A page the caller's role cannot use is reported as absent, like another organization's object.
    if not can_manage(request):
        raise Http404("Only owners and admins can manage this.")


def require_owner(request: HttpRequest) -> None:
    if not is_owner(request):
        raise Http404("Only owners can see this.")
