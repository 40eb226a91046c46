"""Signing in and out: password, second factor, magic links and password reset.

Sign-in outcomes are audited by ``tenancy.signals``; failed passwords count towards the django-axes lockout
because every attempt goes through ``authenticate(request, ...)``.
"""

from __future__ import annotations

import logging
import math
from urllib.parse import urlencode

import axes.utils
import django_otp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_static.models import StaticDevice
from sesame.utils import get_query_string, get_user

from portal.access import MFA_VERIFY, PUBLIC, AccountRequest, access
from portal.forms import LoginForm, MagicLinkForm, PortalPasswordResetForm, VerifyForm
from portal.middleware import MFA_STEP_ENROL, MFA_STEP_VERIFY, mfa_step, resolve_organization
from tenancy.audit import audit_record_for_user, client_ip
from tenancy.emails import email_send
from tenancy.models import User
from tenancy.services.accounts import WELCOME_SCOPE
from tenancy.throttle import AttemptLimit

logger = logging.getLogger(__name__)

MAGIC_LINK_BACKEND = "django.contrib.auth.backends.ModelBackend"
# One magic link per address per minute: the form cannot be used to flood someone's inbox.
MAGIC_LINK_INTERVAL = 60
# Per client address, whatever the account: django-axes locks one account from one address, these stop one address
# from spraying passwords across many accounts, asking for links to many inboxes or guessing link tokens.
SIGN_IN_FAILURES = AttemptLimit("sign-in", limit=30, window=15 * 60)
MAGIC_LINK_REQUESTS = AttemptLimit("magic-link", limit=10, window=15 * 60)
LINK_FAILURES = AttemptLimit("sign-in-link", limit=20, window=15 * 60)


def too_many_attempts(request: HttpRequest, retry_after: int, *, what: str) -> HttpResponse:
    logger.warning("too many %s attempts from %s", what, client_ip(request))
    minutes = max(1, math.ceil(retry_after / 60))
    context = {"what": what, "minutes": minutes}
    response = render(request, "portal/auth/too_many_attempts.html", context, status=429)
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response


def safe_next(request: HttpRequest, default: str = "portal:dashboard") -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(default)


def after_sign_in(request: HttpRequest) -> HttpResponseRedirect:
    """Where a fresh session goes: the second factor if one is owed, else where the person was heading."""
    resolve_organization(request)
    step = mfa_step(request)
    next_url = safe_next(request)
    if step == MFA_STEP_VERIFY:
        return HttpResponseRedirect(f"{reverse('portal:login_verify')}?{urlencode({'next': next_url})}")
    if step == MFA_STEP_ENROL:
        messages.info(request, "Your organization requires two-factor sign-in. Set it up to continue.")
        return HttpResponseRedirect(reverse("portal:settings_two_factor"))
    return HttpResponseRedirect(next_url)


@access(PUBLIC)
@sensitive_post_parameters("password")
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET" and request.user.is_authenticated:
        return HttpResponseRedirect(safe_next(request))
    form = LoginForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        retry_after = SIGN_IN_FAILURES.blocked(request)
        if retry_after:
            return too_many_attempts(request, retry_after, what="sign-in")
        if form.is_valid():
            email = form.cleaned_data["email"]
            # The address goes in as both ``username`` and ``email``: django-axes reads the one named by
            # AXES_USERNAME_FORM_FIELD (the user model's USERNAME_FIELD, "email", by default) both when it counts a
            # failure and when it checks for a lockout, so either setting counts and locks the same address.
            user = authenticate(request, username=email, email=email, password=form.cleaned_data["password"])
            if user is not None:
                login(request, user)
                return after_sign_in(request)
            SIGN_IN_FAILURES.count(request)
            # The same words whether the address exists or not. A lockout replaces this page (AxesMiddleware).
            form.add_error(None, "The email address or password is incorrect.")
        status = 400
    return render(request, "portal/auth/login.html", {"form": form, "next": safe_next(request)}, status=status)


@access(MFA_VERIFY)
@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def login_verify(request: AccountRequest) -> HttpResponse:
    step = request.mfa_step
    if step == MFA_STEP_ENROL:
        return HttpResponseRedirect(reverse("portal:settings_two_factor"))
    if step != MFA_STEP_VERIFY:
        return HttpResponseRedirect(safe_next(request))
    form = VerifyForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            user = request.user
            # Tries the authenticator app and the backup codes; a backup code is deleted when it matches.
            device = django_otp.match_token(user, form.cleaned_data["code"])
            if device is not None:
                django_otp.login(request, device)
                if isinstance(device, StaticDevice):
                    left = device.token_set.count()
                    messages.warning(
                        request,
                        f"You used a backup code; {left} left. "
                        "Generate new ones in Settings → Two-factor sign-in if you are running low.",
                    )
                return HttpResponseRedirect(safe_next(request))
            audit_record_for_user(action="auth.mfa_failed", user=user, ip=client_ip(request))
            form.add_error("code", "That code is not valid. Check your app's time or use a backup code.")
        status = 400
    return render(request, "portal/auth/verify.html", {"form": form, "next": safe_next(request)}, status=status)


