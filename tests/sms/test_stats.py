"""Campaign statistics from hand-made jobs, clicks, gate counts and replies (exact figures, money to the cent), the
stats endpoint and its isolation, the CSV export (formulas neutralised) and the budget view."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from sms import counters
from sms.models import (
    CampaignGateCount,
    Click,
    InboundMessage,
    JobState,
    SendCounter,
    SendingNumber,
    SendJob,
    ShortLink,
    SmsSettings,
)
from sms.selectors import budget_view, campaign_csv, campaign_stats, neutralise
from sms.services.campaigns import campaign_create, template_create
from sms.services.contacts import contact_create

pytestmark = pytest.mark.django_db

SCOPES = ("read", "write", "sms:read", "sms:write")
AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 12:00 in Sydney (UTC+11)
EMPTY_GATES = {
    "kill_switch": 0,
    "budget_cap": 0,
    "dnc": 0,
    "no_consent": 0,
    "suppression": 0,
    "quiet_hours": 0,
    "rate_limit": 0,
    "warmup": 0,
}


def campaign_of(organization: Any, name: str, phone: str) -> Any:
    number = SendingNumber.objects.create(organization=organization, phone_e164=phone, warmup_start=date(2026, 1, 1))
    template = template_create(organization=organization, name=f"{name} text", body="Hi {first_name}")
    return campaign_create(organization=organization, name=name, template_ids=[template.pk], number_ids=[number.pk])


class Jobs:
    """Makes a campaign's send jobs, each to a new contact, with clicks on its short link if asked."""

    def __init__(self, campaign: Any, series: int = 1) -> None:
        self.campaign = campaign
        self.series = series  # phones +614120<series><nnnn>, so two campaigns' contacts differ
        self.made = 0

    def add(self, state: str, cost: str = "0", clicks: tuple[bool, ...] = (), **values: Any) -> SendJob:
        self.made += 1
        organization = self.campaign.organization
        contact = contact_create(
            organization=organization,
            phone=f"+614120{self.series}{self.made:04d}",
            data=values.pop("contact", {}),
        )
        job = SendJob.objects.create(
            organization=organization,
            campaign=self.campaign,
            contact=contact,
            position=self.made,
            state=state,
            cost=Decimal(cost),
            **values,
        )
        if clicks:
            link = ShortLink.objects.create(
                organization=organization,
                token=f"c{self.series}j{self.made}",
                job=job,
                url="https://acme.test",
                expires_at=AT,
            )
            Click.objects.bulk_create(Click(organization=organization, link=link, is_bot=bot) for bot in clicks)
        return job


@pytest.fixture
def spring(acme: Any) -> Any:
    return campaign_of(acme, "Spring", "+61400000001")


@pytest.fixture
def summer(acme: Any) -> Any:
    """Another Acme campaign, whose figures must not leak into Spring's."""
    return campaign_of(acme, "Autumn", "+61400000002")


def test_stats_are_exact(acme, spring, summer, django_assert_max_num_queries):
    jobs = Jobs(spring)
    jobs.add(JobState.QUEUED)
    jobs.add(JobState.SENDING)
    jobs.add(JobState.SENT, "0.0525", clicks=(False,))  # a person clicked, no delivery receipt (yet)
    jobs.add(JobState.SENT, "0.0525")
    jobs.add(JobState.DELIVERED, "0.0525", clicks=(True, False, False))  # a preview fetcher, then the person twice
    jobs.add(JobState.DELIVERED, "0.0525", clicks=(True, True))  # previews only
    jobs.add(JobState.DELIVERED, "0.1050")  # two segments
    jobs.add(JobState.DELIVERED, "0.0525")
    jobs.add(JobState.FAILED, "0", error_code="30003")
    jobs.add(JobState.SKIPPED, reason="dnc")
    CampaignGateCount.objects.create(campaign=spring, gate="dnc", count=1)
    CampaignGateCount.objects.create(campaign=spring, gate="quiet_hours", count=7)
    CampaignGateCount.objects.create(campaign=summer, gate="rate_limit", count=9)
    replies = [
        ("a", "opt_out", spring),
        ("b", "opt_out", spring),
        ("c", "reply", spring),  # not an opt-out
        ("d", "opt_out", summer),  # another campaign's
        ("e", "opt_out", None),  # no campaign
    ]
    for sid, kind, campaign in replies:
        InboundMessage.objects.create(
            organization=acme, provider_sid=sid, from_e164="+61412000001", to_e164="+61400000001", kind=kind,
            campaign=campaign,
        )  # fmt: skip
    other = Jobs(summer, series=2)
    other.add(JobState.DELIVERED, "9.9999", clicks=(False,))

    with django_assert_max_num_queries(5):  # jobs, gates, clicks, opt-outs and replies, the organization's currency
        stats = campaign_stats(spring)
    assert stats == {
        "counts": {"QUEUED": 1, "SENDING": 1, "SENT": 2, "DELIVERED": 4, "FAILED": 1, "SKIPPED": 1},
        "gates": {**EMPTY_GATES, "dnc": 1, "quiet_hours": 7},
        # 5 x 0.0525 + 0.1050 = 0.3675 exactly, rounded once: 0.37 (rounding each message first would give 0.36).
        "cost": "0.37",
        "currency": "AUD",
        "delivery_rate": 0.5714,  # 4 delivered of 2 + 4 + 1 handed to the carrier
        "ctr_human": 0.5,  # people clicked 2 jobs' links (one of them still SENT) / 4 delivered
        "ctr_all": 0.75,  # 3 jobs' links got any click / 4 delivered
        "opt_outs": 2,
        "replies": 1,
    }


