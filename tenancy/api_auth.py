"""API key authentication and throttling for the partner API: the default rate per key (``API_KEY_RATE``), or the
rate-limit policy staff set for the key's organization or partner (:class:`RatePolicyThrottle`)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache as default_cache
from django.db.models import Q
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from tenancy.api_cache import reuse_names
from tenancy.audit import client_ip
from tenancy.auth_cache import access_read, key_entry, organization_entry
from tenancy.counters import count_hit
from tenancy.models import ApiKey, Organization, Partner, RatePolicy
from tenancy.secrets import token_hash
from tenancy.services.api_keys import KEY_PREFIX, api_key_lookup, api_key_touch
from tenancy.services.mfa import second_factor_owed
from tenancy.throttle import AttemptLimit


@dataclass
class ApiKeyPrincipal:
    """``request.user`` for a request authenticated by an API key: the key itself, not a person."""

    key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_active: bool = True
    scopes: list[str] = field(default_factory=list)

    @property
    def pk(self) -> str:
        return f"api-key:{self.key.pk}"

    @property
    def email(self) -> str:
        return ""

    def __str__(self) -> str:
        return f"API key {self.key.name} ({self.key.prefix})"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <api key>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid API key.") from exc
        # One cache round trip: the key, the organization X-Organization names, this address's refused keys, the
        # request counted against the key's rate, and a list answer the request may reuse.
        failures = api_key_failures()
        ip = client_ip(request)
        counter, bucket = failures.counter(ip) if ip else ("", 0)
        hashed = token_hash(raw) if raw.startswith(KEY_PREFIX) else ""
        named = organization_header(request)
        entries = [key_entry(hashed), *([organization_entry(hashed, named)] if named else [])] if hashed else []
        rate = ApiKeyRateThrottle().counter_for(hashed) if hashed else None
        access = access_read(
            entries,
            [*([counter] if counter else []), *(reuse_names(request, hashed, named) if hashed else [])],
            [rate] if rate else [],
        )
        request.keel_counted = {rate[0]: access.values[rate[0]]} if rate else {}  # type: ignore[attr-defined]
        retry_after = failures.retry_after_count(access.values.get(counter), bucket) if counter else None
        if retry_after:
            raise exceptions.Throttled(
                wait=retry_after, detail="Too many invalid API keys from this address; try again later."
            )
        key = access.entries.get(key_entry(hashed)) if hashed else None
        if key is None:
            key = api_key_lookup(raw)
            if key is not None:
                access.store(key_entry(hashed), key)
        refusal = _refusal(key)
        if key is None or refusal:
            failures.count(request)
            raise exceptions.AuthenticationFailed(refusal)
        if api_key_touch(api_key=key):
            access.store(key_entry(hashed), key)
        request.keel_access = access  # type: ignore[attr-defined]  # resolve_access reads the organization's entry
        return ApiKeyPrincipal(key=key, scopes=list(key.scopes)), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def organization_header(request: Request | HttpRequest) -> str:
    """The organization the caller names with ``X-Organization`` (slug or id), or ""."""
    return (request.META.get("HTTP_X_ORGANIZATION") or "").strip()


def _refusal(key: ApiKey | None) -> str:
    if key is None:
        return "Invalid API key."
    if key.is_revoked:
        return "This API key has been revoked."
    if key.is_expired():
        return "This API key has expired."
    return ""


def api_key_failures() -> AttemptLimit:
    """Refused keys per client address (``API_KEY_FAILURE_LIMIT`` per 10 minutes): past it, every key is refused
    with 429 until the window ends, so keys cannot be guessed at speed."""
    return AttemptLimit("api-key", limit=settings.API_KEY_FAILURE_LIMIT, window=10 * 60)


class VerifiedSessionAuthentication(SessionAuthentication):
    """The portal's own calls: a session counts only once it has passed any second factor it owes."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is not None and second_factor_owed(result[0]):
            raise exceptions.AuthenticationFailed("Finish two-factor sign-in in the portal first.")
        return result


