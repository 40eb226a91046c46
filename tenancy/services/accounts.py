from __future__ import annotations

from django.db import transaction
from django.urls import reverse
from sesame.utils import get_query_string

from tenancy.audit import audit_record_for_user
from tenancy.errors import ServiceValidationError
from tenancy.models import User

# Sign-in links in welcome emails live longer than typed-in magic links (settings.WELCOME_LINK_MAX_AGE); they are
# scoped so that one cannot be passed off as the other.
WELCOME_SCOPE = "welcome"


def welcome_link(user: User) -> str:
    """The path of a single-use sign-in link for a new customer's welcome email."""
    return reverse("portal:welcome_link_confirm") + get_query_string(user, scope=WELCOME_SCOPE)


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
