"""Every link the staff admin shows a staff group leads to a page that group may open: each group walks the admin
from its index through the app indexes and lists to one object of each kind (the demo data), and no page it is
offered answers 403, 404 or 500. The billing staff can work the contract invoices."""

from __future__ import annotations

import re

import pytest

from tenancy.models import User
from tenancy.staff import STAFF_GROUPS
from tests.factories import PASSWORD
from tests.helpers import admin_client, walk

pytestmark = pytest.mark.django_db

LINK = re.compile(r'href="(/admin/[^"#?]*)"')
NOT_PAGES = ("/admin/logout/", "/admin/password_change/", "/admin/jsi18n/")


def _member(group: str) -> User:
    """The demo's staff member of ``group``, holding only that group's permissions (the demo's Admin is also a
    superuser, who would pass every check)."""
    user = User.objects.get(is_staff=True, groups__name=group)
    user.is_superuser = False
    user.set_password(PASSWORD)
    user.save(update_fields=["is_superuser", "password"])
    return User.objects.get(pk=user.pk)  # no permission cache


@pytest.mark.parametrize("group", list(STAFF_GROUPS))
def test_no_admin_link_refuses_the_staff_group_it_is_shown_to(demo_data, group):
    client = admin_client(_member(group), code=f"walk-{group.lower()}")

    opened, refused = walk(client, "/admin/", links=LINK, not_pages=NOT_PAGES)

    assert opened > 10
    assert refused == []


@pytest.mark.parametrize("group", ["Billing", "Manager", "Admin"])
def test_billing_staff_work_contracts_invoices_and_their_payments(demo_data, group):
    user = _member(group)
    for permission in ("view_contract", "change_contract", "view_invoice", "change_invoice", "view_paymentattempt",
                       "view_invoiceline", "view_creditnote", "change_billingsettings"):  # fmt: skip
        assert user.has_perm(f"billing.{permission}"), permission
    assert not user.has_perm("billing.delete_invoice")


def test_sales_read_contracts_but_not_invoices(demo_data):
    user = _member("Sales")
    assert user.has_perm("billing.view_contract") and not user.has_perm("billing.change_contract")
    assert not user.has_perm("billing.view_invoice")
