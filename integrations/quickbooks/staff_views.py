"""Connecting QuickBooks Online, for staff, under ``/admin/integrations/quickbooks/``.

``connect`` sends the staff member to Intuit's authorization page with a random ``state`` kept in their session (the
sandbox provider's "page" is the callback itself). ``callback`` is where Intuit sends them back: the state must be
the one handed out (else 400, and nothing is stored), the code is exchanged for tokens, and the company is stored
and audit-logged. ``disconnect`` (POST) forgets the tokens and revokes them at Intuit.

Guarded like the admin (``admin.site.admin_view``: active staff with a verified one-time password, else the admin's
sign-in page) and by the ``quickbooks.change_qboconnection`` permission, since the connection reaches every
organization's billing. Intuit must know the callback's address: ``SITE_URL`` + ``/admin/integrations/quickbooks/
callback/``.
"""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_POST, require_safe

from integrations.quickbooks.connection import connection_connect, connection_disconnect
from integrations.quickbooks.providers import get_provider
from integrations.quickbooks.providers.base import QboError
from tenancy.audit import client_ip

PERMISSION = "quickbooks.change_qboconnection"
STATE_KEY = "quickbooks_oauth_state"
REALM = re.compile(r"^[0-9A-Za-z-]{1,32}$")


def _require_permission(request: HttpRequest) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied("Changing the QuickBooks connection is needed to connect or disconnect it.")


def redirect_uri() -> str:
    return settings.SITE_URL + reverse("staff-quickbooks-callback")


def _connections_page() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:quickbooks_qboconnection_changelist"))


@require_safe
def connect_view(request: HttpRequest) -> HttpResponse:
    _require_permission(request)
    state = secrets.token_urlsafe(32)
    request.session[STATE_KEY] = state
    return HttpResponseRedirect(get_provider().authorize_url(state=state, redirect_uri=redirect_uri()))


@require_safe
def callback_view(request: HttpRequest) -> HttpResponse:
    _require_permission(request)
    expected = request.session.pop(STATE_KEY, "")
    state = request.GET.get("state", "")
    if not expected or not constant_time_compare(state, expected):
        return HttpResponseBadRequest(
            "state: this answer from Intuit does not belong to a connection started here; connect again."
        )
    if request.GET.get("error"):
        messages.error(request, f"QuickBooks was not connected: {request.GET['error'][:100]}.")
        return _connections_page()
    code, realm_id = request.GET.get("code", ""), request.GET.get("realmId", "")
    if not code or not REALM.match(realm_id):
        return HttpResponseBadRequest("code, realmId: Intuit's answer lacks the code or the company id.")
    try:
        tokens = get_provider().exchange_code(code=code, redirect_uri=redirect_uri())
    except QboError as error:
        messages.error(request, f"QuickBooks was not connected: {error.message}")
        return _connections_page()
    connection_connect(realm_id=realm_id, tokens=tokens, actor=request.user, ip=client_ip(request))  # type: ignore[arg-type]
    messages.success(request, f"QuickBooks company {realm_id} is connected.")
    return _connections_page()


@require_POST
def disconnect_view(request: HttpRequest) -> HttpResponse:
    _require_permission(request)
    if connection_disconnect(actor=request.user, ip=client_ip(request)):  # type: ignore[arg-type]
        messages.success(request, "QuickBooks is disconnected; nothing more is pushed or pulled.")
    else:
        messages.info(request, "QuickBooks was not connected.")
    return _connections_page()


connect_page = admin.site.admin_view(connect_view)
callback_page = admin.site.admin_view(callback_view)
disconnect_page = admin.site.admin_view(disconnect_view)
