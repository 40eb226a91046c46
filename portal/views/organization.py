"""The organization's settings: team, security, branding, API keys, audit log and data export.

Every object id in a URL is looked up within the current organization, so another organization's object is 404.
Pages a role may not use are 404 as well (see :mod:`portal.access`).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal.access import MemberRequest, require_manager, require_owner
from portal.forms import (
    ApiKeyForm,
    BrandingForm,
    InviteForm,
    RoleForm,
    SecurityForm,
    add_service_error,
    service_error_messages,
    service_error_status,
)
from tenancy.api_usage import organization_limits
from tenancy.audit import client_ip
from tenancy.errors import ConflictError
from tenancy.models import ApiKey, AuditEvent, Invitation, Membership, Organization, Role
from tenancy.services import (
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    branding_update,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    organization_export,
    organization_update,
)
from tenancy.services.mfa import has_mfa

AUDIT_PAGE_SIZE = 50
SERVICE_ERRORS = (ValidationError, ConflictError)


def _org(request: MemberRequest) -> Organization:
    return request.organization


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    response["Cache-Control"] += ", no-store"
    return response


# -- team ---------------------------------------------------------------------------------------------------------


def _render_team(
    request: MemberRequest, *, invite_form: InviteForm | None = None, errors: list[str] | None = None, status: int = 200
) -> HttpResponse:
    org = _org(request)
    context = {
        # Query 1: members with their user; query 2: open invitations with who sent them.
        "memberships": list(Membership.objects.for_org(org).select_related("user").order_by("user__email")),
        "invitations": list(
            Invitation.objects.for_org(org)
            .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())
            .select_related("invited_by")
            .order_by("email")
        ),
        "invite_form": invite_form or InviteForm(),
        "role_choices": Role.choices,
        "errors": errors or [],
    }
    return render(request, "portal/settings/team.html", context, status=status)


@require_safe
def team(request: MemberRequest) -> HttpResponse:
    return _render_team(request)


@require_POST
def team_invite(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation_create(
                organization=_org(request),
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                actor_role=request.actor_role,
                ip=client_ip(request),
            )
        except SERVICE_ERRORS as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return HttpResponseRedirect(reverse("portal:settings_team"))
    return _render_team(request, invite_form=form, status=400)


@require_POST
def member_role(request: MemberRequest, membership_id: uuid.UUID) -> HttpResponse:
    require_manager(request)
    membership = get_object_or_404(Membership.objects.for_org(_org(request)).select_related("user"), pk=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _render_team(request, errors=["Role: choose one of Owner, Admin, Manager, Member."], status=400)
    try:
        membership_change_role(
            membership=membership,
            role=form.cleaned_data["role"],
            actor=request.user,
            actor_role=request.actor_role,
            ip=client_ip(request),
        )
    except SERVICE_ERRORS as exc:
        return _render_team(request, errors=service_error_messages(exc), status=service_error_status(exc))
    messages.success(request, f"{membership.user.email} is now {Role(form.cleaned_data['role']).label}.")
    return HttpResponseRedirect(reverse("portal:settings_team"))


@require_POST
def member_remove(request: MemberRequest, membership_id: uuid.UUID) -> HttpResponse:
    require_manager(request)
    membership = get_object_or_404(Membership.objects.for_org(_org(request)).select_related("user"), pk=membership_id)
    try:
        membership_remove(
            membership=membership,
            actor=request.user,
            actor_role=request.actor_role,
            ip=client_ip(request),
        )
    except SERVICE_ERRORS as exc:
        return _render_team(request, errors=service_error_messages(exc), status=service_error_status(exc))
    messages.success(request, f"{membership.user.email} was removed from {_org(request).display_name}.")
    if membership.user_id == request.user.pk:
        return HttpResponseRedirect(reverse("portal:dashboard"))
    return HttpResponseRedirect(reverse("portal:settings_team"))


@require_POST
def invitation_revoke_view(request: MemberRequest, invitation_id: uuid.UUID) -> HttpResponse:
    require_manager(request)
    invitation = get_object_or_404(Invitation.objects.for_org(_org(request)), pk=invitation_id)
    invitation_revoke(invitation=invitation, actor=request.user, ip=client_ip(request))
    messages.success(request, f"The invitation to {invitation.email} is revoked.")
    return HttpResponseRedirect(reverse("portal:settings_team"))


# -- security -----------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def security(request: MemberRequest) -> HttpResponse:
    require_owner(request)
    org = _org(request)
    form = SecurityForm(request.POST if request.method == "POST" else None, initial={"require_mfa": org.require_mfa})
    if request.method == "POST":
        if form.is_valid():
            require_mfa = form.cleaned_data["require_mfa"]
            if require_mfa and not org.require_mfa and not has_mfa(request.user):
                form.add_error("require_mfa", "Set up two-factor sign-in for yourself first.")
            else:
                try:
                    organization_update(
                        organization=org,
                        actor=request.user,
                        ip=client_ip(request),
                        require_mfa=require_mfa,
                    )
                except SERVICE_ERRORS as exc:
                    add_service_error(form, exc)
                else:
                    messages.success(
                        request,
                        "Two-factor sign-in is now required."
                        if require_mfa
                        else "Two-factor sign-in is no longer required.",
                    )
                    return HttpResponseRedirect(reverse("portal:settings_security"))
        return render(request, "portal/settings/security.html", {"form": form}, status=400)
    return render(request, "portal/settings/security.html", {"form": form})


# -- branding -----------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def branding(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    org = _org(request)
    initial = {
        "display_name": org.brand_display_name,
        "primary_color": org.brand_primary_color,
        "accent_color": org.brand_accent_color,
        "support_email": org.brand_support_email,
    }
    form = BrandingForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        initial=initial,
    )
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                branding_update(
                    organization=org,
                    actor=request.user,
                    ip=client_ip(request),
                    display_name=data["display_name"],
                    primary_color=data["primary_color"],
                    accent_color=data["accent_color"],
                    support_email=data["support_email"],
                    logo=data["logo"],
                    remove_logo=data["remove_logo"],
                )
            except SERVICE_ERRORS as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, "Branding saved.")
                return HttpResponseRedirect(reverse("portal:settings_branding"))
        return render(request, "portal/settings/branding.html", {"form": form}, status=400)
    return render(request, "portal/settings/branding.html", {"form": form})


# -- API keys -----------------------------------------------------------------------------------------------------


def _render_api_keys(
    request: MemberRequest, *, form: ApiKeyForm | None = None, errors: list[str] | None = None, status: int = 200
) -> HttpResponse:
    org = _org(request)
    # One query: the organization's keys with their creator, and the rate-limit policies of the organization and of
    # its partner joined.
    api_keys = list(
        ApiKey.objects.for_org(org)
        .select_related("created_by", "organization__rate_policy", "organization__partner__rate_policy")
        .order_by("-created_at")
    )
    context = {
        "api_keys": api_keys,
        "form": form or ApiKeyForm(tz=org.timezone),
        "errors": errors or [],
        "now": timezone.now(),
        # The rate-limit policy governing the keys came with them (one more query when there is no key yet); what
        # they used of it is in the cache.
        "limits": organization_limits(api_keys[0].organization if api_keys and api_keys[0].organization else org),
    }
    return render(request, "portal/settings/api_keys.html", context, status=status)


@require_http_methods(["GET", "POST"])
def api_keys(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    if request.method == "GET":
        return _render_api_keys(request)
    org = _org(request)
    form = ApiKeyForm(request.POST, tz=org.timezone)
    if form.is_valid():
        try:
            key, raw = api_key_create(
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                organization=org,
                expires_at=form.cleaned_data["expires_at"],
                created_by=request.user,
                ip=client_ip(request),
            )
        except SERVICE_ERRORS as exc:
            add_service_error(form, exc)
        else:
            # The secret is in this response only: it is stored hashed and never shown again.
            return _no_store(
                render(request, "portal/settings/api_key_created.html", {"key": key, "raw": raw, "rotated": None})
            )
    return _render_api_keys(request, form=form, status=400)


@require_POST
def api_key_revoke_view(request: MemberRequest, key_id: uuid.UUID) -> HttpResponse:
    require_manager(request)
    key = get_object_or_404(ApiKey.objects.for_org(_org(request)), pk=key_id)
    api_key_revoke(api_key=key, actor=request.user, ip=client_ip(request))
    messages.success(request, f"The key “{key.name}” ({key.prefix}…) is revoked.")
    return HttpResponseRedirect(reverse("portal:settings_api_keys"))


@require_POST
def api_key_rotate_view(request: MemberRequest, key_id: uuid.UUID) -> HttpResponse:
    require_manager(request)
    key = get_object_or_404(ApiKey.objects.for_org(_org(request)), pk=key_id)
    if key.revoked_at is not None or key.is_expired(timezone.now()):
        return _render_api_keys(
            request, errors=[f"The key “{key.name}” is revoked or expired: create a new key instead."], status=409
        )
    new_key, raw = api_key_rotate(api_key=key, actor=request.user, ip=client_ip(request))
    return _no_store(
        render(request, "portal/settings/api_key_created.html", {"key": new_key, "raw": raw, "rotated": key})
    )


# -- audit log and export -----------------------------------------------------------------------------------------


@require_safe
def audit(request: MemberRequest) -> HttpResponse:
    require_owner(request)
    org = _org(request)
    events = AuditEvent.objects.for_org(org).order_by("-created_at", "-pk")
    # Query 1: the actions this organization's log contains, for the filter.
    actions = list(AuditEvent.objects.for_org(org).order_by("action").values_list("action", flat=True).distinct())
    action = request.GET.get("action", "")
    if action:
        events = events.filter(action=action)
    # Queries 2 and 3: the count and the page.
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "actions": actions, "action": action}
    if getattr(request, "htmx", False):
        return render(request, "portal/settings/_audit_results.html", context)
    return render(request, "portal/settings/audit.html", context)


@require_http_methods(["GET", "POST"])
def export(request: MemberRequest) -> HttpResponse:
    require_owner(request)
    org = _org(request)
    if request.method == "GET":
        return render(request, "portal/settings/export.html")
    data: dict[str, Any] = organization_export(
        organization=org,
        actor=request.user,
        ip=client_ip(request),
    )
    filename = f"keel-{org.slug}-{timezone.now():%Y%m%d-%H%M%S}.json"
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return _no_store(response)
