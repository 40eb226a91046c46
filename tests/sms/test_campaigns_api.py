"""The templates, sending numbers and campaigns API: scopes and roles, bad input by field, launching twice, state
changes, today's warm-up figures of a number, tenant isolation on every route, and list query counts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from sms import counters
from sms.models import Campaign, CampaignStatus, CampaignTemplate, SendCounter, SendingNumber, SendJob, Template
from sms.services.campaigns import campaign_create, campaign_launch, template_create
from sms.services.contacts import contact_create
from tenancy.models import Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SCOPES = ("read", "write", "sms:read", "sms:write")


def session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def post(client: APIClient, path: str, body: Any = None, **headers: Any) -> Any:
    payload = json.dumps(body) if body is not None else ""
    return client.generic("POST", path, payload, content_type="application/json", **headers)


@pytest.fixture
def acme_key(api: Any, acme: Any, api_key_for: Any) -> APIClient:
    _, raw = api_key_for(organization=acme, scopes=SCOPES)
    return api(raw)


@pytest.fixture
def summit_key(summit: Any, api_key_for: Any) -> str:
    _, raw = api_key_for(partner=summit, scopes=SCOPES)
    return raw


@pytest.fixture
def number(acme: Any) -> SendingNumber:
    return SendingNumber.objects.create(organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 3, 1))


@pytest.fixture
def their_number(globex: Any) -> SendingNumber:
    return SendingNumber.objects.create(organization=globex, phone_e164="+15550000001", warmup_start=date(2026, 3, 1))


@pytest.fixture
def audience(acme: Any) -> list[Any]:
    consent = {"source": "web form"}
    return [
        contact_create(organization=acme, phone="0412000001", data={"tags": ["vip"]}, consent=consent),
        contact_create(organization=acme, phone="0412000002", data={"tags": ["vip"]}, consent=consent),
        contact_create(organization=acme, phone="0412000003", data={"tags": ["perth"]}, consent=consent),
        contact_create(organization=acme, phone="0412000004", data={"tags": ["vip"]}),  # no consent
    ]


@pytest.fixture
def hello(acme: Any) -> Template:
    return template_create(organization=acme, name="Hello", body="Hi {first_name}, see {link}")


def draft(organization: Any, template: Template, number: SendingNumber, name: str = "Spring") -> Campaign:
    return campaign_create(
        organization=organization,
        name=name,
        template_ids=[template.pk],
        number_ids=[number.pk],
        link_url="https://example.test/spring",
    )


@pytest.fixture
def theirs(globex: Any, their_number: SendingNumber) -> Campaign:
    template = template_create(organization=globex, name="Globex hello", body="Hi {first_name}")
    return draft(globex, template, their_number, name="Globex sale")


# -- templates ---------------------------------------------------------------------------------------------------


def test_templates_are_created_listed_changed_and_deleted(acme_key, acme):
    created = post(acme_key, "/api/sms/templates/", {"name": "Promo", "body": "Hi {first_name}, 20% off: {link}"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["organization"], body["name"], body["placeholders"]) == ("acme", "Promo", ["first_name", "link"])
    template_create(organization=acme, name="Another", body="Hello")
    listed = acme_key.get("/api/sms/templates/").json()
    assert [item["name"] for item in listed["results"]] == ["Another", "Promo"]
    path = f"/api/sms/templates/{body['id']}/"
    changed = acme_key.patch(path, {"body": "Hello {last_name}"}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["body"], changed.json()["placeholders"]) == (
        "Promo",
        "Hello {last_name}",
        ["last_name"],
    )
    assert acme_key.delete(path).status_code == 204
    assert list(Template.objects.values_list("name", flat=True)) == ["Another"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "body": "Hi"}, "name"),
        ({"name": "Promo"}, "body"),
        ({"name": "Promo", "body": "Use {code}"}, "body"),
        ({"name": "Promo", "body": "Hi {first_name"}, "body"),
        ({"name": "Promo", "body": "x" * 1601}, "body"),
        ({"name": "Promo", "body": "Hi", "organization": "globex"}, "organization"),
        ({"name": ["Promo"], "body": "Hi"}, "name"),
    ],
)
def test_bad_template_input_is_a_400_naming_the_field(acme_key, body, field):
    response = post(acme_key, "/api/sms/templates/", body)
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Template.objects.exists()


def test_a_template_body_must_be_a_json_object(acme_key):
    response = post(acme_key, "/api/sms/templates/", ["Promo", "Hi"])
    assert response.status_code == 400 and "non_field_errors" in response.json()


def test_a_template_a_launched_campaign_uses_is_kept_and_a_drafts_is_let_go(acme, alice, acme_key, number, hello):
    other = template_create(organization=acme, name="Other", body="Hello {first_name}")
    launched = draft(acme, hello, number, name="Launched")
    campaign_launch(campaign=launched, actor=alice)
    waiting = campaign_create(
        organization=acme,
        name="Waiting",
        template_ids=[other.pk, hello.pk],
        number_ids=[number.pk],
        link_url="https://example.test",
    )
    refused = acme_key.delete(f"/api/sms/templates/{hello.pk}/")
    assert refused.status_code == 409
    assert refused.json() == {"detail": "A launched campaign uses this template, so it cannot be deleted."}
    assert Template.objects.filter(pk=hello.pk).exists()
    assert acme_key.delete(f"/api/sms/templates/{other.pk}/").status_code == 204
    assert list(CampaignTemplate.objects.filter(campaign=waiting).values_list("template_id", flat=True)) == [hello.pk]


# -- sending numbers ---------------------------------------------------------------------------------------------


def test_numbers_show_todays_warm_up_day_cap_and_sends(acme, acme_key, number):
    fresh = SendingNumber.objects.create(
        organization=acme, phone_e164="+61400000002", warmup_start=date(2026, 3, 12), warmup_curve="20/40"
    )
    # 2026-03-10 23:30 UTC is 10:30 on 11 March in Sydney (UTC+11): the number's 11th day, the fresh one's day 0.
    now = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    SendCounter.objects.create(
        key=counters.day_key(number.pk), window=counters.day_window(now, acme.timezone), count=37
    )
    # Yesterday's count is not today's.
    SendCounter.objects.create(key=counters.day_key(fresh.pk), window=datetime(2026, 3, 9, 13, tzinfo=UTC), count=5)
    with time_machine.travel(now, tick=False):
        listed = acme_key.get("/api/sms/numbers/").json()["results"]
        detail = acme_key.get(f"/api/sms/numbers/{fresh.pk}/").json()
    assert [
        (item["phone"], item["warmup_day"], item["daily_cap"], item["sent_today"], item["active"]) for item in listed
    ] == [("+61400000001", 11, 300, 37, True), ("+61400000002", 0, 0, 0, True)]
    assert (detail["warmup_curve"], detail["warmup_day"], detail["daily_cap"]) == ("20/40", 0, 0)
    with time_machine.travel(datetime(2026, 3, 12, 14, tzinfo=UTC), tick=False):  # 01:00 on 13 March: day 2
        assert acme_key.get(f"/api/sms/numbers/{fresh.pk}/").json()["daily_cap"] == 40


def test_numbers_are_read_only(acme_key, number):
    assert post(acme_key, "/api/sms/numbers/", {"phone": "+61400000009"}).status_code == 405
    assert acme_key.delete(f"/api/sms/numbers/{number.pk}/").status_code == 405
    assert SendingNumber.objects.count() == 1


@pytest.mark.isolation("api-sms-number-list", "api-sms-number-detail")
def test_another_organizations_numbers_are_hidden(acme_key, api, summit_key, alice, carol, number, their_number):
    for client in (acme_key, api(summit_key, organization="acme"), api(summit_key), session(alice)):
        assert [item["phone"] for item in client.get("/api/sms/numbers/").json()["results"]] == ["+61400000001"]
        assert client.get(f"/api/sms/numbers/{their_number.pk}/").status_code == 404
        assert client.get("/api/sms/numbers/not-an-id/").status_code == 404
    assert [item["phone"] for item in session(carol).get("/api/sms/numbers/").json()["results"]] == ["+15550000001"]


# -- campaigns ---------------------------------------------------------------------------------------------------


def test_a_campaign_is_created_and_read(acme_key, acme, alice, number, hello):
    second = template_create(organization=acme, name="Second", body="Hello again {first_name}")
    response = post(
        acme_key,
        "/api/sms/campaigns/",
        {
            "name": "Spring sale",
            "template_ids": [str(second.pk), str(hello.pk)],
            "number_ids": [str(number.pk)],
            "audience_tags": ["VIP", "Perth"],
            "link_url": "https://acme.test/spring",
            "start_at": "2026-09-01T09:00:00+10:00",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {key: body[key] for key in ("organization", "name", "status", "template_ids", "number_ids")} == {
        "organization": "acme",
        "name": "Spring sale",
        "status": "DRAFT",
        "template_ids": [str(second.pk), str(hello.pk)],
        "number_ids": [str(number.pk)],
    }
    assert (body["audience_tags"], body["link_url"], body["launched_at"]) == (
        ["perth", "vip"],
        "https://acme.test/spring",
        None,
    )
    campaign = Campaign.objects.get()
    assert campaign.start_at == datetime(2026, 8, 31, 23, tzinfo=UTC)
    assert acme_key.get(f"/api/sms/campaigns/{campaign.pk}/").json() == body
    other = draft(acme, hello, number, name="Later")
    other.status = CampaignStatus.PAUSED
    other.save(update_fields=["status"])
    assert [item["name"] for item in acme_key.get("/api/sms/campaigns/").json()["results"]] == ["Later", "Spring sale"]
    assert [item["name"] for item in acme_key.get("/api/sms/campaigns/?status=DRAFT").json()["results"]] == [
        "Spring sale"
    ]
    bad = acme_key.get("/api/sms/campaigns/?status=LIVE")
    assert bad.status_code == 400 and "status" in bad.json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"template_ids": []}, "template_ids"),
        ({"template_ids": ["not-an-id"]}, "template_ids"),
        ({"template_ids": "all"}, "template_ids"),
        ({"number_ids": []}, "number_ids"),
        ({"link_url": "acme.test"}, "link_url"),
        ({"link_url": ""}, "link_url"),  # a template uses {link}
        ({"start_at": "2026-09-01T09:00:00"}, "start_at"),  # no offset: refused rather than guessed
        ({"start_at": "soon"}, "start_at"),
        ({"audience_tags": "vip"}, "audience_tags"),
        ({"status": "RUNNING"}, "status"),
    ],
)
def test_bad_campaign_input_is_a_400_naming_the_field(acme_key, number, hello, change, field):
    body = {
        "name": "Spring",
        "template_ids": [str(hello.pk)],
        "number_ids": [str(number.pk)],
        "link_url": "https://acme.test",
        **change,
    }
    response = post(acme_key, "/api/sms/campaigns/", body)
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Campaign.objects.exists()


def test_another_organizations_templates_and_numbers_cannot_be_used(acme_key, number, hello, theirs, their_number):
    foreign_template = theirs.template_links.get().template_id
    base = {"name": "Spring", "link_url": "https://acme.test"}
    refused = post(
        acme_key,
        "/api/sms/campaigns/",
        {**base, "template_ids": [str(foreign_template)], "number_ids": [str(number.pk)]},
    )
    assert refused.status_code == 400 and "template_ids" in refused.json()
    refused = post(
        acme_key, "/api/sms/campaigns/", {**base, "template_ids": [str(hello.pk)], "number_ids": [str(their_number.pk)]}
    )
    assert refused.status_code == 400 and "number_ids" in refused.json()
    assert Campaign.objects.count() == 1  # Globex's own


def test_launch_twice_creates_nothing_more_then_pause_resume_and_cancel(acme_key, acme, number, hello, audience):
    campaign = draft(acme, hello, number)
    path = f"/api/sms/campaigns/{campaign.pk}"
    launched = post(acme_key, f"{path}/launch/")
    assert launched.status_code == 200, launched.content
    assert (launched.json()["jobs_created"], launched.json()["campaign"]["status"]) == (3, "RUNNING")
    assert launched.json()["campaign"]["launched_at"] is not None
    again = post(acme_key, f"{path}/launch/")
    assert (again.status_code, again.json()["jobs_created"]) == (200, 0)
    assert SendJob.objects.filter(campaign=campaign).count() == 3
    assert post(acme_key, f"{path}/pause/").json()["status"] == "PAUSED"
    assert post(acme_key, f"{path}/pause/").json()["status"] == "PAUSED"  # again: no change, no error
    assert post(acme_key, f"{path}/resume/").json()["status"] == "RUNNING"
    assert post(acme_key, f"{path}/cancel/").json()["status"] == "CANCELED"
    for action in ("launch", "resume", "pause"):
        refused = post(acme_key, f"{path}/{action}/")
        assert refused.status_code == 409, action
    assert set(SendJob.objects.filter(campaign=campaign).values_list("state", flat=True)) == {"SKIPPED"}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELED


def test_a_draft_cannot_be_paused(acme_key, acme, number, hello):
    campaign = draft(acme, hello, number)
    response = post(acme_key, f"/api/sms/campaigns/{campaign.pk}/pause/")
    assert response.status_code == 409 and response.json() == {"detail": "A draft campaign cannot be paused."}


def test_only_owners_admins_managers_and_sms_write_keys_launch(
    api, api_key_for, acme, alice, bob, number, hello, audience
):
    campaign = draft(acme, hello, number)
    launch = f"/api/sms/campaigns/{campaign.pk}/launch/"
    assert session(bob).get("/api/sms/campaigns/").status_code == 403  # a technician (member)
    assert post(session(bob), launch).status_code == 403
    _, read_only = api_key_for(organization=acme, scopes=("read", "sms:read"))
    assert api(read_only).get("/api/sms/campaigns/").status_code == 200
    assert post(api(read_only), launch).status_code == 403
    _, no_sms = api_key_for(organization=acme, scopes=("read", "write", "billing:read", "billing:write"))
    assert api(no_sms).get(f"/api/sms/campaigns/{campaign.pk}/").status_code == 403
    assert post(api(no_sms), launch).status_code == 403
    assert not SendJob.objects.exists()
    manager = UserFactory(email="mia@acme.test")
    MembershipFactory(user=manager, organization=acme, role=Role.MANAGER)
    response = post(session(manager), launch)
    assert response.status_code == 200 and response.json()["jobs_created"] == 3
    assert post(session(alice), f"/api/sms/campaigns/{campaign.pk}/pause/").json()["status"] == "PAUSED"


def test_a_partner_key_names_the_organization_to_write_for(api, summit_key, acme, number, hello):
    body = {
        "name": "Spring",
        "template_ids": [str(hello.pk)],
        "number_ids": [str(number.pk)],
        "link_url": "https://acme.test",
    }
    refused = post(api(summit_key), "/api/sms/campaigns/", body)
    assert refused.status_code == 400 and "X-Organization" in refused.json()
    created = post(api(summit_key, organization="acme"), "/api/sms/campaigns/", body)
    assert created.status_code == 201 and Campaign.objects.get().organization_id == acme.pk


# -- isolation ---------------------------------------------------------------------------------------------------


@pytest.mark.isolation("api-sms-template-list", "api-sms-template-detail")
def test_another_organizations_templates_are_404(acme_key, api, summit_key, alice, carol, hello, theirs):
    foreign = Template.objects.get(name="Globex hello")
    for client in (acme_key, api(summit_key, organization="acme"), session(alice)):
        assert [item["name"] for item in client.get("/api/sms/templates/").json()["results"]] == ["Hello"]
        path = f"/api/sms/templates/{foreign.pk}/"
        assert client.get(path).status_code == 404
        assert client.patch(path, {"name": "Owned"}, format="json").status_code == 404
        assert client.delete(path).status_code == 404
        assert client.get("/api/sms/templates/not-an-id/").status_code == 404
    assert [item["name"] for item in session(carol).get("/api/sms/templates/").json()["results"]] == ["Globex hello"]
    foreign.refresh_from_db()
    assert foreign.name == "Globex hello"


@pytest.mark.isolation("api-sms-campaign-list", "api-sms-campaign-detail")
def test_another_organizations_campaigns_are_404(acme_key, api, summit_key, alice, acme, number, hello, theirs):
    draft(acme, hello, number)
    for client in (acme_key, api(summit_key, organization="acme"), api(summit_key), session(alice)):
        assert [item["name"] for item in client.get("/api/sms/campaigns/").json()["results"]] == ["Spring"]
        assert client.get(f"/api/sms/campaigns/{theirs.pk}/").status_code == 404
        assert client.get("/api/sms/campaigns/12345/").status_code == 404


@pytest.mark.isolation(
    "api-sms-campaign-launch", "api-sms-campaign-pause", "api-sms-campaign-resume", "api-sms-campaign-cancel"
)
def test_another_organizations_campaign_cannot_be_moved(acme_key, api, summit_key, alice, globex, theirs):
    contact_create(organization=globex, phone="+15005550006", consent={"source": "form"})
    for client in (acme_key, api(summit_key, organization="acme"), session(alice)):
        for action in ("launch", "pause", "resume", "cancel"):
            assert post(client, f"/api/sms/campaigns/{theirs.pk}/{action}/").status_code == 404
            assert post(client, f"/api/sms/campaigns/nope/{action}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == CampaignStatus.DRAFT and not SendJob.objects.exists()


# -- query counts ------------------------------------------------------------------------------------------------


def test_list_queries_do_not_grow_with_the_page(acme_key, acme, number, django_assert_max_num_queries):
    def add(count: int) -> None:
        start = Template.objects.count()
        for n in range(start, start + count):
            template = template_create(organization=acme, name=f"T{n:02d}", body="Hi {first_name}")
            draft(acme, template, number, name=f"C{n:02d}")
            SendingNumber.objects.create(
                organization=acme, phone_e164=f"+614000001{n:02d}", warmup_start=date(2026, 1, 1)
            )

    acme_key.get("/api/sms/templates/")  # the key's first use records last_used_at; later calls in the minute do not
    add(2)
    sizes = []
    for extra in (0, 18):
        add(extra)
        # The key (with its organization), COUNT, the page (with organizations).
        with django_assert_max_num_queries(3):
            templates = acme_key.get("/api/sms/templates/").json()["results"]
        # ... and the campaigns' templates and numbers (two prefetches).
        with django_assert_max_num_queries(5):
            campaigns = acme_key.get("/api/sms/campaigns/").json()["results"]
        # ... and today's counters of every number on the page.
        with django_assert_max_num_queries(4):
            numbers = acme_key.get("/api/sms/numbers/").json()["results"]
        sizes.append((len(templates), len(campaigns), len(numbers)))
    assert sizes == [(2, 2, 3), (20, 20, 21)]
