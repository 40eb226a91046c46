"""Template context for every page: the current organization, its branding and the menus."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from portal import nav
from tenancy.models import Organization

DEFAULT_PRIMARY = "#1f4e79"
DEFAULT_ACCENT = "#f2a900"
_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _colour(value: str, default: str) -> str:
    # Colours go into a <style> block, where HTML escaping does not protect: accept only #RRGGBB.
    return value.lower() if value and _HEX.fullmatch(value) else default


def _text_on(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (WCAG relative luminance)."""
    channels = [int(background[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#111111" if luminance > 0.179 else "#ffffff"


def branding(organization: Organization | None) -> dict[str, Any]:
    primary = _colour(organization.brand_primary_color if organization else "", DEFAULT_PRIMARY)
    accent = _colour(organization.brand_accent_color if organization else "", DEFAULT_ACCENT)
    logo_url = ""
    if organization is not None and organization.brand_logo_version:
        logo_url = reverse("portal:brand_logo", args=[organization.pk]) + f"?v={organization.brand_logo_version}"
    return {
        "name": organization.display_name if organization else "Keel",
        "primary": primary,
        "accent": accent,
        "on_primary": _text_on(primary),
        "on_accent": _text_on(accent),
        "logo_url": logo_url,
    }


def portal(request: HttpRequest) -> dict[str, Any]:
    organization = getattr(request, "organization", None)
    user = getattr(request, "user", None)
    signed_in = bool(user is not None and user.is_authenticated)
    show_menus = (
        signed_in and organization is not None and organization.is_active and getattr(request, "mfa_step", None) is None
    )
    return {
        "current_org": organization,
        "portal_orgs": getattr(request, "organizations", []),
        "membership_role": getattr(request, "membership_role", None),
        "is_partner_admin": getattr(request, "is_partner_admin", False),
        "can_manage": getattr(request, "can_manage", False),
        "is_owner": getattr(request, "is_owner", False),
        "brand": branding(organization),
        "main_menu": nav.main_menu.links_for(request) if show_menus else [],
        # Only the settings pages show it: built when a template first reads it.
        "settings_menu": SimpleLazyObject(lambda: nav.settings_menu.links_for(request)) if show_menus else [],
    }
