"""Feature flags: ``flag_enabled("new-dashboard", organization)`` says whether an organization has a feature.

Staff manage flags in the admin. An organization's override, on or off, wins; otherwise the organization has the
feature when its bucket, a stable number from 0 to 99 drawn from a hash of the flag's key and the organization's id,
is below the flag's percentage. So the same organizations stay in while the percentage stays, raising it only adds
organizations (10 % to 20 % keeps the first 10 % in), and each flag picks its own organizations. An unknown flag is
off.

A flag's state is cached (``FLAG_CACHE_SECONDS``) in the Django cache, which every process shares when it is Redis;
saving or deleting a flag or an override drops its entry at once.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from django.core.cache import cache

from tenancy.models import FeatureFlag, FeatureFlagOverride, Organization

FLAG_CACHE_SECONDS = 60


def bucket(key: str, organization_id: uuid.UUID | str) -> int:
    """The organization's place, 0 to 99, in the rollout of flag ``key``: the same on every process and run."""
    digest = hashlib.sha256(f"{key}:{organization_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _state(key: str) -> dict[str, Any]:
    """``{"exists": bool, "percentage": int, "overrides": {organization id: enabled}}``, from the cache or the
    database (two queries)."""
    cache_key = FeatureFlag.cache_key(key)
    state: dict[str, Any] | None = cache.get(cache_key)
    if state is not None:
        return state
    flag = FeatureFlag.objects.filter(key=key).first()
    if flag is None:
        state = {"exists": False, "percentage": 0, "overrides": {}}
    else:
        overrides = FeatureFlagOverride.objects.filter(flag=flag).values_list("organization_id", "enabled")
        state = {
            "exists": True,
            "percentage": flag.percentage,
            "overrides": {str(organization_id): enabled for organization_id, enabled in overrides},
        }
    cache.set(cache_key, state, FLAG_CACHE_SECONDS)
    return state


def flag_enabled(key: str, organization: Organization | None) -> bool:
    """Whether ``organization`` has the feature ``key``: its override if it has one, else whether its bucket is
    below the flag's percentage. False for an unknown flag and for no organization."""
    if organization is None:
        return False
    state = _state(key)
    if not state["exists"]:
        return False
    override = state["overrides"].get(str(organization.pk))
    if override is not None:
        return bool(override)
    return bucket(key, organization.pk) < int(state["percentage"])
