"""OpenAPI description of the API key authentication."""

from __future__ import annotations

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A Keel API key: `Authorization: Bearer keel_…`. Partner keys add `X-Organization`.",
        }


class VerifiedSessionScheme(SessionScheme):
    target_class = "tenancy.api_auth.VerifiedSessionAuthentication"
    name = "Session"
