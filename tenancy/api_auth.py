"""API key authentication and per-key throttling for the partner API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from tenancy.models import ApiKey
from tenancy.services.api_keys import api_key_lookup, api_key_touch
from tenancy.services.mfa import second_factor_owed


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
        key = api_key_lookup(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.is_revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if key.is_expired():
            raise exceptions.AuthenticationFailed("This API key has expired.")
        api_key_touch(api_key=key)
        return ApiKeyPrincipal(key=key, scopes=list(key.scopes)), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class VerifiedSessionAuthentication(SessionAuthentication):
    """The portal's own calls: a session counts only once it has passed any second factor it owes."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is not None and second_factor_owed(result[0]):
            raise exceptions.AuthenticationFailed("Finish two-factor sign-in in the portal first.")
        return result


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key (``API_KEY_RATE``); session callers are limited per user at the same rate."""

    scope = "api_key"

    def get_cache_key(self, request: Request | HttpRequest, view: Any) -> str | None:
        auth = getattr(request, "auth", None)
        if isinstance(auth, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": f"key:{auth.pk}"}
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": f"user:{user.pk}"}
        return None


class PublicRateThrottle(SimpleRateThrottle):
    """Per client address, for the public endpoints (``API_PUBLIC_RATE``)."""

    scope = "public"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
