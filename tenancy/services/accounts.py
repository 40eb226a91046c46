from __future__ import annotations

from django.db import transaction

from tenancy.audit import audit_record_for_user
from tenancy.errors import ServiceValidationError
from tenancy.models import User


def user_profile_update(*, user: User, full_name: str, phone: str = "") -> User:
    """A person edits their own name and phone."""
    errors: dict[str, list[str]] = {}
    if len(full_name.strip()) > 150:
        errors["full_name"] = ["At most 150 characters."]
    if len(phone.strip()) > 32:
        errors["phone"] = ["At most 32 characters."]
    if errors:
        raise ServiceValidationError(errors)
    User.objects.filter(pk=user.pk).update(full_name=full_name.strip(), phone=phone.strip())
    user.full_name, user.phone = full_name.strip(), phone.strip()
    return user


def user_password_set(*, user: User, password: str, reason: str, ip: str | None = None) -> User:
    """Store a new (already validated) password and audit it: ``reason`` is ``changed`` or ``reset``."""
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_record_for_user(action=f"auth.password_{reason}", user=user, ip=ip)
    return user
