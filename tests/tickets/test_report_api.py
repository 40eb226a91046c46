"""The SLA report in the API (``GET /api/tickets/sla-report/``) and on the staff page (``/admin/tickets/sla-report/``):
the figures as JSON, scopes, tenant isolation (organization keys, partner keys, sessions), bad input named by field,
query counts, the schema; the staff page's guard (staff with a second factor and ticket permission), its form, tables
and SVG charts.

Time stands still on Friday 20 November 2026, 12:00 in Sydney (01:00 UTC). Acme (Sydney) and Initech (Perth) belong
to Summit; Globex (New York) does not. Core+ P1: first response 2 h, resolution 8 h, business hours 08:00-18:00.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenancy.models import Organization
from tests.factories import OrganizationFactory, UserFactory
from tests.helpers import admin_client
from tests.tickets.stories import ticket

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=SYDNEY)
ALL_SCOPES = ("read", "write", "tickets:read", "tickets:write")
URL = "/api/tickets/sla-report/"
NOVEMBER = "?from=2026-11-01&to=2026-11-20"
PAGE = "/admin/tickets/sla-report/"


def sydney(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SYDNEY)


@pytest.fixture(autouse=True)
def friday_noon(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def tess(db):
    return UserFactory(email="tess@keel.test", full_name="Tess Tech", is_staff=True)


@pytest.fixture
def desk(acme, initech, globex, tess) -> None:
    """Acme: a P1 answered in 30 min and resolved in 3 h, a P1 answered after 3 h (breached) and still open.
    Initech: a P2 nobody answered, long overdue. Globex: three P1s, all answered days late."""
    ticket(acme, "P1", sydney(2, 9), replied=sydney(2, 9, 30), resolved=sydney(2, 12), assignee=tess)
    ticket(acme, "P1", sydney(3, 9), replied=sydney(3, 12))
    ticket(initech, "P2", sydney(4, 9))
    for day in (2, 3, 4):
        opened = datetime(2026, 11, day, 9, tzinfo=NEW_YORK)
        ticket(globex, "P1", opened, replied=opened + timedelta(days=3))


@pytest.fixture
def acme_key(api, acme, api_key_for) -> APIClient:
    _, raw = api_key_for(organization=acme, scopes=ALL_SCOPES)
    return api(raw)


@pytest.fixture
def summit_raw(summit, api_key_for) -> str:
    _, raw = api_key_for(partner=summit, scopes=ALL_SCOPES)
    return raw


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def report(client, query: str = NOVEMBER, **headers) -> dict:
    response = client.get(URL + query, **headers)
    assert response.status_code == 200, response.content
    assert "globex" not in response.content.decode().lower()
    return response.json()


# -- the figures ------------------------------------------------------------------------------------------------------


def test_an_organization_key_reads_its_report(acme_key, desk):
    body = report(acme_key, NOVEMBER + "&group_by=priority")
    assert (body["from"], body["to"], body["group_by"]) == ("2026-11-01", "2026-11-20", "priority")
    assert (body["start"], body["end"]) == ("2026-11-01T00:00:00Z", "2026-11-21T00:00:00Z")
    assert datetime.fromisoformat(body["generated_at"]) == NOW
    overall = body["overall"]
    assert (overall["key"], overall["name"], overall["tickets"], overall["breached_tickets"]) == (
        None, "All tickets", 2, 1
    )  # fmt: skip
    # Answered after 30 min (met) and 3 h (breached).
    assert overall["first_response"] == {
        "met": 1, "breached": 1, "compliance": "50.0", "median_seconds": 6300, "mean_seconds": 6300
    }  # fmt: skip
    # Resolved in 3 h (met); the other, open since 3 November, is long past its 8 hours.
    assert overall["resolution"] == {
        "met": 1, "breached": 1, "compliance": "50.0", "median_seconds": 3 * 3600, "mean_seconds": 3 * 3600
    }  # fmt: skip
    assert overall["backlog"] == {
        "total": 1, "under_1_day": 0, "days_1_to_3": 0, "days_3_to_7": 0, "days_7_to_30": 1, "over_30_days": 0
    }  # fmt: skip
    assert [(group["key"], group["name"], group["tickets"]) for group in body["groups"]] == [
        ("P1", "P1 critical", 2), ("P2", "P2 high", 0), ("P3", "P3 medium", 0), ("P4", "P4 low", 0)
    ]  # fmt: skip
    assert body["groups"][1]["first_response"]["compliance"] is None
    # Without group_by: the overall figures only.
    plain = report(acme_key)
    assert plain["group_by"] is None and plain["groups"] == [] and plain["overall"] == overall


def test_technicians_are_grouped_by_id_with_the_unassigned_last(acme_key, desk, tess):
    groups = report(acme_key, NOVEMBER + "&group_by=technician")["groups"]
    assert [(group["key"], group["name"], group["tickets"]) for group in groups] == [
        (str(tess.pk), "Tess Tech", 1),
        (None, "Unassigned", 1),
    ]


def test_the_path_without_a_trailing_slash_is_the_report_not_a_ticket(acme_key, desk):
    response = acme_key.get("/api/tickets/sla-report" + NOVEMBER)
    assert response.status_code == 200
    assert response.json()["overall"]["tickets"] == 2


# -- who sees what ----------------------------------------------------------------------------------------------------


@pytest.mark.isolation("api-ticket-sla-report")
def test_globex_tickets_never_count_for_acme(acme_key, alice, desk, api, summit_raw):
    for client in (acme_key, session(alice)):
        body = report(client, NOVEMBER + "&group_by=organization")
        assert [group["key"] for group in body["groups"]] == ["acme"]
        assert body["overall"]["tickets"] == 2
        response = client.get(URL + NOVEMBER, HTTP_X_ORGANIZATION="globex")
        assert response.status_code == 404
        assert "breached" not in response.content.decode()
    # A partner key sees its own organizations, all of them without X-Organization, never Globex.
    partner = api(summit_raw)
    body = report(partner, NOVEMBER + "&group_by=organization")
    assert [(group["key"], group["tickets"]) for group in body["groups"]] == [("acme", 2), ("initech", 1)]
    assert body["overall"]["tickets"] == 3 and body["overall"]["backlog"]["total"] == 2
    assert report(partner, NOVEMBER, HTTP_X_ORGANIZATION="initech")["overall"]["tickets"] == 1
    assert partner.get(URL + NOVEMBER, HTTP_X_ORGANIZATION="globex").status_code == 404


def test_carol_sees_only_globex(carol, desk):
    body = session(carol).get(URL + NOVEMBER + "&group_by=organization").json()
    assert [(group["key"], group["tickets"]) for group in body["groups"]] == [("globex", 3)]
    assert body["overall"]["first_response"]["breached"] == 3


def test_keys_need_the_ticket_read_scope(api, acme, api_key_for):
    _, base_only = api_key_for(organization=acme, scopes=("read", "write"))
    response = api(base_only).get(URL + NOVEMBER)
    assert response.status_code == 403 and "tickets:read" in response.json()["detail"]
    _, reader = api_key_for(organization=acme, scopes=("read", "tickets:read"))
    assert api(reader).get(URL + NOVEMBER).status_code == 200
    assert api(None).get(URL + NOVEMBER).status_code in (401, 403)


# -- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ("?to=2026-11-20", "from", "required"),
        ("?from=2026-11-01", "to", "required"),
        ("?from=2026-13-01&to=2026-11-20", "from", "YYYY-MM-DD"),
        ("?from=yesterday&to=2026-11-20", "from", "YYYY-MM-DD"),
        ("?from=2026-11-01&to=2026-11-31", "to", "YYYY-MM-DD"),
        ("?from=2026-11-20&to=2026-11-01", "to", "on or after from"),
        ("?from=2025-01-01&to=2026-01-02", "to", "at most 366 days"),
        (NOVEMBER + "&group_by=requester", "group_by", "priority, organization, technician"),
    ],
)
def test_bad_input_is_400_naming_the_field(acme_key, query, field, reason):
    response = acme_key.get(URL + query)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert reason in body[field][0]


def test_a_year_including_a_leap_day_is_allowed(acme_key):
    assert acme_key.get(URL + "?from=2024-01-01&to=2024-12-31").status_code == 200
    assert acme_key.get(URL + "?from=2026-11-01&to=2026-11-01&group_by=").json()["group_by"] is None


# -- queries and schema -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 15])
def test_queries_do_not_grow_with_tickets(acme_key, size, django_assert_max_num_queries):
    organization = Organization.objects.get(slug="acme")
    technicians = [UserFactory(is_staff=True) for _ in range(min(size, 6))]
    for index in range(size):
        opened = sydney(2, 9) + timedelta(minutes=20 * index)
        ticket(organization, f"P{index % 4 + 1}", opened, replied=opened + timedelta(minutes=5),
               resolved=opened + timedelta(hours=1) if index % 3 else None,
               assignee=technicians[index % len(technicians)])  # fmt: skip
    acme_key.get(URL + NOVEMBER)  # the key's first use records last_used_at
    # The key (with its organization); the counts, the stopped clocks, the backlog.
    with django_assert_max_num_queries(4):
        body = report(acme_key, NOVEMBER + "&group_by=technician")
    assert body["overall"]["tickets"] == size
    assert len(body["groups"]) == len(technicians)


def test_the_schema_documents_the_report(client, db):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/tickets/sla-report/"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["from"]["required"] and parameters["to"]["required"]
    assert sorted(parameters["group_by"]["schema"]["enum"]) == ["organization", "priority", "technician"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SlaReport")
    figures = schema["components"]["schemas"]["SlaReportFigures"]["properties"]
    assert {"key", "name", "tickets", "breached_tickets", "first_response", "resolution", "backlog"} <= set(figures)


# -- the staff page ---------------------------------------------------------------------------------------------------


@pytest.fixture
def sam(db):
    return UserFactory(email="sam@keel.test", full_name="Sam Staff", is_staff=True, is_superuser=True)


def svg_of(body: str) -> list[str]:
    """The report's charts (the admin draws icons as SVG too)."""
    return re.findall(r'<svg[^>]*\bid="[a-z]+-chart".*?</svg>', body, flags=re.DOTALL)


