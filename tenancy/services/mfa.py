from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.audit import audit_record_for_user
from tenancy.errors import field_error
from tenancy.models import Organization, User
from tenancy.security_alerts import person_alert, who

BACKUP_CODE_COUNT = 10
TOTP_NAME = "Authenticator app"
BACKUP_NAME = "Backup codes"


MFA_STEP_VERIFY = "verify"
MFA_STEP_ENROL = "enrol"


def has_mfa(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def second_factor_owed(user: Any, organizations: Iterable[Organization] | None = None) -> str | None:
    """What a signed-in person still owes before using the portal or the API with their session:
    ``"verify"`` (they have a device but this session has not passed it), ``"enrol"`` (an organization of theirs
    requires two-factor and they have none) or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    is_verified = getattr(user, "is_verified", None)
    if is_verified is not None and is_verified():
        return None
    if has_mfa(user):
        return MFA_STEP_VERIFY
    if organizations is None:
        organizations = Organization.objects.visible_to(user).only("require_mfa")
    if any(org.require_mfa for org in organizations):
        return MFA_STEP_ENROL
    return None


def mfa_enrol_start(*, user: User) -> TOTPDevice:
    """An unconfirmed TOTP device to show as a QR code; it counts only after :func:`mfa_enrol_confirm`."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)


def _new_backup_codes(user: User) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(user=user, name=BACKUP_NAME, defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def mfa_enrol_confirm(*, user: User, device_id: int, token: str, ip: str | None = None) -> list[str]:
    """Confirm enrolment with a code from the app. Returns the 10 single-use backup codes (shown once)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(pk=device_id, user=user, confirmed=False).first()
        if device is None:
            raise field_error("token", "Start the set-up again: this enrolment is no longer pending.")
        if not device.verify_token((token or "").replace(" ", "")):
            raise field_error("token", "That code is not valid. Check the time on your phone and try again.")
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_backup_codes(user)
        audit_record_for_user(action="mfa.enrolled", user=user, ip=ip)
    return codes


def mfa_backup_codes_regenerate(*, user: User, ip: str | None = None) -> list[str]:
    with transaction.atomic():
        codes = _new_backup_codes(user)
        audit_record_for_user(action="mfa.backup_codes_regenerated", user=user, ip=ip)
    return codes


def mfa_disable(*, user: User, actor: User | None = None, ip: str | None = None) -> None:
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        audit_record_for_user(action="mfa.disabled", user=user, ip=ip, actor_label=(actor or user).email)
        person_alert(
            user, "security.mfa_disabled", title=f"Two-factor sign-in turned off for {user.email}",
            message=f"{who(actor or user)} turned off two-factor sign-in for {user.email}: a password alone now signs "
            "them in. If that was not them, ask them to change their password and turn it on again.",
            url="/settings/team/",
        )  # fmt: skip
