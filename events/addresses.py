"""Where a partner webhook may point: https (in production), and never at this network's own machines.

A URL whose host resolves to a private, loopback, link-local, multicast, reserved or unspecified address is refused
(server-side request forgery), unless ``WEBHOOKS_ALLOW_PRIVATE`` is on. The check runs when an endpoint is saved and
again before every delivery, because what a name resolves to can change.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


def url_problem(url: str) -> str | None:
    """Why ``url`` may not receive webhooks, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        return "Use an https:// address."
    if parts.scheme != "https" and settings.PRODUCTION:
        return "Use an https:// address."
    if not parts.hostname:
        return "The address has no host."
    if parts.username or parts.password:
        return "Leave credentials out of the address; deliveries are signed instead."
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "The port is not a number between 0 and 65535."
    try:
        answers = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return f"{parts.hostname} does not resolve."
    for *_, address in answers:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global or ip.is_multicast:
            return f"{parts.hostname} resolves to {ip}, a private or reserved address."
    return None
