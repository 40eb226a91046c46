"""Connecting QuickBooks (``/admin/integrations/quickbooks/``): staff with a second factor and the connection's change
permission are sent to Intuit with a one-time state; the callback refuses any other state, exchanges the code, and
stores the company with its tokens encrypted; disconnecting revokes them. Customers, partners and anonymous visitors
are sent to the admin's sign-in page and change nothing. The sandbox provider connects without leaving Keel."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.db import connection as db

from integrations.quickbooks.models import ConnectionStatus, QboConnection, QboSync, SyncKind
from integrations.quickbooks.providers import sandbox
from tenancy.crypto import decrypt
from tenancy.models import AuditEvent, Organization
from tests.factories import UserFactory
from tests.helpers import admin_client
from tests.integrations.quickbooks.conftest import REALM, REFRESH, REVOKE_URL, TOKEN_URL, body, token_reply

pytestmark = pytest.mark.django_db

CONNECT = "/admin/integrations/quickbooks/connect/"
CALLBACK = "/admin/integrations/quickbooks/callback/"
DISCONNECT = "/admin/integrations/quickbooks/disconnect/"
CHANGELIST = "/admin/quickbooks/qboconnection/"
REDIRECT_URI = "https://keel.example.com/admin/integrations/quickbooks/callback/"


@pytest.fixture
def sam(db: Any) -> Any:
    return UserFactory(email="sam@keel.test", full_name="Sam Staff", is_staff=True, is_superuser=True)


@pytest.fixture
def staff(sam: Any) -> Any:
    return admin_client(sam)


def started(staff: Any) -> str:
    """Start connecting; the state Intuit is asked to hand back."""
    response = staff.get(CONNECT)
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def stored_columns() -> list[tuple[str, str]]:
    with db.cursor() as cursor:
        cursor.execute("SELECT access_token_encrypted, refresh_token_encrypted FROM quickbooks_qboconnection")
        return list(cursor.fetchall())


# -- connecting --------------------------------------------------------------------------------------------------------


def test_connecting_sends_staff_to_intuit_with_a_state_the_scope_and_the_callback(staff):
    response = staff.get(CONNECT)
    assert response.status_code == 302
    parts = urlsplit(response["Location"])
    assert parts.netloc == "appcenter.intuit.com" and parts.path == "/connect/oauth2"
    query = parse_qs(parts.query)
    assert query["scope"] == ["com.intuit.quickbooks.accounting"]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["response_type"] == ["code"] and query["client_id"] == ["ABqbo-client-id"]
    assert len(query["state"][0]) >= 32
    assert staff.get(CONNECT)["Location"] != response["Location"]  # a new state each time


def test_the_callback_stores_the_company_with_its_tokens_encrypted(staff, sam, intuit):
    intuit.post(TOKEN_URL, json=token_reply(access="plain-access-token", refresh="plain-refresh-token"))
    state = started(staff)
    response = staff.get(CALLBACK, {"code": "AB-code", "state": state, "realmId": REALM})
    assert response.status_code == 302 and response["Location"] == CHANGELIST
    connection = QboConnection.objects.get()
    assert (connection.realm_id, connection.status, connection.connected_by) == (REALM, ConnectionStatus.CONNECTED,
                                                                                 sam)  # fmt: skip
    [(access, refresh)] = stored_columns()
    assert "plain-access-token" not in access and "plain-refresh-token" not in refresh
    assert (decrypt(access), decrypt(refresh)) == ("plain-access-token", "plain-refresh-token")
    assert parse_qs(intuit.calls[0].request.body)["redirect_uri"] == [REDIRECT_URI]
    assert AuditEvent.objects.get(action="quickbooks.connected").actor == sam
    # The state was good once.
    assert staff.get(CALLBACK, {"code": "AB-code", "state": state, "realmId": REALM}).status_code == 400


@pytest.mark.parametrize("state", ["", "not-the-state"])
def test_a_callback_with_another_state_is_refused_and_stores_nothing(staff, intuit, state):
    started(staff)
    response = staff.get(CALLBACK, {"code": "AB-code", "state": state, "realmId": REALM})
    assert response.status_code == 400 and b"state" in response.content
    assert not QboConnection.objects.exists() and not intuit.calls


def test_a_callback_nobody_started_is_refused(staff, intuit):
    response = staff.get(CALLBACK, {"code": "AB-code", "state": "anything", "realmId": REALM})
    assert response.status_code == 400
    assert not QboConnection.objects.exists()


def test_a_callback_without_the_company_is_refused(staff, intuit):
    state = started(staff)
    response = staff.get(CALLBACK, {"code": "AB-code", "state": state, "realmId": "1; drop"})
    assert response.status_code == 400 and b"realmId" in response.content
    assert not QboConnection.objects.exists()


def test_staff_who_decline_at_intuit_are_told_and_nothing_is_stored(staff, intuit):
    state = started(staff)
    response = staff.get(CALLBACK, {"error": "access_denied", "state": state}, follow=True)
    assert "QuickBooks was not connected: access_denied." in response.content.decode()
    assert not QboConnection.objects.exists()


def test_a_code_intuit_refuses_stores_nothing(staff, intuit):
    intuit.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    state = started(staff)
    response = staff.get(CALLBACK, {"code": "AB-code", "state": state, "realmId": REALM}, follow=True)
    assert "invalid_grant" in response.content.decode()
    assert not QboConnection.objects.exists()


def test_reconnecting_the_same_company_replaces_the_tokens_of_its_connection(staff, connection, intuit):
    QboConnection.objects.filter(pk=connection.pk).update(status=ConnectionStatus.NEEDS_RECONNECT, last_error="x")
    intuit.post(TOKEN_URL, json=token_reply())
    staff.get(CALLBACK, {"code": "AB-code", "state": started(staff), "realmId": REALM})
    connection.refresh_from_db()
    assert (connection.status, connection.last_error) == (ConnectionStatus.CONNECTED, "")
    assert decrypt(connection.refresh_token_encrypted) == "refresh-2"
    assert QboConnection.objects.count() == 1 and connection.default_item_id == "1"


def test_connecting_another_company_forgets_the_ids_of_the_old_one(staff, connection, acme, intuit):
    Organization.objects.filter(pk=acme.pk).update(qbo_customer_id="58")
    QboSync.objects.create(organization=acme, kind=SyncKind.CUSTOMER, object_id=str(acme.pk), qbo_id="58")
    QboSync.objects.create(organization=acme, kind=SyncKind.PAYMENT, object_id=f"{REALM}:201", qbo_id="201")
    intuit.post(TOKEN_URL, json=token_reply())
    staff.get(CALLBACK, {"code": "AB-code", "state": started(staff), "realmId": "4620816365000000"})
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.DISCONNECTED and connection.access_token_encrypted == ""
    live = QboConnection.objects.get(status=ConnectionStatus.CONNECTED)
    assert live.realm_id == "4620816365000000" and live.default_item_id == ""
    acme.refresh_from_db()
    assert acme.qbo_customer_id == "" and QboSync.objects.get(kind=SyncKind.CUSTOMER).qbo_id == ""
    assert QboSync.objects.get(kind=SyncKind.PAYMENT).qbo_id == "201"  # a record of the old books, kept as it was


# -- disconnecting -----------------------------------------------------------------------------------------------------


def test_disconnecting_revokes_the_grant_and_forgets_the_tokens(staff, sam, connection, intuit):
    intuit.post(REVOKE_URL, status=200)
    response = staff.post(DISCONNECT)
    assert response.status_code == 302 and response["Location"] == CHANGELIST
    assert body(intuit.calls[0]) == {"token": REFRESH}
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.DISCONNECTED and connection.disconnected_at is not None
    assert (connection.access_token_encrypted, connection.refresh_token_encrypted) == ("", "")
    assert AuditEvent.objects.get(action="quickbooks.disconnected").actor == sam


def test_a_failed_revocation_still_disconnects(staff, connection, intuit):
    intuit.post(REVOKE_URL, status=503)
    staff.post(DISCONNECT)
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.DISCONNECTED


def test_disconnecting_is_a_post(staff, connection):
    assert staff.get(DISCONNECT).status_code == 405
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CONNECTED


# -- the sandbox -------------------------------------------------------------------------------------------------------


def test_the_sandbox_connects_without_leaving_keel(staff, settings):
    settings.QBO_PROVIDER = "sandbox"
    location = staff.get(CONNECT)["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT_URI
    response = staff.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 302
    live = QboConnection.objects.get()
    assert live.realm_id == sandbox.REALM_ID and decrypt(live.access_token_encrypted).startswith("sbx-access-")


# -- who may ---------------------------------------------------------------------------------------------------------


def test_staff_without_the_permission_are_refused(connection, intuit):
    clerk = UserFactory(email="clerk@keel.test", is_staff=True)
    staff = admin_client(clerk)
    assert staff.get(CONNECT).status_code == 403
    assert staff.get(CALLBACK, {"code": "x", "state": "y", "realmId": REALM}).status_code == 403
    assert staff.post(DISCONNECT).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="change_qboconnection"))
    assert admin_client(clerk, code="efgh5678").get(CONNECT).status_code == 302


def _visitors(client: Any, client_for: Any, people: list[Any]) -> list[Any]:
    return [client, *(client_for(person) for person in people)]


@pytest.mark.isolation("staff-quickbooks-connect")
def test_customers_and_partners_cannot_start_connecting(client, client_for, alice, carol, pat, sam):
    for visitor in _visitors(client, client_for, [alice, carol, pat, sam]):  # sam: staff without a second factor
        response = visitor.get(CONNECT)
        assert response.status_code == 302 and response["Location"].startswith(f"/admin/login/?next={CONNECT}")
        assert "appcenter.intuit.com" not in response["Location"]
        assert "quickbooks_oauth_state" not in visitor.session


@pytest.mark.isolation("staff-quickbooks-callback")
def test_customers_and_partners_cannot_complete_a_connection(client, client_for, alice, carol, pat, acme, intuit):
    for visitor in _visitors(client, client_for, [alice, carol, pat]):
        session = visitor.session
        session["quickbooks_oauth_state"] = "known-state"
        session.save()
        response = visitor.get(CALLBACK, {"code": "AB-code", "state": "known-state", "realmId": REALM})
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
        assert acme.name.encode() not in response.content
    assert not QboConnection.objects.exists() and not intuit.calls


@pytest.mark.isolation("staff-quickbooks-disconnect")
def test_customers_and_partners_cannot_disconnect(client, client_for, alice, carol, pat, connection, intuit):
    for visitor in _visitors(client, client_for, [alice, carol, pat]):
        response = visitor.post(DISCONNECT)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CONNECTED and not intuit.calls