@access(PUBLIC)
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.success(request, "You have signed out.")
    return HttpResponseRedirect(reverse("portal:login"))


# -- magic links -------------------------------------------------------------------------------------------------


@access(PUBLIC)
@never_cache
@require_http_methods(["GET", "POST"])
def magic_link(request: HttpRequest) -> HttpResponse:
    form = MagicLinkForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        retry_after = MAGIC_LINK_REQUESTS.blocked(request)
        if retry_after:
            return too_many_attempts(request, retry_after, what="sign-in link")
        MAGIC_LINK_REQUESTS.count(request)
        if not form.is_valid():
            return render(request, "portal/auth/magic_link.html", {"form": form}, status=400)
        email = form.cleaned_data["email"]
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is not None and cache.add(f"portal:magic-link:{user.pk}", 1, MAGIC_LINK_INTERVAL):
            path = reverse("portal:magic_link_confirm") + get_query_string(user)
            email_send(
                to=user.email,
                template="magic_link",
                context={
                    "user_name": user.get_short_name(),
                    "path": path,
                    "valid_minutes": max(1, settings.SESAME_MAX_AGE // 60),
                },
            )
        # The same page whether or not the address has an account.
        return render(request, "portal/auth/magic_link_sent.html", {"email": email})
    return render(request, "portal/auth/magic_link.html", {"form": form})


def _invalid_link(request: HttpRequest) -> HttpResponse:
    response = render(request, "portal/auth/magic_link_invalid.html", status=410)
    add_never_cache_headers(response)
    return response


@access(PUBLIC)
@never_cache
@require_http_methods(["GET", "POST"])
def magic_link_confirm(request: HttpRequest) -> HttpResponse:
    """GET shows a button and changes nothing (mail scanners follow links); only the POST signs in."""
    return _confirm_link(request, user=get_user(request, update_last_login=False))


@access(PUBLIC)
@never_cache
@require_http_methods(["GET", "POST"])
def welcome_link_confirm(request: HttpRequest) -> HttpResponse:
    """The sign-in link of a welcome email: longer-lived, scoped so it is refused as an ordinary magic link."""
    user = get_user(request, scope=WELCOME_SCOPE, max_age=settings.WELCOME_LINK_MAX_AGE, update_last_login=False)
    return _confirm_link(request, user=user)


def _confirm_link(request: HttpRequest, *, user: User | None) -> HttpResponse:
    # Reads the token from the query string, which the confirm form posts back to.
    retry_after = LINK_FAILURES.blocked(request)
    if retry_after:
        return too_many_attempts(request, retry_after, what="sign-in link")
    if user is None:
        LINK_FAILURES.count(request)
        return _invalid_link(request)
    if request.method == "GET":
        return render(request, "portal/auth/magic_link_confirm.html", {"link_user": user})
    # Single use, also when two requests race: the token is bound to last_login, so exactly one request may move it.
    claimed = User.objects.filter(pk=user.pk, last_login=user.last_login).update(last_login=timezone.now())
    if claimed != 1:
        return _invalid_link(request)
    request.keel_login_method = "magic_link"  # type: ignore[attr-defined]
    login(request, user, backend=MAGIC_LINK_BACKEND)
    return after_sign_in(request)


# -- password reset (Django's views, our templates and email) -----------------------------------------------------


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "portal/auth/password_reset_form.html"
    form_class = PortalPasswordResetForm
    success_url = reverse_lazy("portal:password_reset_done")
    # Our form sends through tenancy.emails with templates/email/password_reset.*; these name the same templates.
    subject_template_name = "email/password_reset.subject.txt"
    email_template_name = "email/password_reset.txt"
    html_email_template_name = "email/password_reset.html"


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "portal/auth/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "portal/auth/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password_reset_complete")
    post_reset_login = False

    def form_valid(self, form: SetPasswordForm[User]) -> HttpResponse:
        response = super().form_valid(form)
        user = form.user
        audit_record_for_user(action="auth.password_reset", user=user, ip=client_ip(self.request))
        # A person who proved control of their mailbox is no longer locked out.
        axes.utils.reset(username=user.email)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "portal/auth/password_reset_complete.html"


password_reset = access(PUBLIC)(PasswordResetView.as_view())
password_reset_done = access(PUBLIC)(PasswordResetDoneView.as_view())
password_reset_confirm = access(PUBLIC)(PasswordResetConfirmView.as_view())
password_reset_complete = access(PUBLIC)(PasswordResetCompleteView.as_view())
