from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError, field_error
from tenancy.models import ApiKey, ApiScope, Organization, Partner, User
from tenancy.secrets import new_token, token_hash
from tenancy.security_alerts import organization_alert, who

KEY_PREFIX = "keel_"
# Scopes later areas add register here: ``API_SCOPES["tickets"] = "Support tickets"``.
API_SCOPES: dict[str, str] = {ApiScope.READ: "Read", ApiScope.WRITE: "Write"}
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _clean_scopes(scopes: list[str]) -> list[str]:
    cleaned = sorted({scope.strip() for scope in scopes if scope.strip()})
    unknown = [scope for scope in cleaned if scope not in API_SCOPES]
    if unknown:
        raise field_error("scopes", f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(sorted(API_SCOPES))}.")
    if not cleaned:
        raise field_error("scopes", "Choose at least one scope.")
    return cleaned


def api_key_create(
    *,
    name: str,
    scopes: list[str],
    organization: Organization | None = None,
    partner: Partner | None = None,
    expires_at: datetime | None = None,
    created_by: User | None = None,
    ip: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for an organization or a partner. Returns the key and its secret, which is never stored."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Name is required."]
    if (organization is None) == (partner is None):
        errors["owner"] = ["A key belongs to exactly one organization or partner."]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = ["The expiry must be in the future."]
    try:
        clean_scopes = _clean_scopes(scopes)
    except ServiceValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ServiceValidationError(errors)
    secret = new_token(32)
    prefix = new_token(6)[:8].replace("-", "x").replace("_", "y")
    raw = f"{KEY_PREFIX}{prefix}_{secret}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name[:100],
            prefix=prefix,
            key_hash=token_hash(raw),
            organization=organization,
            partner=partner,
            scopes=clean_scopes,
            expires_at=expires_at,
            created_by=created_by,
        )
        audit_record(
            action="api_key.created",
            organization=organization,
            actor=created_by,
            target=key,
            changes={"scopes": clean_scopes, "partner": partner.slug if partner else None},
            ip=ip,
        )
        if organization is not None:
            organization_alert(
                organization, "security.api_key_created", title=f"API key {key.name} created",
                message=f"{who(created_by)} created the API key {key.name} ({KEY_PREFIX}{prefix}...) with the scopes "
                f"{', '.join(clean_scopes)}. If you did not expect it, revoke it on the API keys page.",
                url="/settings/api-keys/",
            )  # fmt: skip
    return key, raw


def api_key_lookup(raw: str) -> ApiKey | None:
    if not raw.startswith(KEY_PREFIX):
        return None
    return (
        ApiKey.objects.select_related(
            "organization",
            "partner",
            # The rate policy that governs the key (RatePolicyThrottle): no query of its own per request.
            "organization__rate_policy",
            "organization__partner__rate_policy",
            "partner__rate_policy",
        )
        .defer("organization__brand_logo")  # every request of an organization's key would read its logo otherwise
        .filter(key_hash=token_hash(raw))
        .first()
    )


def api_key_revoke(*, api_key: ApiKey, actor: User | None = None, ip: str | None = None) -> ApiKey:
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if revoked:
            audit_record(
                action="api_key.revoked", organization=api_key.organization, actor=actor, target=api_key, ip=ip
            )
    api_key.refresh_from_db()
    return api_key


def api_key_rotate(*, api_key: ApiKey, actor: User | None = None, ip: str | None = None) -> tuple[ApiKey, str]:
    """Replace a live key with a new secret carrying the same name, owner, scopes and expiry; the old one is revoked.
    Revoked or expired keys cannot be rotated: create a new key instead."""
    if api_key.is_revoked or api_key.is_expired():
        raise ConflictError("Only a live key can be rotated: this one is revoked or expired.")
    with transaction.atomic():
        new_key, raw = api_key_create(
            name=api_key.name,
            scopes=list(api_key.scopes),
            organization=api_key.organization,
            partner=api_key.partner,
            expires_at=api_key.expires_at,
            created_by=actor,
            ip=ip,
        )
        api_key_revoke(api_key=api_key, actor=actor, ip=ip)
    return new_key, raw


def api_key_touch(*, api_key: ApiKey) -> bool:
    """Record use, at most once a minute per key, so busy keys do not write on every request; whether it wrote."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return False
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
    return True
