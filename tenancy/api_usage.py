"""``GET /api/usage/``: the calling API key's rate limits, what it has used of them and when each window resets.

With a rate-limit policy (set by staff for the key's organization or its partner), the answer lists the policy's
minute, hour and day windows with the requests counted in each: those of all the keys of the key's organization (of
all the partner's own keys, for a partner key), this request included.
Without one, it lists the default per-key rate (``API_KEY_RATE``), counted in fixed windows of the rate's length on
the UTC clock, with ``resets_at`` when the current window ends. Only API keys have limits to report: a signed-in
person gets 403 (the portal shows an organization's limits under Settings, API keys). ``X-Organization`` naming an
organization the key may not act for is 404, as everywhere.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.urls import re_path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from tenancy.api_auth import ApiKeyRateThrottle, WindowUsage, policy_usage, rate_scope_of, scope_for_organization
from tenancy.api_base import TenantAPIView
from tenancy.models import ApiKey, Organization, RatePolicy

DEFAULT_WINDOWS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}

UsageSerializer = inline_serializer(
    "ApiUsage",
    {
        "key": serializers.DictField(help_text="The calling key: id, name and prefix."),
        "policy": serializers.DictField(
            allow_null=True,
            help_text="The rate-limit policy governing the key: applies_to (organization or partner) and owner (its "
            "slug); null when the default per-key rate applies.",
        ),
        "windows": inline_serializer(
            "RateWindow",
            {
                "window": serializers.ChoiceField(choices=["second", "minute", "hour", "day"]),
                "limit": serializers.IntegerField(allow_null=True, help_text="Requests allowed; null: no limit."),
                "used": serializers.IntegerField(allow_null=True, help_text="Requests counted in the current window."),
                "remaining": serializers.IntegerField(allow_null=True),
                "resets_at": serializers.DateTimeField(allow_null=True, help_text="When the current window ends."),
            },
            many=True,
        ),
    },
)


def _default_rate() -> tuple[int, int] | None:
    """The default per-key rate (``API_KEY_RATE``) as (requests, seconds); None when there is none."""
    throttle = ApiKeyRateThrottle()
    requests, seconds = throttle.parse_rate(throttle.rate)
    return None if requests is None or seconds is None else (requests, seconds)


def default_usage(key: ApiKey, now: float | None = None) -> list[WindowUsage]:
    """The default per-key rate and the requests of ``key`` counted in its current window."""
    now = time.time() if now is None else now
    rate = _default_rate()
    if rate is None:
        return []
    limit, seconds = rate
    throttle = ApiKeyRateThrottle()
    counter, start = throttle.window_counter(throttle.key_cache_key(key), now)
    used = int(throttle.cache.get(counter) or 0)
    window = DEFAULT_WINDOWS.get(seconds, f"{seconds}s")
    return [
        WindowUsage(window=window, limit=limit, used=used, resets_at=datetime.fromtimestamp(start + seconds, tz=UTC))
    ]


def describe_policy(policy: RatePolicy) -> dict[str, Any]:
    """Whose policy it is. Staff's note on it stays with staff."""
    if policy.organization is not None:
        return {"applies_to": "organization", "owner": policy.organization.slug}
    return {"applies_to": "partner", "owner": policy.partner.slug if policy.partner else ""}


def default_rate() -> WindowUsage | None:
    """The default per-key rate as a window without usage (``600`` per ``minute``); None when there is none."""
    rate = _default_rate()
    if rate is None:
        return None
    limit, seconds = rate
    return WindowUsage(window=DEFAULT_WINDOWS.get(seconds, f"{seconds}s"), limit=limit, used=None, resets_at=None)


def organization_limits(organization: Organization) -> dict[str, Any]:
    """What the portal's API keys page shows: the policy governing the organization's keys (None: the default rate
    per key applies, ``default``) and its windows with what the organization's keys used of each. One query."""
    scope = scope_for_organization(organization)
    if scope is None:
        return {"policy": None, "windows": [], "default": default_rate()}
    return {"policy": scope.policy, "windows": policy_usage(scope), "default": None}


class ApiUsageView(TenantAPIView):
    """The calling key's rate limits and how much of each it has used (this request included)."""

    @extend_schema(responses=UsageSerializer)
    def get(self, request: Request) -> Response:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        if key is None:
            raise exceptions.PermissionDenied("Usage is reported to API keys; the portal shows it under API keys.")
        scope = rate_scope_of(request)
        windows = policy_usage(scope) if scope is not None else default_usage(key)
        return Response(
            {
                "key": {"id": str(key.pk), "name": key.name, "prefix": key.prefix},
                "policy": describe_policy(scope.policy) if scope is not None else None,
                "windows": [window.as_dict() for window in windows],
            }
        )


# Included by msp/api_urls.py under /api/.
urlpatterns = [re_path(r"^usage/?$", ApiUsageView.as_view(), name="api-usage")]