class FixedWindowThrottle(SimpleRateThrottle):
    """DRF's rates (``"600/min"``), counted in fixed windows of the rate's length on the UTC clock (a minute window
    starts at :00 seconds): one atomic increment per request (:func:`~tenancy.counters.count_hit`), however high the
    rate. DRF's own throttle keeps the time of every request in the window in one cache entry that it reads and
    writes whole on each request, which at thousands of requests a minute costs more than the request. A client
    may make up to twice the rate across the edge of a window. A refused request is taken back off the count, so
    the count is of requests served; ``Retry-After`` is the seconds until the window ends."""

    timer = staticmethod(time.time)
    num_requests: int | None
    duration: int | None

    def __init__(self) -> None:
        super().__init__()
        self.seconds_to_wait: float | None = None

    def window_counter(self, ident_key: str, now: float) -> tuple[str, int]:
        """The cache key counting ``ident_key``'s requests in the window holding ``now``, and the window's start
        (windows of one second when no rate is set)."""
        start = window_start(now, self.duration or 1)
        return f"{ident_key}:{start}", start

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None or self.num_requests is None or self.duration is None:
            return True
        ident_key = self.get_cache_key(request, view)
        if ident_key is None:
            return True
        now = self.timer()
        counter, start = self.window_counter(ident_key, now)
        used = (getattr(request, "keel_counted", None) or {}).get(counter)  # counted already by authentication
        if used is None:
            used = count_hit(counter, self.duration + 60)
        if used <= self.num_requests:
            return True
        with contextlib.suppress(ValueError):
            self.cache.decr(counter)
        self.seconds_to_wait = start + self.duration - now
        return False

    def wait(self) -> float | None:
        return self.seconds_to_wait


class ApiKeyRateThrottle(FixedWindowThrottle):
    """Requests per API key (``API_KEY_RATE``), unless a rate-limit policy governs the key (then
    :class:`RatePolicyThrottle` alone limits it); session callers are limited per user at the same rate."""

    scope = "api_key"

    def allow_request(self, request: Request, view: Any) -> bool:
        if rate_scope_of(request) is not None:
            return True
        return super().allow_request(request, view)

    def key_cache_key(self, key: ApiKey) -> str:
        return self.hash_cache_key(key.key_hash)

    def hash_cache_key(self, key_hash: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": f"key:{key_hash}"}

    def counter_for(self, key_hash: str) -> tuple[str, int] | None:
        """The counter of the key with ``key_hash`` in the current window and its timeout, for authentication to
        count the request in its own cache round trip; None when no rate is set. Every request made with the key
        counts, those then refused for a scope the key lacks included."""
        if self.rate is None or self.duration is None:
            return None
        counter, _ = self.window_counter(self.hash_cache_key(key_hash), self.timer())
        return counter, self.duration + 60

    def get_cache_key(self, request: Request | HttpRequest, view: Any) -> str | None:
        auth = getattr(request, "auth", None)
        if isinstance(auth, ApiKey):
            return self.key_cache_key(auth)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": f"user:{user.pk}"}
        return None


class PublicRateThrottle(FixedWindowThrottle):
    """Per client address, for the public endpoints (``API_PUBLIC_RATE``)."""

    scope = "public"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


# -- rate-limit policies ----------------------------------------------------------------------------------------------

# The windows a policy counts in, by name, with their length in seconds. Windows follow the UTC clock: a minute
# window starts at :00 seconds, an hour window at :00 minutes, a day window at 00:00 UTC.
WINDOWS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86400}
_NOT_LOOKED_UP = object()


def _loaded_policy(owner: Organization | Partner) -> tuple[bool, RatePolicy | None]:
    """(True, its active policy or None) when the owner's ``rate_policy`` was loaded along with it
    (``select_related``), so no query is needed; (False, None) otherwise."""
    loaded = owner._state.fields_cache
    if "rate_policy" not in loaded:
        return False, None
    policy = loaded["rate_policy"]
    return True, policy if policy is not None and policy.active else None


def policy_for_organization(organization: Organization) -> RatePolicy | None:
    """The active policy governing the keys of ``organization``: its own, else its partner's. Free when the
    organization was loaded with ``rate_policy`` and ``partner__rate_policy`` (``select_related``), one query
    otherwise."""
    loaded, policy = _loaded_policy(organization)
    if loaded:
        if policy is not None or organization.partner_id is None:
            return policy
        partner = organization._state.fields_cache.get("partner")
        if partner is not None:
            partner_loaded, partner_policy = _loaded_policy(partner)
            if partner_loaded:
                return partner_policy
    owners = Q(organization_id=organization.pk)
    if organization.partner_id is not None:
        owners |= Q(partner_id=organization.partner_id)
    found = list(RatePolicy.objects.filter(owners, active=True).select_related("organization", "partner"))
    return next((p for p in found if p.organization_id is not None), found[0] if found else None)


def policy_for_key(key: ApiKey) -> RatePolicy | None:
    """The active policy governing ``key``: its organization's, else that organization's partner's; a partner key's
    partner's. Free when the key was loaded with its owners' policies (``organization__rate_policy``,
    ``organization__partner__rate_policy``, ``partner__rate_policy``), one query otherwise."""
    if key.organization is not None:
        return policy_for_organization(key.organization)
    partner = key.partner
    if partner is None:
        return None
    loaded, policy = _loaded_policy(partner)
    if loaded:
        return policy
    return RatePolicy.objects.filter(partner=partner, active=True).select_related("partner").first()


