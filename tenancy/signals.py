"""Sign-in outcomes are audited (a lockout is also told to the person's organizations); changes to what decides API
access drop the cached access."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.api_cache import data_changed
from tenancy.audit import audit_record_for_user, client_ip
from tenancy.auth_cache import access_changed, users_changed
from tenancy.models import ApiKey, Membership, Organization, Partner, PartnerMembership, RatePolicy, User
from tenancy.security_alerts import person_alert


@receiver(user_logged_in, dispatch_uid="tenancy.audit_login")
def audit_login(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    method = getattr(request, "keel_login_method", "password") if request is not None else "password"
    audit_record_for_user(action="auth.signed_in", user=user, ip=client_ip(request), changes={"method": method})


@receiver(user_logged_out, dispatch_uid="tenancy.audit_logout")
def audit_logout(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        audit_record_for_user(action="auth.signed_out", user=user, ip=client_ip(request))


@receiver(user_login_failed, dispatch_uid="tenancy.audit_login_failed")
def audit_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    email = str(credentials.get("username") or credentials.get("email") or "")[:150]
    user = User.objects.filter(email__iexact=email).first() if email else None
    audit_record_for_user(
        action="auth.sign_in_failed", user=user, ip=client_ip(request), actor_label=email or "unknown"
    )


@receiver(user_locked_out, dispatch_uid="tenancy.alert_locked_out")
def alert_locked_out(sender: Any, request: Any = None, username: str | None = None, ip_address: str | None = None,
                     **kwargs: Any) -> None:  # fmt: skip
    """Repeated failed sign-ins locked an account out: audited, and told where the person belongs."""
    email = str(username or "")[:150]
    user = User.objects.filter(email__iexact=email).first() if email else None
    audit_record_for_user(action="auth.locked_out", user=user, ip=ip_address or client_ip(request),
                          actor_label=email or "unknown")  # fmt: skip
    if user is None:
        return
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    source = ip_address or "an unknown address"
    person_alert(
        user, "security.login_locked", title=f"Sign-in locked for {user.email}",
        message=f"{settings.AXES_FAILURE_LIMIT} failed sign-ins to {user.email} from {source} locked it for {minutes}"
        " minutes. If that was not them, someone may be guessing the password.",
        url="/settings/audit/",
    )  # fmt: skip


def _access_changed(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if not raw:  # loading fixtures changes nothing anyone has cached
        access_changed()


# Saving or deleting what decides access drops the cached keys and organizations (auth_cache); an authenticator
# device decides whether a person owes a second factor.
for _model in (ApiKey, Organization, Partner, RatePolicy, Membership, PartnerMembership, TOTPDevice):
    post_save.connect(_access_changed, sender=_model, dispatch_uid=f"tenancy.access_saved.{_model.__name__}")
    post_delete.connect(_access_changed, sender=_model, dispatch_uid=f"tenancy.access_deleted.{_model.__name__}")


def _user_changed(sender: Any, instance: User, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        users_changed([instance.pk])


# A person's cached row (tenancy.session_user) goes when their row is saved (a new password, last_login, a new
# email, deactivated) or deleted.
post_save.connect(_user_changed, sender=User, dispatch_uid="tenancy.user_saved")
post_delete.connect(_user_changed, sender=User, dispatch_uid="tenancy.user_deleted")


def _data_changed(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """Any row of an organization (or the organization itself) saved: its cached list answers go."""
    if raw:
        return
    organization_id = instance.pk if sender is Organization else getattr(instance, "organization_id", None)
    if organization_id is not None:
        data_changed(organization_id)


# Saves only: a delete receiver for every model would stop Django deleting any rows in bulk (it would load and
# signal each one). Deleted rows leave the reused answers within API_LIST_CACHE_SECONDS.
post_save.connect(_data_changed, dispatch_uid="tenancy.data_saved")
