"""Navigation of the portal: the main menu and the settings menu, each an ordered registry.

Portal areas add themselves when they exist (for example in the module holding their portal views)::

    from portal import nav
    nav.register("Billing", "portal:billing", order=20, visible=lambda request: request.can_manage)

Domain apps never import ``portal``; the portal side of an area registers its entries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

from portal.access import can_manage, is_owner

Visible = Callable[[HttpRequest], bool]


@functools.lru_cache(maxsize=256)
def _address(url_name: str, prefix: str, urlconf: str) -> str | None:
    """The path of a menu entry's page (None when it has no route): reversed once per site prefix and URL
    configuration, since entries take no arguments and every page lists them."""
    try:
        return reverse(url_name, urlconf=urlconf)
    except NoReverseMatch:
        return None


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    order: int
    visible: Visible | None


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    active: bool


class NavRegistry:
    def __init__(self) -> None:
        self._entries: dict[str, NavEntry] = {}
        self._sorted: list[NavEntry] | None = None

    def register(self, label: str, url_name: str, order: int = 100, visible: Visible | None = None) -> NavEntry:
        """Add (or replace, keyed by ``url_name``) an entry; ``visible(request)`` decides per request."""
        entry = NavEntry(label=label, url_name=url_name, order=order, visible=visible)
        self._entries[url_name] = entry
        self._sorted = None
        return entry

    def unregister(self, url_name: str) -> None:
        self._entries.pop(url_name, None)
        self._sorted = None

    def entries(self) -> list[NavEntry]:
        if self._sorted is None:
            self._sorted = sorted(self._entries.values(), key=lambda entry: (entry.order, entry.label))
        return list(self._sorted)

    def links_for(self, request: HttpRequest) -> list[NavLink]:
        shown: list[tuple[NavEntry, str]] = []
        for entry in self.entries():
            if entry.visible is not None and not entry.visible(request):
                continue
            url = _address(entry.url_name, get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
            if url is not None:
                shown.append((entry, url))
        matching = [url for _, url in shown if request.path == url or (url != "/" and request.path.startswith(url))]
        # One current page: the most specific entry (/billing/invoices/ is Invoices, not also Billing).
        current = max(matching, key=len, default=None)
        return [NavLink(label=entry.label, url=url, active=url == current) for entry, url in shown]


main_menu = NavRegistry()
settings_menu = NavRegistry()
register = main_menu.register
register_setting = settings_menu.register

register("Dashboard", "portal:dashboard", order=10)
register("Settings", "portal:settings", order=90)

register_setting("Profile", "portal:settings_profile", order=10)
register_setting("Password", "portal:settings_password", order=20)
register_setting("Two-factor sign-in", "portal:settings_two_factor", order=30)
register_setting("Team", "portal:settings_team", order=40)
register_setting("Security", "portal:settings_security", order=50, visible=is_owner)
register_setting("Branding", "portal:settings_branding", order=60, visible=can_manage)
register_setting("API keys", "portal:settings_api_keys", order=70, visible=can_manage)
register_setting("Audit log", "portal:settings_audit", order=80, visible=is_owner)
register_setting("Data export", "portal:settings_export", order=90, visible=is_owner)