@pytest.mark.isolation("staff-sla-report")
def test_customers_and_staff_without_a_second_factor_are_sent_to_the_admin_sign_in(
    client_for, alice, carol, sam, desk, client
):
    for visitor in (client, client_for(alice), client_for(carol), client_for(sam)):
        response = visitor.get(PAGE + NOVEMBER + "&group_by=organization")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=/admin/tickets/sla-report/")
        assert b"Globex" not in response.content and b"Acme" not in response.content


def test_staff_read_every_organizations_report_with_charts(sam, desk):
    staff = admin_client(sam)
    response = staff.get(PAGE + NOVEMBER + "&group_by=organization")
    assert response.status_code == 200
    body = response.content.decode()
    assert [row["label"] for row in response.context["table"]] == [
        "Acme Pty Ltd", "Globex Corporation", "Initech", "All tickets"
    ]  # fmt: skip
    acme_row = response.context["table"][0]
    assert acme_row["clocks"][0] == (1, 1, "50.0 %", "1 h 45 min", "1 h 45 min")
    compliance, backlog = svg_of(body)
    assert 'id="compliance-chart"' in compliance and "<title" in compliance
    # Acme's first response at 50 %: half of the 380-unit scale; Globex's and Initech's at 0 %.
    assert 'width="190"' in compliance and 'width="0"' in compliance and "no data" not in compliance
    assert "Acme Pty Ltd, First response: 50.0 %" in compliance
    # Open now: Acme's second P1, Initech's P2 (both 7-30 days) and Globex's three (answered, never resolved).
    assert 'id="backlog-chart"' in backlog and "7 to 30 days, Open tickets: 5" in backlog
    for chart in (compliance, backlog):
        assert "style=" not in chart and "<script" not in chart
    assert "<script>" not in body  # no inline script anywhere on the page


