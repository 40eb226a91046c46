"""QuickBooks in the staff admin: the connection's state, company, expiry and last error with the buttons to connect,
reconnect or disconnect, never its tokens; staff choose the items invoices are booked to; sync rows filtered by state
and kind show why they failed, and "Retry now" and "Push again" queue them; a pause QuickBooks asked for is shown. The
staff groups hold these rights."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from integrations.quickbooks.models import ConnectionStatus, QboConnection, QboSync, SyncKind, SyncState
from tenancy.models import AuditEvent, Organization
from tenancy.staff import ensure_staff_groups
from tests.factories import UserFactory
from tests.helpers import admin_client
from tests.integrations.quickbooks.conftest import ACCESS, API, NOW, REFRESH

pytestmark = pytest.mark.django_db

CONNECTIONS = "/admin/quickbooks/qboconnection/"
SYNCS = "/admin/quickbooks/qbosync/"


@pytest.fixture
def staff(db: Any) -> Any:
    return admin_client(UserFactory(email="sam@keel.test", is_staff=True, is_superuser=True))


def failed_rows(organizations: list[Organization]) -> list[QboSync]:
    return [
        QboSync.objects.create(
            organization=organization,
            kind=SyncKind.CUSTOMER,
            object_id=str(organization.pk),
            state=SyncState.FAILED,
            attempts=6,
            last_error="Duplicate Name Exists Error",
        )
        for organization in organizations
    ]


def test_the_connection_shows_its_state_but_never_its_tokens(staff, connection):
    page = staff.get(CONNECTIONS).content.decode()
    assert "Connected to QuickBooks company 9130355377531234" in page
    assert "Disconnect QuickBooks" in page and "Connect QuickBooks" not in page
    form = staff.get(f"{CONNECTIONS}{connection.pk}/change/").content.decode()
    for secret in (ACCESS, REFRESH, connection.access_token_encrypted, connection.refresh_token_encrypted):
        assert secret not in page and secret not in form
    assert 'name="default_item_id"' in form and "access_token" not in form


def test_without_a_connection_staff_are_offered_to_connect(staff):
    page = staff.get(CONNECTIONS).content.decode()
    assert "QuickBooks is not connected" in page
    assert 'href="/admin/integrations/quickbooks/connect/"' in page


def test_a_connection_needing_reconnecting_says_so_and_offers_it(staff, connection):
    lapsed = {"status": ConnectionStatus.NEEDS_RECONNECT, "last_error": "QuickBooks needs reconnecting: expired."}
    QboConnection.objects.filter(pk=connection.pk).update(**lapsed)
    page = staff.get(CONNECTIONS).content.decode()
    assert "Reconnect QuickBooks" in page and "QuickBooks needs reconnecting: expired." in page
    assert "QuickBooks needs reconnecting" in staff.get(SYNCS).content.decode()


def test_staff_choose_the_items_invoices_are_booked_to(staff, connection):
    response = staff.post(f"{CONNECTIONS}{connection.pk}/change/",
                          {"default_item_id": " 21 ", "tax_item_id": "9", "refund_account_id": "35"})  # fmt: skip
    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.default_item_id, connection.tax_item_id) == ("21", "9")
    assert AuditEvent.objects.get(action="quickbooks.settings_changed").changes == {
        "default_item_id": ["1", "21"], "tax_item_id": ["", "9"], "refund_account_id": ["", "35"],
    }  # fmt: skip


def test_sync_rows_are_filtered_and_show_why_they_failed(staff, acme, globex, initech, django_assert_max_num_queries):
    failed_rows([acme, globex])
    QboSync.objects.create(organization=initech, kind=SyncKind.INVOICE, object_id="x", state=SyncState.SUCCEEDED)
    # Session, user, the OTP device, two counts, the page of rows with their organizations, and the connection.
    with django_assert_max_num_queries(12):
        response = staff.get(SYNCS, {"state__exact": "FAILED", "kind__exact": "customer"})
    page = response.content.decode()
    assert response.context["cl"].result_count == 2
    assert "Duplicate Name Exists Error" in page and "Acme Pty Ltd" in page and "Initech" not in page
    assert 'href="/admin/billing/invoice/x/change/"' in staff.get(SYNCS).content.decode()


def test_payment_and_refund_rows_link_to_their_payment(staff, acme):
    QboSync.objects.create(organization=acme, kind=SyncKind.RECEIPT, object_id="77", state=SyncState.SUCCEEDED)
    QboSync.objects.create(organization=acme, kind=SyncKind.REFUND, object_id="77:10000:2500", state=SyncState.PENDING)
    page = staff.get(SYNCS).content.decode()
    assert 'payment <a href="/admin/billing/paymentattempt/77/change/">77</a>' in page
    assert 'refund of 25.00 from payment <a href="/admin/billing/paymentattempt/77/change/">77</a>' in page


def test_a_pause_quickbooks_asked_for_is_shown_above_the_rows_and_on_the_connection(staff, connection, acme, clock):
    QboConnection.objects.filter(pk=connection.pk).update(paused_until=NOW + timedelta(minutes=2))
    page = staff.get(SYNCS).content.decode()
    assert "QuickBooks asked Keel to slow down: nothing is pushed or pulled before" in page
    assert "Paused until" in staff.get(f"{CONNECTIONS}{connection.pk}/change/").content.decode()
    clock.shift(timedelta(minutes=2))
    assert "slow down" not in staff.get(SYNCS).content.decode()


def test_retry_now_runs_failed_rows_again(staff, connection, acme, intuit, django_capture_on_commit_callbacks):
    [row] = failed_rows([acme])
    intuit.post(f"{API}/customer", json={"Customer": {"Id": "58", "SyncToken": "0"}})
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(SYNCS, {"action": "retry_now", "_selected_action": [row.pk]})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.state, row.attempts, row.qbo_id) == (SyncState.SUCCEEDED, 1, "58")


def test_push_again_queues_a_row_that_succeeded(staff, connection, acme):
    row = QboSync.objects.create(organization=acme, kind=SyncKind.CUSTOMER, object_id=str(acme.pk), qbo_id="58",
                                 state=SyncState.SUCCEEDED, attempts=1, next_attempt_at=NOW)  # fmt: skip
    retried = QboSync.objects.create(organization=acme, kind=SyncKind.INVOICE, object_id="i", state=SyncState.SUCCEEDED)
    staff.post(SYNCS, {"action": "retry_now", "_selected_action": [retried.pk]})
    staff.post(SYNCS, {"action": "push_again", "_selected_action": [row.pk]})
    row.refresh_from_db()
    retried.refresh_from_db()
    assert (row.state, row.attempts, row.qbo_id) == (SyncState.PENDING, 0, "58")
    assert retried.state == SyncState.SUCCEEDED  # "Retry now" is for rows that failed or wait


def test_staff_who_may_only_look_cannot_retry(connection, acme):
    [row] = failed_rows([acme])
    viewer = UserFactory(email="viewer@keel.test", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_qbosync"))
    staff = admin_client(viewer)
    page = staff.get(SYNCS)
    assert page.status_code == 200 and "retry_now" not in page.content.decode()
    staff.post(SYNCS, {"action": "retry_now", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.state == SyncState.FAILED


def test_billing_and_admin_staff_may_connect_and_managers_may_look():
    ensure_staff_groups()

    def rights(group: str) -> set[str]:
        return set(Group.objects.get(name=group).permissions.filter(content_type__app_label="quickbooks")
                   .values_list("codename", flat=True))  # fmt: skip

    assert rights("Billing") == rights("Admin") == {"view_qboconnection", "change_qboconnection", "view_qbosync",
                                                    "change_qbosync"}  # fmt: skip
    assert rights("Manager") == {"view_qboconnection", "view_qbosync"}
    assert rights("Technician") == rights("Sales") == set()
