"""Sign-in outcomes are audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from tenancy.audit import audit_record_for_user, client_ip
from tenancy.models import User


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
