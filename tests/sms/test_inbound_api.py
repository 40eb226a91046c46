"""The inbound messages API: what contacts texted to the organization's numbers, newest first, its filters, bad
filters named, who may read it, tenant isolation and a constant number of queries per page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from sms.models import Campaign, InboundKind, InboundMessage
from sms.services.contacts import contact_create

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_sids = iter(range(1, 1_000_000))


def session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def inbound(organization: Any, body: str, *, minutes: int = 0, kind: str = InboundKind.REPLY, **fields: Any) -> Any:
    fields.setdefault("from_e164", "+61412000999")
    return InboundMessage.objects.create(
        organization=organization, provider_sid=f"SM{next(_sids):032x}", to_e164="+61480000001", body=body,
        kind=kind, received_at=AT + timedelta(minutes=minutes), **fields,
    )  # fmt: skip


@pytest.fixture
def acme_key(api: Any, acme: Any, api_key_for: Any) -> APIClient:
    _, raw = api_key_for(organization=acme, scopes=("read", "sms:read"))
    return api(raw)


@pytest.fixture
def summit_key(summit: Any, api_key_for: Any) -> str:
    _, raw = api_key_for(partner=summit, scopes=("read", "sms:read"))
    return raw


@pytest.fixture
def acme_inbound(acme: Any) -> dict[str, Any]:
    ann = contact_create(organization=acme, phone="+61412345678", data={"first_name": "Ann"})
    spring = Campaign.objects.create(organization=acme, name="Spring")
    return {
        "ann": ann,
        "spring": spring,
        "reply": inbound(acme, "Still on?", contact=ann, campaign=spring, from_e164=ann.phone_e164),
        "stranger": inbound(acme, "Who is this?", minutes=5),
        "stop": inbound(acme, "STOP", minutes=6, kind=InboundKind.OPT_OUT, contact=ann, from_e164=ann.phone_e164),
    }


@pytest.fixture
def theirs(globex: Any) -> Any:
    return inbound(globex, "Globex secret", campaign=Campaign.objects.create(organization=globex, name="Globex sale"))


def test_inbound_messages_are_listed_newest_first_with_who_sent_them(acme_key, acme_inbound):
    ann, spring = acme_inbound["ann"], acme_inbound["spring"]
    listed = acme_key.get("/api/sms/inbound/").json()["results"]
    assert [item["body"] for item in listed] == ["STOP", "Who is this?", "Still on?"]
    assert listed[2] == {
        "id": acme_inbound["reply"].pk, "organization": "acme", "kind": "reply", "phone": "+61412345678",
        "to": "+61480000001", "body": "Still on?", "contact": str(ann.pk), "campaign": str(spring.pk),
        "received_at": "2026-03-02T09:00:00Z",
    }  # fmt: skip
    assert (listed[1]["contact"], listed[1]["campaign"]) == (None, None)
    one = acme_key.get(f"/api/sms/inbound/{acme_inbound['stranger'].pk}/")
    assert one.status_code == 200 and one.json()["body"] == "Who is this?"


def test_inbound_messages_are_filtered_and_a_bad_filter_is_named(acme_key, acme_inbound):
    def bodies(query: str) -> list[str]:
        return [item["body"] for item in acme_key.get(f"/api/sms/inbound/?{query}").json()["results"]]

    assert bodies("kind=reply") == ["Who is this?", "Still on?"]
    assert bodies("kind=opt_out") == ["STOP"]
    assert bodies(f"campaign={acme_inbound['spring'].pk}") == ["Still on?"]
    assert bodies(f"contact={acme_inbound['ann'].pk}") == ["STOP", "Still on?"]
    assert bodies("since=2026-03-02T09:05:00Z") == ["STOP", "Who is this?"]  # at or after
    assert bodies("since=2026-03-02T20:05:01%2B11:00") == ["STOP"]
    for query, field in (
        ("kind=shout", "kind"), ("campaign=x", "campaign"), ("contact=12", "contact"),
        ("since=yesterday", "since"), ("since=2026-03-02T09:05:00", "since"), ("since=2026-13-02T09:05:00Z", "since"),
    ):  # fmt: skip
        refused = acme_key.get(f"/api/sms/inbound/?{query}")
        assert refused.status_code == 400 and field in refused.json(), refused.json()


def test_inbound_messages_are_for_owners_admins_managers_and_sms_keys(api, api_key_for, acme, alice, bob, acme_inbound):
    assert session(bob).get("/api/sms/inbound/").status_code == 403
    assert session(alice).get("/api/sms/inbound/").json()["count"] == 3
    _, no_sms = api_key_for(organization=acme, scopes=("read", "billing:read"))
    assert api(no_sms).get("/api/sms/inbound/").status_code == 403


@pytest.mark.isolation("api-sms-inbound-list", "api-sms-inbound-detail")
def test_another_organizations_inbound_messages_are_404(acme_key, api, summit_key, alice, carol, acme_inbound, theirs):
    ours = sorted(message.pk for name, message in acme_inbound.items() if name in ("reply", "stranger", "stop"))
    for client in (acme_key, api(summit_key, organization="acme"), api(summit_key), session(alice)):
        assert sorted(item["id"] for item in client.get("/api/sms/inbound/").json()["results"]) == ours
        assert client.get(f"/api/sms/inbound/?campaign={theirs.campaign_id}").json()["results"] == []
        assert client.get(f"/api/sms/inbound/{theirs.pk}/").status_code == 404
        assert client.get("/api/sms/inbound/x1/").status_code == 404
        assert client.get("/api/sms/inbound/99999999999999999999/").status_code == 404
    assert [item["id"] for item in session(carol).get("/api/sms/inbound/").json()["results"]] == [theirs.pk]


def test_inbound_queries_do_not_grow_with_the_page(acme_key, acme, django_assert_max_num_queries):
    acme_key.get("/api/sms/inbound/")  # the key's first use records last_used_at; later calls in the minute do not
    for n in range(2):
        inbound(acme, f"Reply {n}", minutes=n)
    # The key (with its organization), COUNT, the page with organizations.
    with django_assert_max_num_queries(3):
        small = acme_key.get("/api/sms/inbound/").json()["results"]
    for n in range(2, 20):
        inbound(acme, f"Reply {n}", minutes=n)
    with django_assert_max_num_queries(3):
        large = acme_key.get("/api/sms/inbound/").json()["results"]
    assert (len(small), len(large)) == (2, 20)
