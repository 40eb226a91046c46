"""The contract API: create, list, filter, read and change contracts, activate them, add and change lines (with the
adjustment for a period already invoiced), record metered usage once per idempotency key; who may do what
(organization key, partner key, staff, customers by role); scopes; bad input named by field; tenant isolation of
every route; query counts of the lists.

Time stands still on Tuesday 10 March 2026, 10:00 in Sydney (Acme's zone). Contracts start on 1 March.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import DataError

from billing.models import Contract, ContractAdjustment, ContractLine, ContractStatus, Invoice, UsageRecord
from billing.services.contracts import ContractTerms, contract_create, usage_record
from billing.services.invoicing import invoices_generate
from tenancy.models import AuditEvent, Role
from tenancy.services.api_keys import API_SCOPES
from tests.billing.api_support import (
    SYDNEY,
    WRONG_VALUES,
    count_queries,
    send,
    session,
)
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tuesday_morning")]

FLAT = {"description": "Managed services", "pricing_model": "FLAT", "amount": "310.00"}
CALLS = {
    "description": "API calls",
    "pricing_model": "USAGE",
    "metric": "api_calls",
    "included_quantity": "1000",
    "tiers": [{"up_to": "10000", "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.005"}],
}


def make_contract(organization, *lines, activate=True, **terms) -> Contract:
    values = {"name": "Managed IT", "start_date": date(2026, 3, 1), "anchor_day": 1, **terms}
    return contract_create(
        organization=organization, terms=ContractTerms(**values), lines=list(lines or [FLAT]), activate=activate
    )


@pytest.fixture
def acme_contract(acme):
    return make_contract(acme, FLAT, CALLS)


@pytest.fixture
def globex_contract(globex):
    made = make_contract(globex, {**FLAT, "description": "Globex payroll hosting"}, CALLS, name="Globex payroll")
    usage_record(contract=made, metric="api_calls", quantity="5", idempotency_key="globex-1")
    return made


def globex_free(response) -> None:
    body = response.content.decode().lower()
    assert "globex" not in body and "payroll" not in body


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_scopes_are_registered():
    assert API_SCOPES["billing:read"] == "Billing: read"
    assert API_SCOPES["billing:write"] == "Billing: write"


# -- create, read, activate --------------------------------------------------------------------------------------------


def test_an_organization_key_creates_an_active_contract_and_reads_it_back(acme_key):
    response = acme_key.post(
        "/api/contracts/",
        {
            "name": "Managed IT",
            "start_date": "2026-03-01",
            "cycle": "MONTHLY",
            "anchor_day": 1,
            "timing": "ADVANCE",
            "payment_terms_days": 7,
            "tax_rate": "10",
            "tax_label": "GST",
            "lines": [FLAT, CALLS],
            "activate": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["status"], body["organization"], body["currency"]) == (
        "Managed IT",
        "ACTIVE",
        "acme",
        "AUD",
    )
    assert (body["start_date"], body["end_date"], body["cycle"], body["anchor_day"]) == (
        "2026-03-01",
        None,
        "MONTHLY",
        1,
    )
    assert (body["tax_rate"], body["payment_terms_days"], body["auto_renew"]) == ("10.00", 7, False)
    assert (body["next_period_start"], body["next_invoice_on"]) == ("2026-03-01", "2026-03-01")
    flat, calls = body["lines"]
    assert (flat["position"], flat["pricing_model"], flat["amount"], flat["quantity"]) == (0, "FLAT", "310.00", "1")
    assert (calls["metric"], calls["included_quantity"]) == ("api_calls", "1000")
    assert calls["tiers"] == [
        {"up_to": "10000", "unit_price": "0.01", "flat_fee": None},
        {"up_to": None, "unit_price": "0.005", "flat_fee": None},
    ]
    uuid.UUID(body["id"])
    assert acme_key.get(f"/api/contracts/{body['id']}/").json() == body
    assert acme_key.get(f"/api/contracts/{body['id']}").status_code == 200


def test_a_draft_is_activated_from_its_start(acme_key):
    body = acme_key.post(
        "/api/contracts", {"name": "Backup", "start_date": "2026-03-15", "lines": [FLAT]}, format="json"
    ).json()
    assert (body["status"], body["next_invoice_on"], body["anchor_day"], body["tax_rate"]) == (
        "DRAFT",
        None,
        15,
        "10.00",
    )
    response = acme_key.post(f"/api/contracts/{body['id']}/activate")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["next_invoice_on"]) == ("ACTIVE", "2026-03-15")
    assert acme_key.post(f"/api/contracts/{body['id']}/activate/").json()["status"] == "ACTIVE"


def test_an_ended_contract_cannot_be_activated_or_changed(acme_key, acme):
    made = make_contract(acme)
    Contract.objects.filter(pk=made.pk).update(status=ContractStatus.ENDED)
    line = made.lines.get()
    assert acme_key.post(f"/api/contracts/{made.id}/activate/").status_code == 409
    response = acme_key.patch(f"/api/contracts/{made.id}/", {"name": "Renamed"}, format="json")
    assert response.status_code == 409 and "status" in response.json()
    assert acme_key.post(f"/api/contracts/{made.id}/lines/", FLAT, format="json").status_code == 409
    assert acme_key.patch(f"/api/contracts/{made.id}/lines/{line.id}/", {"amount": "1"}, format="json").status_code == (
        409
    )
    assert Contract.objects.get().name == "Managed IT" and ContractLine.objects.count() == 1


# -- changes -----------------------------------------------------------------------------------------------------------


def test_terms_change_together_and_are_audited(acme_key, acme):
    made = make_contract(acme)
    response = acme_key.patch(
        f"/api/contracts/{made.id}/",
        {"name": "Managed IT 2026", "payment_terms_days": 30, "tax_rate": "12.5", "tax_label": "VAT"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["payment_terms_days"], body["tax_rate"], body["tax_label"]) == (
        "Managed IT 2026",
        30,
        "12.50",
        "VAT",
    )
    event = AuditEvent.objects.get(action="contract.updated")
    assert event.organization == acme and event.target_id == str(made.id)
    assert event.changes["tax_rate"] == ["10.00", "12.50"] and event.changes["payment_terms_days"] == [14, 30]
    # The next invoice uses the new terms.
    invoices_generate(through=date(2026, 3, 10))
    invoice = Invoice.objects.get()
    assert (invoice.tax_rate, invoice.tax_label, invoice.due_date) == (Decimal("12.50"), "VAT", date(2026, 3, 31))


def test_the_end_date_moves_where_invoicing_stands(acme_key, acme):
    made = make_contract(acme, timing="ARREARS")
    invoices_generate(through=date(2026, 4, 1))  # March, in arrears
    path = f"/api/contracts/{made.id}/"
    response = acme_key.patch(path, {"end_date": "2026-03-20"}, format="json")
    assert response.status_code == 400 and "2026-04-01" in response.json()["end_date"][0]
    response = acme_key.patch(path, {"end_date": "2026-04-16"}, format="json")
    assert response.status_code == 200, response.content
    # April is now a 15-day piece, invoiced the day after it ends.
    assert (response.json()["next_period_start"], response.json()["next_invoice_on"]) == ("2026-04-01", "2026-04-16")
    response = acme_key.patch(path, {"auto_renew": True}, format="json")
    assert response.status_code == 400 and "renewal_term_months" in response.json()
    response = acme_key.patch(path, {"auto_renew": True, "renewal_term_months": 12}, format="json")
    assert response.status_code == 200 and response.json()["auto_renew"] is True
    # Ending it where invoicing stands leaves nothing to invoice: it ends.
    response = acme_key.patch(path, {"end_date": "2026-04-01", "auto_renew": False}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["next_invoice_on"]) == ("ENDED", None)


def test_a_line_change_in_an_invoiced_period_is_adjusted(acme_key, acme):
    made = make_contract(acme)
    invoices_generate(through=date(2026, 3, 10))  # March, in advance
    line = made.lines.get()
    response = acme_key.patch(f"/api/contracts/{made.id}/lines/{line.id}/", {"amount": "620.00"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["line"]["id"], body["line"]["amount"]) == (line.id, "620.00")
    # From today, 10 March: 22 of March's 31 days at 310.00 more = 220.00, on the next invoice.
    adjustment = body["adjustment"]
    assert (adjustment["amount"], adjustment["effective_on"], adjustment["invoice"]) == ("220.00", "2026-03-10", None)
    assert ContractAdjustment.objects.get().amount == 220
    response = acme_key.patch(
        f"/api/contracts/{made.id}/lines/{line.id}", {"amount": "310", "effective_on": "2026-04-01"}, format="json"
    )
    assert response.json()["adjustment"] is None  # April is not invoiced yet: it is priced as the line now is
    assert AuditEvent.objects.filter(action="contract.line_changed").count() == 2


def test_a_drafts_line_changes_without_an_adjustment(acme_key, acme):
    draft = make_contract(acme, activate=False, end_date=date(2026, 12, 1))
    line = draft.lines.get()
    response = acme_key.patch(f"/api/contracts/{draft.id}/lines/{line.id}/", {"quantity": "3"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["adjustment"] is None and response.json()["line"]["quantity"] == "3"
    assert not ContractAdjustment.objects.exists()


def test_a_line_is_added_after_the_others(acme_key, acme_contract):
    path = f"/api/contracts/{acme_contract.id}/lines/"
    response = acme_key.post(
        path,
        {"description": "Laptops", "pricing_model": "PER_UNIT", "unit_price": "45", "quantity": "12"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["position"], body["unit_price"], body["quantity"]) == (2, "45.00", "12")
    listed = acme_key.get(path).json()
    assert [row["description"] for row in listed["results"]] == ["Managed services", "API calls", "Laptops"]
    assert AuditEvent.objects.filter(action="contract.line_added").count() == 1


# -- usage -------------------------------------------------------------------------------------------------------------


def test_usage_is_recorded_once_per_idempotency_key(acme_key, acme_contract):
    path = f"/api/contracts/{acme_contract.id}/usage/"
    first = acme_key.post(
        path, {"metric": "api_calls", "quantity": "1200.5"}, format="json", HTTP_IDEMPOTENCY_KEY="batch-0310"
    )
    assert first.status_code == 201, first.content
    assert (first.json()["quantity"], first.json()["idempotency_key"]) == ("1200.5", "batch-0310")
    replay = acme_key.post(
        path, {"metric": "api_calls", "quantity": "1200.50"}, format="json", HTTP_IDEMPOTENCY_KEY="batch-0310"
    )
    assert replay.status_code == 200 and replay.json() == first.json()
    in_body = {"metric": "api_calls", "quantity": "1200.5", "idempotency_key": "batch-0310"}
    assert acme_key.post(path, in_body, format="json").json()["id"] == first.json()["id"]
    changed = acme_key.post(path, {**in_body, "quantity": "99"}, format="json")
    assert changed.status_code == 409 and "idempotency_key" in changed.json()
    clash = acme_key.post(path, in_body, format="json", HTTP_IDEMPOTENCY_KEY="another")
    assert clash.status_code == 400 and "idempotency_key" in clash.json()
    at = acme_key.post(
        path,
        {"metric": "api_calls", "quantity": "7", "recorded_at": "2026-03-09T23:00:00+11:00", "idempotency_key": "late"},
        format="json",
    )
    assert at.status_code == 201
    assert datetime.fromisoformat(at.json()["recorded_at"]) == datetime(2026, 3, 9, 23, 0, tzinfo=SYDNEY)
    listed = acme_key.get(path).json()
    assert [row["idempotency_key"] for row in listed["results"]] == ["batch-0310", "late"]  # latest first
    assert UsageRecord.objects.count() == 2


# -- bad input ---------------------------------------------------------------------------------------------------------


def test_bad_input_names_the_field(acme_key, acme_contract):
    contract_path = f"/api/contracts/{acme_contract.id}/"
    line = acme_contract.lines.all()[0]
    base = {"name": "New", "start_date": "2026-03-01"}
    cases = [
        ("post", "/api/contracts/", {"start_date": "2026-03-01"}, "name"),
        ("post", "/api/contracts/", {**base, "start_date": "2026-13-01"}, "start_date"),
        ("post", "/api/contracts/", {**base, "end_date": "2026-02-01"}, "end_date"),
        ("post", "/api/contracts/", {**base, "cycle": "FORTNIGHTLY"}, "cycle"),
        ("post", "/api/contracts/", {**base, "timing": "SOON"}, "timing"),
        ("post", "/api/contracts/", {**base, "anchor_day": 40}, "anchor_day"),
        ("post", "/api/contracts/", {**base, "anchor_day": "first"}, "anchor_day"),
        ("post", "/api/contracts/", {**base, "payment_terms_days": "net 30"}, "payment_terms_days"),
        ("post", "/api/contracts/", {**base, "payment_terms_days": 400}, "payment_terms_days"),
        ("post", "/api/contracts/", {**base, "tax_rate": "ten"}, "tax_rate"),
        ("post", "/api/contracts/", {**base, "tax_rate": "150"}, "tax_rate"),
        ("post", "/api/contracts/", {**base, "auto_renew": True, "end_date": "2027-03-01"}, "renewal_term_months"),
        ("post", "/api/contracts/", {**base, "lines": "Managed services"}, "lines"),
        ("post", "/api/contracts/", {**base, "lines": {"description": "x"}}, "lines"),
        ("post", "/api/contracts/", {**base, "lines": [1, 2]}, "lines"),
        ("post", "/api/contracts/", {**base, "lines": [{"description": "", "amount": "1"}]}, "lines[0].description"),
        ("post", "/api/contracts/", {**base, "lines": [FLAT, {**FLAT, "amount": "abc"}]}, "lines[1].amount"),
        ("post", "/api/contracts/", {**base, "lines": [{**FLAT, "amount": ["1"]}]}, "lines[0].amount"),
        ("post", "/api/contracts/", {**base, "lines": [{**CALLS, "tiers": "cheap"}]}, "lines[0].tiers"),
        ("post", "/api/contracts/", {**base, "lines": [{**FLAT, "pricing_model": "BARTER"}]}, "lines[0].pricing_model"),
        ("post", "/api/contracts/", [base], "non_field_errors"),
        ("post", "/api/contracts/", "name=New", "non_field_errors"),
        ("patch", contract_path, {"name": ""}, "name"),
        ("patch", contract_path, {"tax_rate": "101"}, "tax_rate"),
        ("patch", contract_path, {"payment_terms_days": -1}, "payment_terms_days"),
        ("patch", contract_path, {"end_date": "2026-02-28"}, "end_date"),
        ("patch", contract_path, {"end_date": "soon"}, "end_date"),
        ("patch", contract_path, {"renewal_term_months": 0}, "renewal_term_months"),
        ("patch", contract_path, {"auto_renew": True, "renewal_term_months": 12}, "end_date"),
        ("patch", contract_path, {"cycle": "ANNUAL"}, "cycle"),
        ("patch", contract_path, {}, "non_field_errors"),
        ("patch", contract_path, ["name"], "non_field_errors"),
        ("post", f"{contract_path}lines/", {"description": "Metered", "pricing_model": "USAGE"}, "metric"),
        ("post", f"{contract_path}lines/", {"pricing_model": "FLAT", "amount": "5"}, "description"),
        ("post", f"{contract_path}lines/", {**FLAT, "amount": "-5"}, "amount"),
        ("post", f"{contract_path}lines/", [FLAT], "non_field_errors"),
        ("patch", f"{contract_path}lines/{line.id}/", {"quantity": "abc"}, "quantity"),
        ("patch", f"{contract_path}lines/{line.id}/", {"amount": "-1"}, "amount"),
        ("patch", f"{contract_path}lines/{line.id}/", {}, "quantity"),
        ("patch", f"{contract_path}lines/{line.id}/", {"amount": "1", "effective_on": "2026-02-01"}, "effective_on"),
        ("patch", f"{contract_path}lines/{line.id}/", {"amount": "1", "effective_on": "1 March"}, "effective_on"),
        ("patch", f"{contract_path}lines/{line.id}/", {"description": "Renamed"}, "description"),
        ("post", f"{contract_path}usage/", {"metric": "api_calls", "quantity": "1"}, "idempotency_key"),
        (
            "post",
            f"{contract_path}usage/",
            {"metric": "api_calls", "quantity": "-1", "idempotency_key": "k"},
            "quantity",
        ),
        (
            "post",
            f"{contract_path}usage/",
            {"metric": "api_calls", "quantity": "lots", "idempotency_key": "k"},
            "quantity",
        ),
        ("post", f"{contract_path}usage/", {"quantity": "1", "idempotency_key": "k"}, "metric"),
        (
            "post",
            f"{contract_path}usage/",
            {"metric": "api_calls", "quantity": "1", "idempotency_key": "k", "recorded_at": "2026-03-09T10:00:00"},
            "recorded_at",
        ),
        (
            "post",
            f"{contract_path}usage/",
            {"metric": ["api_calls"], "quantity": "1", "idempotency_key": "k"},
            "metric",
        ),
        ("post", f"{contract_path}usage/", [{"metric": "api_calls"}], "non_field_errors"),
    ]
    for method, path, data, field in cases:
        response = getattr(acme_key, method)(path, data, format="json")
        assert response.status_code == 400, (path, data, response.content)
        assert field in response.json(), (path, data, response.json())
    assert Contract.objects.count() == 1 and ContractLine.objects.count() == 2
    assert not UsageRecord.objects.exists() and not ContractAdjustment.objects.exists()
    acme_contract.refresh_from_db()
    assert (acme_contract.name, acme_contract.tax_rate, acme_contract.end_date) == ("Managed IT", 10, None)


def test_unknown_or_malformed_ids_are_404(acme_key, acme_contract):
    line = acme_contract.lines.all()[0]
    paths = (
        "/api/contracts/not-a-uuid/",
        f"/api/contracts/{uuid.uuid4()}/",
        f"/api/contracts/{uuid.uuid4()}/lines/",
        f"/api/contracts/{acme_contract.id}/lines/abc/",
        f"/api/contracts/{acme_contract.id}/lines/99999999/",
        f"/api/contracts/{uuid.uuid4()}/usage/",
    )
    for path in paths:
        assert acme_key.get(path).status_code in (404, 405), path
        assert acme_key.patch(path, {"amount": "1"}, format="json").status_code in (404, 405), path
    assert (
        acme_key.patch(
            f"/api/contracts/{acme_contract.id}/lines/{line.id + 1000}/", {"amount": "1"}, format="json"
        ).status_code
        == 404
    )


# -- lists and filters -------------------------------------------------------------------------------------------------


def test_list_filters(acme_key, acme):
    monthly = make_contract(acme, name="Monthly")
    annual = make_contract(acme, name="Annual", cycle="ANNUAL")
    draft = make_contract(acme, name="Draft", activate=False, cycle="QUARTERLY")

    def listed(query: str) -> set[str]:
        return set(ids(acme_key.get(f"/api/contracts/?{query}")))

    assert listed("") == {str(monthly.id), str(annual.id), str(draft.id)}
    assert listed("status=ACTIVE") == {str(monthly.id), str(annual.id)}
    assert listed("status=DRAFT") == {str(draft.id)}
    assert listed("cycle=ANNUAL,QUARTERLY") == {str(annual.id), str(draft.id)}
    assert listed("status=ACTIVE&cycle=MONTHLY") == {str(monthly.id)}
    assert listed(f"organization={acme.id}") == listed("organization=acme") == listed("")
    assert listed("organization=globex") == set()
    for bad, field in (("cycle=FORTNIGHTLY", "cycle"), ("status=LIVE", "status")):
        response = acme_key.get(f"/api/contracts/?{bad}")
        assert response.status_code == 400 and field in response.json(), bad


def test_a_partner_key_lists_across_its_organizations_and_writes_for_one(
    api, summit_raw, acme, initech, globex_contract
):
    acme_made = make_contract(acme, name="Acme IT")
    initech_made = make_contract(initech, name="Initech IT")
    partner = api(summit_raw)
    response = partner.get("/api/contracts/")
    globex_free(response)
    assert ids(response) == [str(acme_made.id), str(initech_made.id)]
    assert ids(partner.get("/api/contracts/?organization=initech")) == [str(initech_made.id)]
    assert ids(partner.get(f"/api/contracts/?organization={initech.id}")) == [str(initech_made.id)]
    response = partner.post("/api/contracts/", {"name": "X", "start_date": "2026-03-01"}, format="json")
    assert response.status_code == 400 and "X-Organization" in response.json()
    response = api(summit_raw, organization="initech").post(
        "/api/contracts/", {"name": "Initech backup", "start_date": "2026-03-01", "lines": [FLAT]}, format="json"
    )
    assert response.status_code == 201 and response.json()["organization"] == "initech"


# -- who may do what ---------------------------------------------------------------------------------------------------


def test_customers_with_a_billing_role_read_and_never_write(alice, acme, acme_contract):
    client = session(alice)
    assert ids(client.get("/api/contracts/")) == [str(acme_contract.id)]
    assert client.get(f"/api/contracts/{acme_contract.id}/").status_code == 200
    assert client.get(f"/api/contracts/{acme_contract.id}/lines/").status_code == 200
    assert client.get(f"/api/contracts/{acme_contract.id}/usage/").status_code == 200
    line = acme_contract.lines.all()[0]
    writes = [
        ("post", "/api/contracts/", {"name": "Mine", "start_date": "2026-03-01"}),
        ("patch", f"/api/contracts/{acme_contract.id}/", {"name": "Mine"}),
        ("post", f"/api/contracts/{acme_contract.id}/activate/", {}),
        ("post", f"/api/contracts/{acme_contract.id}/lines/", FLAT),
        ("patch", f"/api/contracts/{acme_contract.id}/lines/{line.id}/", {"amount": "1"}),
        (
            "post",
            f"/api/contracts/{acme_contract.id}/usage/",
            {"metric": "api_calls", "quantity": "1", "idempotency_key": "k"},
        ),
    ]
    for method, path, data in writes:
        assert getattr(client, method)(path, data, format="json").status_code == 403, path
    manager = UserFactory(email="mia@acme.test")
    MembershipFactory(user=manager, organization=acme, role=Role.MANAGER)
    assert ids(session(manager).get("/api/contracts/")) == [str(acme_contract.id)]
    assert Contract.objects.get().name == "Managed IT" and not UsageRecord.objects.exists()


def test_plain_members_get_403(bob, acme_contract):
    client = session(bob)
    for path in (
        "/api/contracts/",
        f"/api/contracts/{acme_contract.id}/",
        f"/api/contracts/{acme_contract.id}/lines/",
        f"/api/contracts/{acme_contract.id}/usage/",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "owners, admins and managers" in response.json()["detail"]


def test_a_customer_sees_only_the_organizations_where_they_hold_a_billing_role(acme, initech, bob, pat):
    MembershipFactory(user=bob, organization=initech, role=Role.OWNER)
    make_contract(acme, name="Acme IT")
    initech_made = make_contract(initech, name="Initech IT")
    client = session(bob)
    assert ids(client.get("/api/contracts/")) == [str(initech_made.id)]  # a member at Acme, the owner at Initech
    assert client.get("/api/contracts/", HTTP_X_ORGANIZATION="acme").status_code == 403
    # A partner admin reads the billing of the partner's organizations.
    assert len(ids(session(pat).get("/api/contracts/"))) == 2


def test_staff_change_contracts(tess, acme_contract):
    client = session(tess)
    response = client.patch(f"/api/contracts/{acme_contract.id}/", {"name": "Managed IT (staff)"}, format="json")
    assert response.status_code == 200, response.content
    assert AuditEvent.objects.get(action="contract.updated").actor == tess
    response = client.post(
        "/api/contracts/", {"name": "Staff made", "start_date": "2026-04-01", "lines": [FLAT]}, format="json"
    )
    assert response.status_code == 201


def test_keys_need_the_billing_scopes(api, acme, api_key_for, acme_contract):
    line = acme_contract.lines.all()[0]
    _, base_only = api_key_for(organization=acme, scopes=("read", "write"))
    response = api(base_only).get("/api/contracts/")
    assert response.status_code == 403 and "billing:read" in response.json()["detail"]
    _, reader = api_key_for(organization=acme, scopes=("read", "billing:read"))
    reading = api(reader)
    assert reading.get("/api/contracts/").status_code == 200
    assert reading.get(f"/api/contracts/{acme_contract.id}/usage/").status_code == 200
    writes = [
        ("post", "/api/contracts/", {"name": "New", "start_date": "2026-03-01"}),
        ("patch", f"/api/contracts/{acme_contract.id}/", {"name": "New"}),
        ("post", f"/api/contracts/{acme_contract.id}/activate/", {}),
        ("post", f"/api/contracts/{acme_contract.id}/lines/", FLAT),
        ("patch", f"/api/contracts/{acme_contract.id}/lines/{line.id}/", {"amount": "1"}),
        (
            "post",
            f"/api/contracts/{acme_contract.id}/usage/",
            {"metric": "api_calls", "quantity": "1", "idempotency_key": "k"},
        ),
    ]
    for method, path, data in writes:
        response = getattr(reading, method)(path, data, format="json")
        assert response.status_code == 403 and "billing:write" in response.json()["detail"], path
    _, no_base = api_key_for(organization=acme, scopes=("billing:read",))
    assert api(no_base).get("/api/contracts/").status_code == 403
    assert Contract.objects.get().name == "Managed IT"


def test_anonymous_callers_are_refused(api, acme_contract):
    assert api(None).get("/api/contracts/").status_code in (401, 403)


# -- tenant isolation of every route -----------------------------------------------------------------------------------


@pytest.mark.isolation("api-contract-list")
def test_the_list_never_shows_another_organization(
    alice, acme_key, api, summit_raw, tess, acme_contract, globex_contract, carol
):
    for client in (session(alice), acme_key, api(summit_raw), api(summit_raw, organization="acme"), session(tess)):
        response = client.get("/api/contracts/")
        globex_free(response)
        assert ids(response) == [str(acme_contract.id)]
        assert ids(client.get("/api/contracts/?organization=globex")) == []
        assert ids(client.get(f"/api/contracts/?organization={globex_contract.organization_id}")) == []
    # Naming Globex as the organization to act for is 404, to read or to write.
    for client in (session(alice), acme_key, api(summit_raw), session(tess)):
        assert client.get("/api/contracts/", HTTP_X_ORGANIZATION="globex").status_code == 404
        response = client.post(
            "/api/contracts/",
            {"name": "Into Globex", "start_date": "2026-03-01", "lines": [FLAT]},
            format="json",
            HTTP_X_ORGANIZATION="globex",
        )
        assert response.status_code == 404
    assert ids(session(carol).get("/api/contracts/")) == [str(globex_contract.id)]
    assert Contract.objects.filter(organization=globex_contract.organization).count() == 1


@pytest.mark.isolation("api-contract-detail")
def test_another_organizations_contract_is_404(acme_callers, acme_contract, globex_contract, carol):
    for client, write_status in acme_callers:
        path = f"/api/contracts/{globex_contract.id}/"
        response = client.get(path)
        assert response.status_code == 404
        globex_free(response)
        assert client.patch(path, {"name": "Owned"}, format="json").status_code == write_status
    carol_api = session(carol)
    assert carol_api.get(f"/api/contracts/{acme_contract.id}/").status_code == 404
    globex_contract.refresh_from_db()
    assert globex_contract.name == "Globex payroll"


@pytest.mark.isolation("api-contract-activate")
def test_another_organizations_contract_cannot_be_activated(acme_key, api, summit_raw, globex, carol, acme):
    draft = make_contract(globex, activate=False, name="Globex payroll")
    acme_draft = make_contract(acme, activate=False)
    for client in (acme_key, api(summit_raw, organization="acme")):
        response = client.post(f"/api/contracts/{draft.id}/activate/")
        assert response.status_code == 404
        globex_free(response)
    assert session(carol).post(f"/api/contracts/{acme_draft.id}/activate/").status_code in (403, 404)
    assert set(Contract.objects.values_list("status", flat=True)) == {ContractStatus.DRAFT}


@pytest.mark.isolation("api-contract-lines")
def test_another_organizations_lines_cannot_be_read_or_added(acme_callers, acme_contract, globex_contract, carol):
    for client, write_status in acme_callers:
        path = f"/api/contracts/{globex_contract.id}/lines/"
        response = client.get(path)
        assert response.status_code == 404
        globex_free(response)
        assert client.post(path, FLAT, format="json").status_code == write_status
    assert session(carol).get(f"/api/contracts/{acme_contract.id}/lines/").status_code == 404
    assert ContractLine.objects.filter(contract=globex_contract).count() == 2


@pytest.mark.isolation("api-contract-line-detail")
def test_another_organizations_line_cannot_be_changed(acme_key, api, summit_raw, acme_contract, globex_contract, tess):
    globex_line = globex_contract.lines.all()[0]
    for client in (acme_key, api(summit_raw, organization="acme"), session(tess)):
        response = client.patch(
            f"/api/contracts/{globex_contract.id}/lines/{globex_line.id}/", {"amount": "1"}, format="json"
        )
        assert response.status_code == 404
        globex_free(response)
        # Acme's contract with Globex's line id: still 404.
        response = client.patch(
            f"/api/contracts/{acme_contract.id}/lines/{globex_line.id}/", {"amount": "1"}, format="json"
        )
        assert response.status_code == 404
    globex_line.refresh_from_db()
    assert globex_line.amount == 310


@pytest.mark.isolation("api-contract-usage")
def test_another_organizations_usage_cannot_be_read_or_recorded(acme_callers, acme_contract, globex_contract, carol):
    for client, write_status in acme_callers:
        path = f"/api/contracts/{globex_contract.id}/usage/"
        response = client.get(path)
        assert response.status_code == 404
        globex_free(response)
        response = client.post(
            path, {"metric": "api_calls", "quantity": "5", "idempotency_key": "globex-1"}, format="json"
        )
        assert response.status_code == write_status
    assert session(carol).get(f"/api/contracts/{acme_contract.id}/usage/").status_code == 404
    # Idempotency keys are per organization: Acme's "globex-1" is its own record.
    response = acme_callers[1][0].post(
        f"/api/contracts/{acme_contract.id}/usage/",
        {"metric": "api_calls", "quantity": "1", "idempotency_key": "globex-1"},
        format="json",
    )
    assert response.status_code == 201
    assert UsageRecord.objects.filter(contract=globex_contract).count() == 1


# -- query counts ------------------------------------------------------------------------------------------------------


def test_contract_lists_do_not_grow_with_the_page(acme, acme_key, alice, django_assert_max_num_queries):
    def add(count: int) -> None:
        for n in range(count):
            made = make_contract(acme, FLAT, CALLS, name=f"Contract {n:02d}")
            usage_record(contract=made, metric="api_calls", quantity=n + 1, idempotency_key=f"k{made.id}")

    acme_key.get("/api/contracts/")  # the key's first use records last_used_at; later calls in the minute do not
    add(3)
    # The key (with its organization), COUNT, the page with organizations, the page's lines.
    with django_assert_max_num_queries(4):
        small = acme_key.get("/api/contracts/")
    add(27)
    with django_assert_max_num_queries(4):
        large = acme_key.get("/api/contracts/")
    assert len(small.json()["results"]) == 3 and len(large.json()["results"]) == 30
    # Usage and lines: the key, the contract with its lines, COUNT, the page.
    made = Contract.objects.order_by("name")[0]
    for n in range(30):
        usage_record(contract=made, metric="api_calls", quantity=1, idempotency_key=f"extra-{n}")
    with django_assert_max_num_queries(5):
        assert len(acme_key.get(f"/api/contracts/{made.id}/usage/").json()["results"]) == 31
    with django_assert_max_num_queries(5):
        acme_key.get(f"/api/contracts/{made.id}/lines/")
    # Session: the user, her confirmed TOTP devices and the organizations requiring two factors (the second-factor
    # check), the organizations visible to her, her role, COUNT, the page, its lines, and the session's save (a
    # savepoint, the UPDATE, its release); the same for 3 rows as for 30.
    alice_api = session(alice)
    alice_api.get("/api/contracts/")
    assert count_queries(alice_api, "/api/contracts/?page_size=3") == count_queries(
        alice_api, "/api/contracts/?page_size=30"
    )
    with django_assert_max_num_queries(11):
        alice_api.get("/api/contracts/?page_size=30")


# -- wrong JSON types --------------------------------------------------------------------------------------------------


def test_wrong_json_types_are_4xx_never_500(acme_key, acme_contract):
    """Every field of every body, and every body as a whole, given values of the wrong type or out of range."""
    line = acme_contract.lines.all()[0]
    base = f"/api/contracts/{acme_contract.id}/"
    line_fields = [
        "description",
        "pricing_model",
        "amount",
        "unit_price",
        "quantity",
        "included_quantity",
        "tiers",
        "metric",
        "overage_rate",
    ]
    routes: list[tuple[str, str, dict[str, Any], list[str]]] = [
        (
            "post",
            "/api/contracts/",
            {"name": "Fuzz", "start_date": "2026-03-01", "lines": [FLAT]},
            [
                "name",
                "start_date",
                "end_date",
                "cycle",
                "anchor_day",
                "timing",
                "payment_terms_days",
                "tax_rate",
                "tax_label",
                "auto_renew",
                "renewal_term_months",
                "lines",
                "activate",
            ],
        ),
        (
            "patch",
            base,
            {"name": "Fuzz"},
            ["name", "payment_terms_days", "tax_label", "tax_rate", "end_date", "auto_renew", "renewal_term_months"],
        ),
        ("post", f"{base}lines/", dict(FLAT), line_fields),
        ("patch", f"{base}lines/{line.id}/", {"quantity": "2"}, ["quantity", "unit_price", "amount", "effective_on"]),
        (
            "post",
            f"{base}usage/",
            {"metric": "api_calls", "quantity": "1", "idempotency_key": "fuzz"},
            ["metric", "quantity", "recorded_at", "idempotency_key"],
        ),
    ]
    codes = set()
    for method, path, body, fields in routes:
        for value in WRONG_VALUES:
            codes.add(send(acme_key, method, path, value).status_code)
            for field in fields:
                codes.add(send(acme_key, method, path, {**body, field: value}).status_code)
    create, usage = routes[0][2], routes[4][2]
    for value in WRONG_VALUES:
        for field in line_fields:
            codes.add(
                send(acme_key, "post", "/api/contracts/", {**create, "lines": [{**FLAT, field: value}]}).status_code
            )
        for field in ("up_to", "unit_price", "flat_fee"):
            lines = [{**CALLS, "tiers": [{"up_to": "10", "unit_price": "1", field: value}]}]
            codes.add(send(acme_key, "post", "/api/contracts/", {**create, "lines": lines}).status_code)
        codes.add(send(acme_key, "post", f"{base}usage/", usage, HTTP_IDEMPOTENCY_KEY=str(value)).status_code)
    assert codes <= {200, 201, 400, 409}, codes
    assert 400 in codes


def test_a_value_the_database_refuses_is_400_not_500(acme_key, acme_contract, monkeypatch):
    """The last line of defence: validation let a value through that a column cannot hold."""
    from billing import api_contracts

    def refuse(**kwargs):
        raise DataError("numeric field overflow")

    monkeypatch.setattr(api_contracts, "contract_update", refuse)
    response = acme_key.patch(f"/api/contracts/{acme_contract.id}/", {"name": "Bigger"}, format="json")
    assert response.status_code == 400 and "non_field_errors" in response.json()