def test_cost_is_rounded_half_up_once(acme, spring):
    jobs = Jobs(spring)
    for _ in range(3):
        jobs.add(JobState.DELIVERED, "0.0175")  # 0.0525 in all
    assert campaign_stats(spring)["cost"] == "0.05"
    jobs.add(JobState.DELIVERED, "0.0025")  # 0.0550: the half cent rounds up
    assert campaign_stats(spring)["cost"] == "0.06"


def test_a_campaign_without_jobs_has_zeros_and_no_rates(globex, spring):
    assert campaign_stats(spring) == {
        "counts": {"QUEUED": 0, "SENDING": 0, "SENT": 0, "DELIVERED": 0, "FAILED": 0, "SKIPPED": 0},
        "gates": EMPTY_GATES,
        "cost": "0.00",
        "currency": "AUD",
        "delivery_rate": None,
        "ctr_human": None,
        "ctr_all": None,
        "opt_outs": 0,
        "replies": 0,
    }
    theirs = campaign_of(globex, "Globex", "+15550000001")
    assert campaign_stats(theirs)["currency"] == "USD"


def test_sent_but_not_delivered_has_a_delivery_rate_and_no_click_rates(spring):
    jobs = Jobs(spring)
    jobs.add(JobState.SENT, "0.0525", clicks=(False,))
    jobs.add(JobState.FAILED)
    stats = campaign_stats(spring)
    assert (stats["delivery_rate"], stats["ctr_human"], stats["ctr_all"]) == (0.0, None, None)


def test_a_gate_that_is_not_one_of_the_eight_is_still_shown(spring):
    CampaignGateCount.objects.create(campaign=spring, gate="provider", count=2)
    assert campaign_stats(spring)["gates"] == {**EMPTY_GATES, "provider": 2}


# -- the stats endpoint ------------------------------------------------------------------------------------------


@pytest.fixture
def acme_key(api: Any, acme: Any, api_key_for: Any) -> APIClient:
    _, raw = api_key_for(organization=acme, scopes=SCOPES)
    return api(raw)


def session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_the_stats_endpoint_answers_the_selectors_figures(acme_key, spring, bob, api, api_key_for, acme):
    jobs = Jobs(spring)
    jobs.add(JobState.DELIVERED, "0.0525", clicks=(False,))
    jobs.add(JobState.SENT, "0.0525")
    response = acme_key.get(f"/api/sms/campaigns/{spring.pk}/stats/")
    assert response.status_code == 200
    assert response.json() == {
        "counts": {"QUEUED": 0, "SENDING": 0, "SENT": 1, "DELIVERED": 1, "FAILED": 0, "SKIPPED": 0},
        "gates": EMPTY_GATES,
        "cost": "0.11",  # 0.105 rounded half-up
        "currency": "AUD",
        "delivery_rate": 0.5,
        "ctr_human": 1.0,
        "ctr_all": 1.0,
        "opt_outs": 0,
        "replies": 0,
    }
    assert session(bob).get(f"/api/sms/campaigns/{spring.pk}/stats/").status_code == 403
    _, no_sms = api_key_for(organization=acme, scopes=("read",))
    assert api(no_sms).get(f"/api/sms/campaigns/{spring.pk}/stats/").status_code == 403


