"""Accepting an invitation from its emailed link."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from portal.access import PUBLIC, PortalRequest, access
from portal.forms import InviteAcceptForm, add_service_error, service_error_messages
from portal.middleware import MFA_STEP_VERIFY, SESSION_ORG_KEY
from portal.views.auth import after_sign_in
from tenancy.audit import client_ip
from tenancy.errors import ConflictError
from tenancy.models import Role, User
from tenancy.services import invitation_accept
from tenancy.services.members import invitation_for_token

SIGN_IN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _joined(request: HttpRequest, organization_id: Any, organization_name: str) -> HttpResponse:
    request.session[SESSION_ORG_KEY] = str(organization_id)
    messages.success(request, f"Welcome to {organization_name}.")
    return after_sign_in(request)


@access(PUBLIC)
@sensitive_post_parameters("password", "password_confirm")
@never_cache
@require_http_methods(["GET", "POST"])
def invite_accept(request: PortalRequest, token: str) -> HttpResponse:
    invitation = invitation_for_token(token)
    if invitation is None:
        return render(request, "portal/invite/invalid.html", status=410)
    org = invitation.organization
    user: Any = request.user
    context: dict[str, Any] = {
        "invitation": invitation,
        "organization_name": org.display_name,
        "role_label": Role(invitation.role).label,
        "errors": [],
    }

    if user.is_authenticated:
        if request.mfa_step == MFA_STEP_VERIFY:
            return HttpResponseRedirect(f"{reverse('portal:login_verify')}?{urlencode({'next': request.path})}")
        context["matches"] = user.email.lower() == invitation.email.lower()
        if request.method == "POST" and context["matches"]:
            try:
                invitation_accept(token=token, user=user, ip=client_ip(request))
            except (ValidationError, ConflictError) as exc:
                context["errors"] = service_error_messages(exc)
                return render(request, "portal/invite/accept.html", context, status=400)
            return _joined(request, org.pk, org.display_name)
        status = 400 if request.method == "POST" else 200
        return render(request, "portal/invite/accept.html", context, status=status)

    if User.objects.filter(email__iexact=invitation.email).exists():
        # The invitee has an account: they sign in, come back here and accept as themselves.
        context["login_url"] = f"{reverse('portal:login')}?{urlencode({'next': request.path})}"
        return render(request, "portal/invite/accept.html", context)

    form = InviteAcceptForm(request.POST if request.method == "POST" else None)
    context["form"] = form
    if request.method == "POST":
        if form.is_valid():
            try:
                membership = invitation_accept(
                    token=token,
                    password=form.cleaned_data["password"],
                    full_name=form.cleaned_data["full_name"],
                    ip=client_ip(request),
                )
            except (ValidationError, ConflictError) as exc:
                add_service_error(form, exc)
            else:
                login(request, membership.user, backend=SIGN_IN_BACKEND)
                return _joined(request, org.pk, org.display_name)
        return render(request, "portal/invite/accept.html", context, status=400)
    return render(request, "portal/invite/accept.html", context)
