"""The replies page: what contacts texted back, newest first, from every campaign or one, and as CSV; keywords are
not replies; another organization's replies and campaigns never show, and its campaign is a 404."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sms.models import Campaign, InboundKind, InboundMessage
from sms.services.contacts import contact_create

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
AT = datetime(2026, 11, 10, 9, 30, tzinfo=SYDNEY)
_sids = iter(range(1, 1_000_000))


def inbound(organization: Any, body: str, *, at: datetime = AT, kind: str = InboundKind.REPLY, **fields: Any) -> Any:
    fields.setdefault("from_e164", "+61412000001")
    return InboundMessage.objects.create(
        organization=organization, provider_sid=f"SM{next(_sids):032x}", to_e164="+61480000001", body=body,
        kind=kind, received_at=at, **fields,
    )  # fmt: skip


@pytest.fixture
def acme_replies(acme: Any) -> dict[str, Any]:
    ann = contact_create(organization=acme, phone="+61412345678", data={"first_name": "Ann", "last_name": "Lee"})
    spring = Campaign.objects.create(organization=acme, name="Spring")
    winter = Campaign.objects.create(organization=acme, name="Winter")
    Campaign.objects.create(organization=acme, name="Quiet")  # no replies: not offered in the filter
    inbound(acme, "Is it still on?", contact=ann, campaign=spring, from_e164=ann.phone_e164)
    inbound(acme, "Who is this?", campaign=winter, at=AT + timedelta(minutes=5), from_e164="+61412999888")
    inbound(acme, "UNSUBSCRIBE", kind=InboundKind.OPT_OUT, at=AT + timedelta(minutes=6))
    return {"ann": ann, "spring": spring, "winter": winter}


@pytest.fixture
def globex_campaign(globex: Any) -> Any:
    campaign = Campaign.objects.create(organization=globex, name="Globex Deals")
    inbound(globex, "Globex secret reply", campaign=campaign)
    return campaign


@pytest.mark.isolation("portal:messaging_replies")
def test_replies_are_listed_newest_first_with_who_and_which_campaign(client_for, alice, acme_replies, globex_campaign):
    response = client_for(alice).get("/messaging/replies/")
    assert response.status_code == 200
    page = response.content.decode()
    assert [reply.body for reply in response.context["page"]] == ["Who is this?", "Is it still on?"]
    assert "UNSUBSCRIBE" not in page  # a keyword, handled for them
    assert f'href="/messaging/contacts/{acme_replies["ann"].pk}/"' in page and "Ann Lee" in page
    assert "+61412999888" in page and "not a contact" in page
    assert "10 Nov 2026, 09:35" in page  # in Sydney
    assert [c["name"] for c in response.context["campaigns"]] == ["Winter", "Spring"]
    assert "Globex" not in page
    assert 'aria-current="page">Replies' in page


def test_replies_are_filtered_by_campaign_and_another_organizations_campaign_is_a_404(
    client_for, alice, acme_replies, globex_campaign
):
    client = client_for(alice)
    spring = client.get(f"/messaging/replies/?campaign={acme_replies['spring'].pk}")
    assert [reply.body for reply in spring.context["page"]] == ["Is it still on?"]
    assert "1 reply to Spring" in spring.content.decode()
    assert client.get(f"/messaging/replies/?campaign={globex_campaign.pk}").status_code == 404
    assert client.get("/messaging/replies/?campaign=not-a-uuid").status_code == 404


def test_members_who_do_not_run_messaging_get_403(client_for, bob, acme_replies):
    assert client_for(bob).get("/messaging/replies/").status_code == 403


def test_no_replies_yet(client_for, alice):
    page = client_for(alice).get("/messaging/replies/").content.decode()
    assert "No replies yet." in page


@pytest.mark.parametrize("count", [2, 20])
def test_the_page_costs_the_same_queries_however_many_replies(client_for, alice, acme, count):
    campaign = Campaign.objects.create(organization=acme, name="Spring")
    for n in range(count):
        ann = contact_create(organization=acme, phone=f"+614120000{n:02d}", data={"first_name": f"Ann{n}"})
        inbound(acme, f"Reply {n}", contact=ann, campaign=campaign, at=AT + timedelta(seconds=n))
    client = client_for(alice)
    client.get("/messaging/replies/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/messaging/replies/").status_code == 200
    assert len(queries) == 3  # the count, one page with contacts and campaigns, the campaigns offered


@pytest.mark.isolation("portal:messaging_replies_export")
def test_replies_download_as_csv_with_formulas_neutralised(client_for, alice, acme, acme_replies, globex_campaign):
    inbound(acme, '=HYPERLINK("https://evil.test","Click")', at=AT + timedelta(minutes=9), from_e164="+61412777666")
    client = client_for(alice)
    response = client.get("/messaging/replies/export.csv")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="replies.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["received_at", "phone", "name", "campaign", "body"],
        ["2026-11-10T09:39:00+11:00", "'+61412777666", "", "", '\'=HYPERLINK("https://evil.test","Click")'],
        ["2026-11-10T09:35:00+11:00", "'+61412999888", "", "Winter", "Who is this?"],
        ["2026-11-10T09:30:00+11:00", "'+61412345678", "Ann Lee", "Spring", "Is it still on?"],
    ]
    spring = client.get(f"/messaging/replies/export.csv?campaign={acme_replies['spring'].pk}")
    assert spring["Content-Disposition"] == f'attachment; filename="replies-{acme_replies["spring"].pk}.csv"'
    assert b"".join(spring.streaming_content).decode().splitlines()[1:] == [
        "2026-11-10T09:30:00+11:00,'+61412345678,Ann Lee,Spring,Is it still on?"
    ]
    assert client.get(f"/messaging/replies/export.csv?campaign={globex_campaign.pk}").status_code == 404
    assert 'href="/messaging/replies/export.csv"' in client.get("/messaging/replies/").content.decode()