@dataclass(frozen=True)
class RateScope:
    """A policy, and whose requests count together against it: the keys of one organization (``organization:<id>``)
    or a partner's own keys (``partner:<id>``). A partner's policy so limits each of its organizations separately,
    and its own keys together: one organization's traffic never uses up, or reveals, another's."""

    policy: RatePolicy
    counted: str


def scope_for_key(key: ApiKey) -> RateScope | None:
    policy = policy_for_key(key)
    if policy is None:
        return None
    if key.organization_id is not None:
        return RateScope(policy=policy, counted=f"organization:{key.organization_id}")
    return RateScope(policy=policy, counted=f"partner:{key.partner_id}")


def scope_for_organization(organization: Organization) -> RateScope | None:
    """The policy and counters of the keys of ``organization`` (what its portal shows)."""
    policy = policy_for_organization(organization)
    return None if policy is None else RateScope(policy=policy, counted=f"organization:{organization.pk}")


def rate_scope_of(request: Request | HttpRequest) -> RateScope | None:
    """The policy governing the request's API key and its counters (None for other callers), looked up once per
    request."""
    found = getattr(request, "_keel_rate_scope", _NOT_LOOKED_UP)
    if isinstance(found, RateScope) or found is None:
        return found
    auth = getattr(request, "auth", None)
    scope = scope_for_key(auth) if isinstance(auth, ApiKey) else None
    request._keel_rate_scope = scope  # type: ignore[union-attr]
    return scope


def window_start(now: float, seconds: int) -> int:
    """The start (a UNIX time) of the window of ``seconds`` holding ``now``."""
    return int(now // seconds) * seconds


def counter_key(scope: RateScope, window: str, start: int) -> str:
    return f"rate-policy:{scope.policy.pk}:{scope.counted}:{window}:{start}"


@dataclass(frozen=True)
class WindowUsage:
    """One window of a limit: its ``limit`` (None: none), the requests ``used`` in the current window (None when
    nothing counts them) and when the window ends (``resets_at``)."""

    window: str
    limit: int | None
    used: int | None
    resets_at: datetime | None

    @property
    def remaining(self) -> int | None:
        if self.limit is None or self.used is None:
            return None
        return max(self.limit - self.used, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
        }


def policy_usage(scope: RateScope, now: float | None = None) -> list[WindowUsage]:
    """The policy's windows, minute, hour and day, with what the scope used of each now (one cache read). A window
    without a limit is not counted: its ``used`` is None."""
    now = time.time() if now is None else now
    limits = scope.policy.limits()
    keys = {
        window: counter_key(scope, window, window_start(now, seconds))
        for window, seconds in WINDOWS.items()
        if limits[window] is not None
    }
    counts = default_cache.get_many(list(keys.values())) if keys else {}
    usage = []
    for window, seconds in WINDOWS.items():
        if window not in keys:
            usage.append(WindowUsage(window=window, limit=None, used=None, resets_at=None))
            continue
        ends = window_start(now, seconds) + seconds
        usage.append(
            WindowUsage(
                window=window,
                limit=limits[window],
                used=int(counts.get(keys[window], 0)),
                resets_at=datetime.fromtimestamp(ends, tz=UTC),
            )
        )
    return usage


class RatePolicyThrottle(BaseThrottle):
    """Requests of API keys a :class:`~tenancy.models.RatePolicy` governs, counted per :class:`RateScope` (one
    organization's keys, or a partner's own keys) in fixed UTC windows (minute, hour, day) in the Django cache:
    :func:`~tenancy.counters.count_hit` counts the request atomically (Redis INCR in production), so concurrent
    workers never both take the last request.

    Over any limit, the request is refused with 429 and ``Retry-After``: the seconds until the exceeded window (the
    longest, when several are) ends. A refused request is taken back off every counter, so ``used`` counts the
    requests served. Keys without a policy, and people signed in, pass (``ApiKeyRateThrottle`` limits them).
    """

    cache = default_cache
    timer = staticmethod(time.time)

    def __init__(self) -> None:
        self.seconds_to_wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = rate_scope_of(request)
        if scope is None:
            return True
        now = self.timer()
        counted: list[str] = []
        waits: list[float] = []
        for window, limit in scope.policy.limits().items():
            if limit is None:
                continue
            seconds = WINDOWS[window]
            start = window_start(now, seconds)
            key = counter_key(scope, window, start)
            used = count_hit(key, seconds + 60)
            counted.append(key)
            if used > limit:
                waits.append(start + seconds - now)
        if not waits:
            return True
        for key in counted:
            with contextlib.suppress(ValueError):
                self.cache.decr(key)
        self.seconds_to_wait = max(waits)
        return False

    def wait(self) -> float | None:
        return self.seconds_to_wait
