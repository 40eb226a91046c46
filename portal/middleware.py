"""Resolves the current organization and guards every portal page (see :mod:`portal.access`).

For each request to a view in the ``portal`` URL namespace (and namespaces nested in it) by a signed-in person:

1. ``request.organizations``: the organizations they may see (members and partner admins), and whether they have
   a second factor: two queries, or none while :func:`portal_access` has them in the cache (until access changes);
   ``request.organization``: the one chosen in the session (``session["organization_id"]``), else the first;
   ``request.membership_role``: their role there (``None`` for a partner admin who is not a member);
   ``request.is_partner_admin``, ``request.can_manage``, ``request.is_owner``, ``request.actor_role``
   (the role to hand to services: ``None`` means owner-level, which is what a partner admin is).
2. The second factor: a person with a confirmed device must enter a code (``portal:login_verify``); a person
   without one whose organizations require it must set one up (``portal:settings_two_factor``). No other portal
   page answers until then.
3. The organization: none → an explanation page; suspended → 403 with the reason and a way to switch.

Dates and times render in the current organization's time zone.
"""

from __future__ import annotations

import contextlib
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.db.models import Exists, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from portal import access
from portal.access import PortalRequest
from tenancy.auth_cache import AccessRead, access_read, portal_entry
from tenancy.models import MANAGING_ROLES, Membership, Organization, OrgStatus, PartnerMembership, Role, User
from tenancy.services.mfa import has_mfa
from tenancy.session_user import session_access

SESSION_ORG_KEY = "organization_id"
PORTAL_NAMESPACE = "portal"

MFA_STEP_VERIFY = "verify"
MFA_STEP_ENROL = "enrol"


def _set_defaults(request: PortalRequest) -> None:
    request.organization = None
    request.organizations = []
    request.membership_role = None
    request.is_partner_admin = False
    request.can_manage = False
    request.is_owner = False
    request.actor_role = None
    request.mfa_step = None
    request.user_has_mfa = None


@dataclass(frozen=True)
class PortalAccess:
    """What every portal page needs to know about the signed-in person before its view runs."""

    organizations: list[Any]  # by name, each with ``my_role`` and ``is_partner_admin``
    has_mfa: bool  # a confirmed authenticator app


def portal_access(user: User, read: AccessRead | None = None) -> PortalAccess:
    """The organizations ``user`` may see and whether they have a second factor: cached under the access generation
    (``tenancy.auth_cache``), which any change to an organization, a membership, a partner admin or an
    authenticator device replaces; two queries otherwise. ``read``: the request's cache read that already asked
    for this person's entry (:func:`tenancy.session_user.session_access`), if there was one."""
    name = portal_entry(user.pk)
    access = read if read is not None else access_read([name], [])
    cached = access.entries.get(name)
    if isinstance(cached, PortalAccess):
        return cached
    role = Membership.objects.filter(user=user, organization=OuterRef("pk")).values("role")[:1]
    partner_admin = PartnerMembership.objects.filter(user=user, partner=OuterRef("partner"))
    organizations = list(
        Organization.objects.visible_to(user)
        .defer("brand_logo")
        .select_related("partner")
        .annotate(my_role=Subquery(role), is_partner_admin=Exists(partner_admin))
        .order_by("name", "pk")
    )
    found = PortalAccess(organizations=organizations, has_mfa=has_mfa(user))
    access.store(name, found)
    return found


def resolve_organization(request: HttpRequest) -> Organization | None:
    """Fill in the organization attributes of ``request`` for the signed-in user (one query, or none when cached)."""
    portal_request = cast(PortalRequest, request)
    user = cast(User, request.user)
    known = portal_access(user, session_access(request, user.pk))
    organizations = list(known.organizations)
    portal_request.organizations = organizations
    portal_request.user_has_mfa = known.has_mfa
    if not organizations:
        return None
    wanted = str(request.session.get(SESSION_ORG_KEY, ""))
    current = next((org for org in organizations if str(org.pk) == wanted), organizations[0])
    if wanted != str(current.pk):
        request.session[SESSION_ORG_KEY] = str(current.pk)
    role_value: str | None = current.my_role
    is_partner_admin = bool(current.is_partner_admin)
    portal_request.organization = current
    portal_request.membership_role = role_value
    portal_request.is_partner_admin = is_partner_admin
    portal_request.can_manage = is_partner_admin or role_value in MANAGING_ROLES
    portal_request.is_owner = is_partner_admin or role_value == Role.OWNER
    portal_request.actor_role = None if is_partner_admin else role_value
    return current


def mfa_step(request: HttpRequest) -> str | None:
    """What the signed-in user still owes before using the portal: ``"verify"``, ``"enrol"`` or nothing."""
    portal_request = cast(PortalRequest, request)
    user: Any = request.user
    if not user.is_authenticated:
        return None
    is_verified = getattr(user, "is_verified", None)
    if is_verified is not None and is_verified():
        portal_request.user_has_mfa = True
        return None
    if portal_request.user_has_mfa is None:  # not known from the cached portal access
        portal_request.user_has_mfa = has_mfa(user)
    if portal_request.user_has_mfa:
        return MFA_STEP_VERIFY
    organizations = getattr(request, "organizations", None)
    if organizations is None:
        organizations = list(Organization.objects.visible_to(user).only("require_mfa"))
    if any(org.require_mfa for org in organizations):
        return MFA_STEP_ENROL
    return None


def _redirect_with_next(url_name: str, request: HttpRequest) -> HttpResponseRedirect:
    url = reverse(url_name)
    if request.method == "GET":
        url = f"{url}?{urlencode({'next': request.get_full_path()})}"
    return HttpResponseRedirect(url)


class PortalMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        _set_defaults(cast(PortalRequest, request))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(
        self, http_request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        match = http_request.resolver_match
        if match is None or not match.namespaces or match.namespaces[0] != PORTAL_NAMESPACE:
            return None
        level = access.view_access(view_func)
        if level == access.ASSET:
            return None
        request = cast(PortalRequest, http_request)
        if request.user.is_authenticated:
            org = resolve_organization(request)
            if org is not None:
                with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
                    timezone.activate(zoneinfo.ZoneInfo(org.timezone))
            request.mfa_step = mfa_step(request)
        if level == access.PUBLIC:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())

        if request.mfa_step == MFA_STEP_VERIFY and level != access.MFA_VERIFY:
            return _redirect_with_next("portal:login_verify", request)
        if request.mfa_step == MFA_STEP_ENROL and level != access.MFA_ENROL:
            return HttpResponseRedirect(reverse("portal:settings_two_factor"))
        if level in (access.MFA_VERIFY, access.MFA_ENROL, access.ACCOUNT):
            return None

        current = request.organization
        if current is None:
            return render(request, "portal/no_organization.html", status=403)
        if current.status == OrgStatus.SUSPENDED:
            others = [org for org in request.organizations if org.pk != current.pk]
            context = {"suspended_org": current, "other_orgs": others}
            return render(request, "portal/suspended.html", context, status=403)
        return None