def test_staff_narrow_the_report_to_one_organization(sam, desk, acme):
    response = admin_client(sam).get(PAGE + NOVEMBER + f"&organization={acme.pk}&group_by=priority")
    assert response.status_code == 200
    assert response.context["report"].overall.tickets == 2
    compliance, _ = svg_of(response.content.decode())
    assert "Globex" not in compliance and "Initech" not in compliance
    # Only P1s were opened: the other priorities have no compliance to draw.
    assert "P1 critical, Resolution: 50.0 %" in compliance and "P4 low, Resolution: no data" in compliance


def test_the_page_defaults_to_the_last_30_days(sam, desk):
    response = admin_client(sam).get(PAGE)
    assert response.status_code == 200
    report_shown = response.context["report"]
    assert (report_shown.first_day.isoformat(), report_shown.last_day.isoformat()) == ("2026-10-22", "2026-11-20")
    assert report_shown.overall.tickets == 6


def test_bad_dates_are_form_errors(sam):
    staff = admin_client(sam)
    response = staff.get(PAGE + "?from=2026-11-20&to=2026-11-01")
    assert response.status_code == 400
    assert response.context["form"].errors == {"to": ["Must be on or after from."]}
    assert "Must be on or after from." in response.content.decode()
    response = staff.get(PAGE + "?from=someday&to=2026-11-01&group_by=colour")
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"from", "group_by"}
    assert "report" not in response.context


def test_staff_without_ticket_permission_are_refused(desk):
    clerk = UserFactory(email="clerk@keel.test", is_staff=True)
    staff = admin_client(clerk)
    assert staff.get(PAGE + NOVEMBER).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_ticket", content_type__app_label="tickets"))
    assert staff.get(PAGE + NOVEMBER).status_code == 200


def test_the_tickets_admin_links_to_the_report(sam):
    response = admin_client(sam).get("/admin/tickets/")
    assert response.status_code == 200
    assert f'href="{PAGE}"' in response.content.decode()


def test_the_page_queries_do_not_grow_with_organizations(sam, django_assert_max_num_queries):
    staff = admin_client(sam)
    staff.get(PAGE)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(PAGE + NOVEMBER + "&group_by=organization").status_code == 200
        return len(captured)

    few = count()
    for index in range(8):
        organization = OrganizationFactory()
        ticket(organization, "P3", sydney(2 + index % 3, 9), replied=sydney(2 + index % 3, 10))
    assert count() == few
    with django_assert_max_num_queries(few):
        staff.get(PAGE + NOVEMBER + "&group_by=technician")
