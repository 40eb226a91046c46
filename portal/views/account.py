"""The person's own settings: profile, password, two-factor sign-in; and switching organization."""

from __future__ import annotations

from base64 import b32encode

import django_otp
import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.access import ACCOUNT, MFA_ENROL, AccountRequest, MemberRequest, access
from portal.forms import PasswordConfirmForm, ProfileForm, TwoFactorConfirmForm, add_service_error
from portal.middleware import MFA_STEP_ENROL, SESSION_ORG_KEY
from portal.views.auth import safe_next
from tenancy.audit import client_ip
from tenancy.models import Organization
from tenancy.services import (
    mfa_backup_codes_regenerate,
    mfa_disable,
    mfa_enrol_confirm,
    mfa_enrol_start,
    user_password_set,
    user_profile_update,
)
from tenancy.services.mfa import has_mfa

PENDING_DEVICE_KEY = "portal_mfa_pending_device"


@access(ACCOUNT)
@require_POST
def switch_org(request: AccountRequest, slug: str) -> HttpResponse:
    organization = get_object_or_404(Organization.objects.visible_to(request.user), slug=slug)
    request.session[SESSION_ORG_KEY] = str(organization.pk)
    messages.info(request, f"You are now working in {organization.display_name}.")
    return HttpResponseRedirect(safe_next(request))


@require_http_methods(["GET", "POST"])
def profile(request: MemberRequest) -> HttpResponse:
    user = request.user
    form = ProfileForm(request.POST if request.method == "POST" else None, instance=user)
    if request.method == "POST":
        if form.is_valid():
            user_profile_update(user=user, full_name=form.cleaned_data["full_name"], phone=form.cleaned_data["phone"])
            messages.success(request, "Your profile is saved.")
            return HttpResponseRedirect(reverse("portal:settings_profile"))
        return render(request, "portal/settings/profile.html", {"form": form}, status=400)
    return render(request, "portal/settings/profile.html", {"form": form})


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@require_http_methods(["GET", "POST"])
def password(request: MemberRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            user = user_password_set(
                user=request.user, password=form.cleaned_data["new_password1"], reason="changed", ip=client_ip(request)
            )
            update_session_auth_hash(request, user)
            messages.success(request, "Your password is changed.")
            return HttpResponseRedirect(reverse("portal:settings_password"))
        return render(request, "portal/settings/password.html", {"form": form}, status=400)
    return render(request, "portal/settings/password.html", {"form": form})


# -- two-factor ---------------------------------------------------------------------------------------------------


def _requiring_orgs(request: AccountRequest) -> list[Organization]:
    return [org for org in request.organizations if org.require_mfa]


def _no_store(response: HttpResponse) -> HttpResponse:
    # Pages showing secrets (QR codes, backup codes) must not be kept by the browser or a proxy.
    add_never_cache_headers(response)
    response["Cache-Control"] += ", no-store"
    return response


@access(MFA_ENROL)
@require_safe
def two_factor(request: AccountRequest) -> HttpResponse:
    user = request.user
    enabled = has_mfa(user)
    backup_left = StaticToken.objects.filter(device__user=user).count() if enabled else 0
    context = {
        "enabled": enabled,
        "backup_left": backup_left,
        "requiring_orgs": _requiring_orgs(request),
        "must_enrol": request.mfa_step == MFA_STEP_ENROL,
        "disable_form": PasswordConfirmForm(user=user),
    }
    return render(request, "portal/settings/two_factor.html", context)


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


@access(MFA_ENROL)
@sensitive_post_parameters("token")
@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_enrol(request: AccountRequest) -> HttpResponse:
    """POST without a code starts (or restarts) set-up; GET shows the QR code; POST with a code confirms."""
    user = request.user
    if request.method == "POST" and "token" not in request.POST:
        device = mfa_enrol_start(user=user)
        request.session[PENDING_DEVICE_KEY] = device.pk
        return HttpResponseRedirect(reverse("portal:settings_two_factor_enrol"))

    device_id = request.session.get(PENDING_DEVICE_KEY)
    device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first() if device_id else None
    if device is None:
        messages.info(request, "Start the set-up of two-factor sign-in here.")
        return HttpResponseRedirect(reverse("portal:settings_two_factor"))

    form = TwoFactorConfirmForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                codes = mfa_enrol_confirm(
                    user=user, device_id=device.pk, token=form.cleaned_data["token"], ip=client_ip(request)
                )
            except ValidationError as exc:
                add_service_error(form, exc)
            else:
                request.session.pop(PENDING_DEVICE_KEY, None)
                # The person just proved they hold the device: this session counts as verified.
                django_otp.login(request, TOTPDevice.objects.get(pk=device.pk))
                messages.success(request, "Two-factor sign-in is on.")
                return _no_store(render(request, "portal/settings/backup_codes.html", {"codes": codes, "new": True}))
        status = 400
    context = {
        "form": form,
        "qr_svg": mark_safe(_qr_svg(device.config_url)),  # noqa: S308 - SVG generated by qrcode from our own data
        "secret": b32encode(device.bin_key).decode("ascii"),
    }
    return _no_store(render(request, "portal/settings/two_factor_enrol.html", context, status=status))


@access(MFA_ENROL)
@require_POST
def two_factor_backup_codes(request: AccountRequest) -> HttpResponse:
    user = request.user
    if not has_mfa(user):
        messages.error(request, "Set up two-factor sign-in first.")
        return HttpResponseRedirect(reverse("portal:settings_two_factor"))
    codes = mfa_backup_codes_regenerate(user=user, ip=client_ip(request))
    return _no_store(render(request, "portal/settings/backup_codes.html", {"codes": codes, "new": False}))


@access(MFA_ENROL)
@sensitive_post_parameters("password")
@require_POST
def two_factor_disable(request: AccountRequest) -> HttpResponse:
    user = request.user
    if not has_mfa(user):
        return HttpResponseRedirect(reverse("portal:settings_two_factor"))
    form = PasswordConfirmForm(request.POST, user=user)
    requiring = _requiring_orgs(request)
    if form.is_valid() and requiring:
        names = ", ".join(org.display_name for org in requiring)
        form.add_error(None, f"Two-factor sign-in is required by {names}; it cannot be turned off.")
    if not form.is_valid():
        context = {
            "enabled": True,
            "backup_left": StaticToken.objects.filter(device__user=user).count(),
            "requiring_orgs": requiring,
            "must_enrol": False,
            "disable_form": form,
        }
        return render(request, "portal/settings/two_factor.html", context, status=400)
    mfa_disable(user=user, actor=user, ip=client_ip(request))
    messages.success(request, "Two-factor sign-in is off.")
    return HttpResponseRedirect(reverse("portal:settings_two_factor"))
