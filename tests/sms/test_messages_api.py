"""The messages API (send jobs): what a message shows, its filters, bad filters by name, tenant isolation and a
constant number of queries per page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from sms.models import Click, JobState, SendingNumber, SendJob, ShortLink
from sms.services.campaigns import campaign_create, template_create
from sms.services.contacts import contact_create

pytestmark = pytest.mark.django_db

SCOPES = ("read", "write", "sms:read", "sms:write")
SENT_AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def acme_key(api: Any, acme: Any, api_key_for: Any) -> APIClient:
    _, raw = api_key_for(organization=acme, scopes=SCOPES)
    return api(raw)


@pytest.fixture
def summit_key(summit: Any, api_key_for: Any) -> str:
    _, raw = api_key_for(partner=summit, scopes=SCOPES)
    return raw


def campaign_of(organization: Any, name: str, phone: str) -> Any:
    number = SendingNumber.objects.create(organization=organization, phone_e164=phone, warmup_start=date(2026, 1, 1))
    template = template_create(organization=organization, name=f"{name} text", body="Hi {first_name}")
    return campaign_create(organization=organization, name=name, template_ids=[template.pk], number_ids=[number.pk])


def job(campaign: Any, contact: Any, state: str = JobState.QUEUED, **values: Any) -> SendJob:
    return SendJob.objects.create(
        organization_id=campaign.organization_id, campaign=campaign, contact=contact, state=state, **values
    )


@pytest.fixture
def spring(acme: Any) -> Any:
    return campaign_of(acme, "Spring", "+61400000001")


@pytest.fixture
def ann(acme: Any) -> Any:
    return contact_create(organization=acme, phone="0412000001", data={"first_name": "Ann"})


@pytest.fixture
def bo(acme: Any) -> Any:
    return contact_create(organization=acme, phone="0412000002", data={"first_name": "Bo"})


@pytest.fixture
def theirs(globex: Any) -> SendJob:
    campaign = campaign_of(globex, "Globex sale", "+15550000001")
    gus = contact_create(organization=globex, phone="+15005550006", data={"first_name": "Gus"})
    return job(campaign, gus, JobState.SENT, body="Globex: hi Gus")


def test_a_message_shows_its_state_cost_and_clicks(acme_key, spring, ann):
    number = SendingNumber.objects.get(phone_e164="+61400000001")
    sent = job(
        spring,
        ann,
        JobState.DELIVERED,
        number=number,
        body="Acme Pty Ltd: Hi Ann Reply STOP to opt out",
        segments=1,
        cost=Decimal("0.0525"),
        provider_sid="SM123",
        attempts=1,
        sent_at=SENT_AT,
        delivered_at=SENT_AT + timedelta(seconds=4),
    )
    link = ShortLink.objects.create(
        organization_id=spring.organization_id, token="abc", job=sent, url="https://acme.test", expires_at=SENT_AT
    )
    Click.objects.bulk_create(
        [Click(organization_id=link.organization_id, link=link, is_bot=bot) for bot in (False, True, True)]
    )
    body = acme_key.get(f"/api/sms/messages/{sent.pk}/").json()
    assert body == {
        "id": sent.pk,
        "organization": "acme",
        "campaign": str(spring.pk),
        "contact": str(ann.pk),
        "phone": "+61412000001",
        "state": "DELIVERED",
        "reason": "",
        "deferred_until": None,
        "number": "+61400000001",
        "body": "Acme Pty Ltd: Hi Ann Reply STOP to opt out",
        "segments": 1,
        "cost": "0.0525",
        "currency": "AUD",
        "provider_sid": "SM123",
        "error_code": "",
        "attempts": 1,
        "sent_at": "2026-03-02T01:00:00Z",
        "delivered_at": "2026-03-02T01:00:04Z",
        "clicks_human": 1,
        "clicks_all": 3,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert acme_key.get("/api/sms/messages/").json()["results"] == [body]


def test_messages_filter_by_campaign_state_and_contact(acme_key, acme, spring, ann, bo):
    autumn = campaign_of(acme, "Autumn", "+61400000002")
    first = job(spring, ann, JobState.SENT)
    second = job(spring, bo, JobState.SKIPPED, reason="dnc")
    third = job(autumn, ann, JobState.QUEUED, reason="quiet_hours", deferred_until=SENT_AT)

    def ids(query: str) -> list[int]:
        response = acme_key.get(f"/api/sms/messages/{query}")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    assert ids("") == [third.pk, second.pk, first.pk]  # newest first
    assert ids(f"?campaign={spring.pk}") == [second.pk, first.pk]
    assert ids(f"?contact={ann.pk}") == [third.pk, first.pk]
    assert ids("?state=SKIPPED") == [second.pk]
    assert ids(f"?campaign={spring.pk}&contact={ann.pk}&state=SENT") == [first.pk]
    assert ids(f"?campaign={autumn.pk}&state=SENT") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("?campaign=spring", "campaign"), ("?contact=42", "contact"), ("?state=sent", "state"), ("?state=LOST", "state")],
)
def test_a_bad_filter_is_a_400_naming_it(acme_key, query, field):
    response = acme_key.get(f"/api/sms/messages/{query}")
    assert response.status_code == 400 and field in response.json()


def test_messages_are_for_owners_admins_managers_and_sms_keys(api, api_key_for, acme, alice, bob, spring, ann):
    made = job(spring, ann)
    assert session(bob).get("/api/sms/messages/").status_code == 403
    assert session(alice).get(f"/api/sms/messages/{made.pk}/").status_code == 200
    _, no_sms = api_key_for(organization=acme, scopes=("read", "billing:read"))
    assert api(no_sms).get("/api/sms/messages/").status_code == 403
    _, read_only = api_key_for(organization=acme, scopes=("read", "sms:read"))
    assert api(read_only).get("/api/sms/messages/").json()["count"] == 1


@pytest.mark.isolation("api-sms-message-list", "api-sms-message-detail")
def test_another_organizations_messages_are_404(acme_key, api, summit_key, alice, carol, spring, ann, theirs):
    ours = job(spring, ann)
    for client in (acme_key, api(summit_key, organization="acme"), api(summit_key), session(alice)):
        assert [item["id"] for item in client.get("/api/sms/messages/").json()["results"]] == [ours.pk]
        assert client.get(f"/api/sms/messages/?campaign={theirs.campaign_id}").json()["results"] == []
        assert client.get(f"/api/sms/messages/{theirs.pk}/").status_code == 404
        assert client.get("/api/sms/messages/x1/").status_code == 404
        assert client.get("/api/sms/messages/99999999999999999999/").status_code == 404
    assert [item["id"] for item in session(carol).get("/api/sms/messages/").json()["results"]] == [theirs.pk]


def test_message_queries_do_not_grow_with_the_page(acme_key, acme, spring, django_assert_max_num_queries):
    number = SendingNumber.objects.get(phone_e164="+61400000001")

    def add(count: int) -> None:
        start = SendJob.objects.count()
        for n in range(start, start + count):
            contact = contact_create(organization=acme, phone=f"04120001{n:02d}")
            made = job(spring, contact, JobState.SENT, number=number)
            link = ShortLink.objects.create(
                organization=acme, token=f"t{n}", job=made, url="https://acme.test", expires_at=SENT_AT
            )
            Click.objects.create(organization=acme, link=link)

    acme_key.get("/api/sms/messages/")  # the key's first use records last_used_at; later calls in the minute do not
    add(2)
    # The key (with its organization), COUNT, the page with organizations, contacts, numbers and click counts.
    with django_assert_max_num_queries(3):
        small = acme_key.get("/api/sms/messages/").json()["results"]
    add(18)
    with django_assert_max_num_queries(3):
        large = acme_key.get("/api/sms/messages/").json()["results"]
    assert (len(small), len(large)) == (2, 20)
    assert {item["clicks_all"] for item in large} == {1}