@pytest.mark.isolation("api-sms-campaign-stats")
def test_another_organizations_stats_are_404(acme_key, api, api_key_for, summit, alice, globex, spring):
    theirs = campaign_of(globex, "Globex", "+15550000001")
    Jobs(theirs, series=3).add(JobState.DELIVERED, "1.0000")
    _, summit_raw = api_key_for(partner=summit, scopes=SCOPES)
    for client in (acme_key, api(summit_raw, organization="acme"), api(summit_raw), session(alice)):
        assert client.get(f"/api/sms/campaigns/{theirs.pk}/stats/").status_code == 404
        assert client.get("/api/sms/campaigns/x/stats/").status_code == 404
        assert client.get(f"/api/sms/campaigns/{spring.pk}/stats/").json()["cost"] == "0.00"


# -- the CSV export ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+61412345678", "'+61412345678"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Ann = Bo", "Ann = Bo"),
        ("", ""),
        (None, ""),
        (3, "3"),
    ],
)
def test_formulas_are_neutralised(value, cell):
    assert neutralise(value) == cell


def test_the_csv_has_one_neutralised_row_per_job_in_order(acme, spring, summer):
    number = SendingNumber.objects.get(phone_e164="+61400000001")
    jobs = Jobs(spring)
    jobs.add(
        JobState.DELIVERED,
        "0.0525",
        clicks=(True, False, False),
        number=number,
        segments=1,
        sent_at=AT,
        delivered_at=datetime(2026, 3, 2, 1, 0, 5, tzinfo=UTC),
        contact={"first_name": '=HYPERLINK("http://evil.test")', "last_name": "Smith"},
    )
    jobs.add(JobState.FAILED, number=number, segments=2, error_code="30003", contact={"first_name": "@Bo"})
    jobs.add(JobState.SKIPPED, reason="dnc", contact={"first_name": "Cy", "last_name": "-1"})
    Jobs(summer, series=2).add(JobState.DELIVERED, "1.0000")

    lines = list(campaign_csv(spring, chunk_size=2))
    assert all(line.endswith("\r\n") for line in lines)
    rows = list(csv.reader(io.StringIO("".join(lines))))
    assert rows == [
        ["phone", "name", "state", "reason", "number", "segments", "cost", "sent_at", "delivered_at", "error_code",
         "clicks_human", "clicks_all"],
        ["'+61412010001", "'=HYPERLINK(\"http://evil.test\") Smith", "DELIVERED", "", "'+61400000001", "1", "0.0525",
         "2026-03-02T12:00:00+11:00", "2026-03-02T12:00:05+11:00", "", "2", "3"],
        ["'+61412010002", "'@Bo", "FAILED", "", "'+61400000001", "2", "0.0000", "", "", "30003", "0", "0"],
        ["'+61412010003", "Cy -1", "SKIPPED", "dnc", "", "0", "0.0000", "", "", "", "0", "0"],
    ]  # fmt: skip


def test_the_csv_reads_a_constant_number_of_queries(spring, django_assert_max_num_queries):
    jobs = Jobs(spring)
    for _ in range(30):
        jobs.add(JobState.SENT, "0.0525", clicks=(False,))
    # The organization, then one query per chunk of 2000 jobs (with contacts, numbers and click counts).
    with django_assert_max_num_queries(2):
        lines = list(campaign_csv(spring))
    assert len(lines) == 31


# -- the budget view ---------------------------------------------------------------------------------------------


def test_the_budget_view_rounds_amounts_and_names_alerts(acme, globex):
    SmsSettings.objects.create(organization=acme, daily_budget=Decimal("10.00"), monthly_budget=Decimal("500.00"))
    SendCounter.objects.create(
        key=counters.spend_day_key(acme.pk), window=counters.day_window(AT, acme.timezone), amount=Decimal("8.0050")
    )
    SendCounter.objects.create(
        key=counters.spend_month_key(acme.pk),
        window=counters.month_window(AT, acme.timezone),
        amount=Decimal("99.9949"),
    )
    assert budget_view(acme, AT) == {
        "currency": "AUD",
        "spent_today": "8.01",
        "spent_this_month": "99.99",
        "daily_cap": "10.00",
        "monthly_cap": "500.00",
        "credits": 0,
        "alerts": ["day"],
    }
    assert budget_view(globex, AT) == {
        "currency": "USD",
        "spent_today": "0.00",
        "spent_this_month": "0.00",
        "daily_cap": None,
        "monthly_cap": None,
        "credits": 0,
        "alerts": [],
    }
