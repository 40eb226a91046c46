"""The portal's message templates (with the live segment count of the message as it goes out) and campaigns: create,
launch, pause, resume, cancel, analytics with charts, the CSV export, query counts and tenant isolation.

Time is frozen on Tuesday 10 November 2026, 10:00 in Sydney (AEDT = UTC+11). Acme sends as "Acme Deals". Globex has a
template, a number and a campaign of its own, and sends as "Globex Corp": none of it may reach Acme's pages.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.messages import get_messages

from sms.models import (
    Campaign,
    CampaignGateCount,
    CampaignStatus,
    Click,
    Contact,
    InboundKind,
    InboundMessage,
    JobState,
    SendingNumber,
    SendJob,
    ShortLink,
    SmsSettings,
    Template,
)
from sms.services.campaigns import campaign_create, template_create
from sms.services.contacts import contact_create, dnc_add
from tenancy.models import Organization, Role, User
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 11, 10, 10, 0, tzinfo=SYDNEY)
BASE = 6  # every portal page's base queries (tests/portal/test_queries.py)
GLOBEX_TEXT = ("Globex", "+15550001111")


def text_of(response: Any) -> str:
    return response.content.decode()


def message_texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def assert_nothing_of_globex(response: Any) -> None:
    body = text_of(response)
    for secret in GLOBEX_TEXT:
        assert secret not in body, secret


@pytest.fixture(autouse=True)
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def acme_sends_as(acme: Organization) -> SmsSettings:
    return SmsSettings.objects.create(organization=acme, business_name="Acme Deals")


@pytest.fixture
def mia(acme: Organization) -> User:
    """A manager at Acme: managers launch campaigns."""
    user = UserFactory(email="mia@acme.test", full_name="Mia Manager")
    MembershipFactory(user=user, organization=acme, role=Role.MANAGER)
    return user


@pytest.fixture
def number(acme: Organization) -> SendingNumber:
    return SendingNumber.objects.create(organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 1, 1))


@pytest.fixture
def globex_things(globex: Organization) -> dict[str, Any]:
    SmsSettings.objects.create(organization=globex, business_name="Globex Corp")
    number = SendingNumber.objects.create(organization=globex, phone_e164="+15550001111", warmup_start=date(2026, 1, 1))
    template = template_create(organization=globex, name="Globex Deals", body="Globex deals today")
    campaign = campaign_create(
        organization=globex, name="Globex Spring", template_ids=[template.pk], number_ids=[number.pk]
    )
    return {"number": number, "template": template, "campaign": campaign}


# -- templates ------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:messaging_template_new", "portal:messaging_templates")
def test_a_template_is_created_and_listed_with_its_parts_as_sent(client_for, acme, globex, alice, globex_things):
    client = client_for(alice)
    page = client.get("/messaging/templates/new/")
    body = text_of(page)
    assert 'hx-get="/messaging/templates/preview/"' in body
    assert "Type the message to see how many parts it takes." in body
    response = client.post(
        "/messaging/templates/new/", {"name": " Spring ", "body": "Hi {first_name}, our spring sale starts today"}
    )
    assert response.status_code == 302 and response["Location"] == "/messaging/templates/"
    template = Template.objects.for_org(acme).get()
    assert (template.name, template.body) == ("Spring", "Hi {first_name}, our spring sale starts today")
    listing = client.get("/messaging/templates/")
    [(listed, preview)] = listing.context["rows"]
    assert listed == template
    # "Acme Deals: " + "Hi Sam, our spring sale starts today" + " Reply STOP to opt out"
    assert preview.text == "Acme Deals: Hi Sam, our spring sale starts today Reply STOP to opt out"
    assert (preview.count.encoding, preview.count.units, preview.count.parts) == ("GSM-7", 70, 1)
    assert_nothing_of_globex(listing)
    assert Template.objects.for_org(globex).count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "Promo", "body": "Use {code}"}, "body", "{code} is not a placeholder"),
        ({"name": "Promo", "body": "Hi {first_name"}, "body", "A brace is not closed"),
        ({"name": "Promo", "body": "   "}, "body", "This field is required."),
        ({"name": "Promo", "body": "x" * 1601}, "body", "at most 1600 characters"),
        ({"name": "", "body": "Hi"}, "name", "This field is required."),
    ],
)
def test_a_bad_template_is_refused_beside_its_field(client_for, acme, alice, data, field, message):
    response = client_for(alice).post("/messaging/templates/new/", data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and message in errors[field][0]
    assert not Template.objects.exists()


@pytest.mark.isolation("portal:messaging_template_edit")
def test_a_template_is_edited_and_another_organizations_is_404(client_for, acme, alice, globex_things):
    template = template_create(organization=acme, name="Promo", body="Hi {first_name}")
    client = client_for(alice)
    page = client.get(f"/messaging/templates/{template.pk}/")
    assert page.context["preview"].text == "Acme Deals: Hi Sam Reply STOP to opt out"
    response = client.post(f"/messaging/templates/{template.pk}/", {"name": "Promo 2", "body": "Sale on {link}"})
    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.body) == ("Promo 2", "Sale on {link}")
    refused = client.post(f"/messaging/templates/{template.pk}/", {"name": "Promo 3", "body": "Use {code}"})
    assert refused.status_code == 400 and "body" in refused.context["form"].errors
    template.refresh_from_db()
    assert template.name == "Promo 2"
    other = globex_things["template"]
    assert client.get(f"/messaging/templates/{other.pk}/").status_code == 404
    assert client.post(f"/messaging/templates/{other.pk}/", {"name": "Mine", "body": "Mine"}).status_code == 404
    other.refresh_from_db()
    assert other.name == "Globex Deals"


@pytest.mark.isolation("portal:messaging_template_preview")
def test_the_live_preview_counts_the_parts_of_the_message_as_composed(client_for, acme, alice, globex_things):
    client = client_for(alice)

    def preview(body: str) -> Any:
        response = client.get("/messaging/templates/preview/", {"body": body}, headers={"HX-Request": "true"})
        assert response.status_code == 200
        return response

    short = preview("Hi {first_name}")
    assert short.context["preview"].text == "Acme Deals: Hi Sam Reply STOP to opt out"
    assert 'data-segments="1"' in text_of(short) and 'data-encoding="GSM-7"' in text_of(short)
    assert "<html" not in text_of(short)  # the block alone, for htmx to swap in
    # 12 ("Acme Deals: ") + 150 + 22 (" Reply STOP to opt out") = 184 septets: two parts of up to 153.
    long = preview("x" * 150).context["preview"].count
    assert (long.encoding, long.units, long.parts, long.per_part) == ("GSM-7", 184, 2, 153)
    # An emoji is two UTF-16 units and makes the whole message Unicode: 15 + 2 + 22 = 39 units, 70 a part.
    emoji = preview("Hi \U0001f600")
    assert (emoji.context["preview"].count.encoding, emoji.context["preview"].count.units) == ("UCS-2", 39)
    assert "sends the whole message as Unicode" in text_of(emoji)
    # Naming the sender and saying how to opt out already: nothing is added.
    own = preview("Acme Deals: sale today, text STOP to 0400 000 001 to unsubscribe").context["preview"]
    assert own.text == "Acme Deals: sale today, text STOP to 0400 000 001 to unsubscribe"
    broken = preview("Use {code}")
    assert "{code} is not a placeholder" in text_of(broken) and broken.context["preview"].count is None
    assert preview("").context["preview"].count is None
    # Acme's sender, never Globex's.
    assert_nothing_of_globex(short)


# -- creating a campaign --------------------------------------------------------------------------------------------


@pytest.fixture
def templates(acme: Organization) -> list[Template]:
    return [
        template_create(organization=acme, name="A first", body="Hi {first_name}, sale at {link}"),
        template_create(organization=acme, name="B second", body="Sale today {link}"),
    ]


def campaign_data(templates: list[Template], number: SendingNumber, **change: Any) -> dict[str, Any]:
    return {
        "name": "Spring sale",
        "template_1": str(templates[1].pk),
        "template_2": str(templates[0].pk),
        "numbers": [str(number.pk)],
        "audience_tags": "VIP, perth",
        "link_url": "https://acme.test/sale",
        "start_at": "2026-11-12T09:00",
        **change,
    }


@pytest.mark.isolation("portal:messaging_campaign_new")
def test_a_campaign_is_created_with_its_templates_in_the_chosen_order(
    client_for, acme, globex, alice, templates, number, globex_things
):
    client = client_for(alice)
    page = client.get("/messaging/campaigns/new/")
    form = page.context["form"]
    assert form.slots == ["template_1", "template_2"]
    assert [label for _, label in form.fields["numbers"].choices] == ["+61400000001"]
    assert_nothing_of_globex(page)
    response = client.post("/messaging/campaigns/new/", campaign_data(templates, number))
    campaign = Campaign.objects.for_org(acme).get()
    assert response.status_code == 302 and response["Location"] == f"/messaging/campaigns/{campaign.pk}/"
    ordered = list(campaign.template_links.order_by("position").values_list("template__name", flat=True))
    assert ordered == ["B second", "A first"]
    assert [link.number for link in campaign.number_links.all()] == [number]
    assert (campaign.status, campaign.audience_tags, campaign.link_url, campaign.created_by) == (
        CampaignStatus.DRAFT,
        ",perth,vip,",
        "https://acme.test/sale",
        alice,
    )
    # 09:00 on Thursday in Sydney (AEDT, UTC+11) is 22:00 UTC on Wednesday.
    assert campaign.start_at == datetime(2026, 11, 11, 22, 0, tzinfo=UTC)
    assert Campaign.objects.for_org(globex).count() == 1


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"template_1": ""}, "template_1", "This field is required."),
        ({"template_2": "same"}, "template_1", "Choose each template once."),
        ({"numbers": []}, "numbers", "This field is required."),
        ({"link_url": ""}, "link_url", "A template uses {link}: say where it leads."),
        ({"link_url": "acme.test/sale"}, "link_url", "Give a full web address (https://...)."),
        ({"start_at": "next week"}, "start_at", "Enter a valid date/time."),
        ({"template_1": "globex"}, "template_1", "Select a valid choice."),
        ({"numbers": ["globex"]}, "numbers", "Select a valid choice."),
    ],
)
def test_a_bad_campaign_is_refused_beside_its_field_and_nothing_is_stored(
    client_for, acme, alice, templates, number, globex_things, change, field, message
):
    values = {"same": str(templates[1].pk), "globex": str(globex_things["template"].pk)}
    if change.get("numbers") == ["globex"]:
        change = {"numbers": [str(globex_things["number"].pk)]}
    change = {key: values.get(value, value) if isinstance(value, str) else value for key, value in change.items()}
    response = client_for(alice).post("/messaging/campaigns/new/", campaign_data(templates, number, **change))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and message in errors[field][0], errors
    assert not Campaign.objects.for_org(acme).exists()


def test_without_templates_or_numbers_the_form_says_what_is_missing(client_for, acme, alice):
    body = text_of(client_for(alice).get("/messaging/campaigns/new/"))
    assert "no active sending number yet" in body and "template</a> first" in body


# -- a campaign: actions, analytics, export -------------------------------------------------------------------------


@pytest.fixture
def audience(acme: Organization) -> list[Contact]:
    consent = {"source": "web form"}
    people = [("0412000001", "Ann", "vip", True), ("0412000002", "Bo", "perth", True),
              ("0412000003", "Cy", "vip", False), ("0412000004", "Di", "other", True)]  # fmt: skip
    return [
        contact_create(
            organization=acme,
            phone=phone,
            data={"first_name": name, "tags": [tag]},
            consent=consent if agreed else None,
        )
        for phone, name, tag, agreed in people
    ]


@pytest.fixture
def campaign(acme: Organization, templates: list[Template], number: SendingNumber, alice: Any) -> Campaign:
    return campaign_create(
        organization=acme,
        name="Spring sale",
        template_ids=[templates[0].pk],
        number_ids=[number.pk],
        audience_tags=["vip", "perth"],
        link_url="https://acme.test/sale",
        actor=alice,
    )


@pytest.mark.isolation("portal:messaging_campaign_action")
def test_a_campaign_is_launched_paused_resumed_and_canceled_from_its_page(
    client_for, acme, mia, campaign, audience, globex_things
):
    client = client_for(mia)  # a manager
    url = f"/messaging/campaigns/{campaign.pk}/"

    def act(action: str) -> Any:
        response = client.post(f"{url}action/", {"action": action})
        assert response.status_code == 302 and response["Location"] == url
        campaign.refresh_from_db()
        return response

    assert [action for action, _ in client.get(url).context["actions"]] == ["launch", "cancel"]
    launched = act("launch")
    # Ann and Bo: tagged and with consent (Cy has no consent, Di is not in the audience).
    assert message_texts(launched)[-1] == "Spring sale is launched: 2 messages queued."
    assert campaign.status == CampaignStatus.RUNNING
    assert sorted(SendJob.objects.for_org(acme).values_list("contact__first_name", flat=True)) == ["Ann", "Bo"]
    assert [action for action, _ in client.get(url).context["actions"]] == ["pause", "cancel"]
    act("pause")
    assert campaign.status == CampaignStatus.PAUSED
    assert message_texts(act("resume"))[-1] == "Spring sale is running again."
    assert campaign.status == CampaignStatus.RUNNING
    act("cancel")
    assert campaign.status == CampaignStatus.CANCELED
    assert client.get(url).context["actions"] == []
    assert set(SendJob.objects.for_org(acme).values_list("state", flat=True)) == {JobState.SKIPPED}
    # A refused move is said on the page, not a 500.
    refused = act("resume")
    assert message_texts(refused)[-1] == "A canceled campaign cannot be running."
    assert campaign.status == CampaignStatus.CANCELED
    assert message_texts(act("explode"))[-1] == "Launch, pause, resume or cancel the campaign."
    other = globex_things["campaign"]
    assert client.post(f"/messaging/campaigns/{other.pk}/action/", {"action": "cancel"}).status_code == 404
    other.refresh_from_db()
    assert other.status == CampaignStatus.DRAFT


def test_a_partner_admin_launches_and_a_refused_launch_is_said_on_the_page(
    client_for, acme, alice, pat, campaign, audience, monkeypatch
):
    url = f"/messaging/campaigns/{campaign.pk}/action/"
    monkeypatch.setattr("sms.services.campaigns.may_launch", lambda **_: False)
    refused = client_for(alice).post(url, {"action": "launch"})
    assert refused.status_code == 302
    assert message_texts(refused)[-1] == "Only owners, admins and managers launch, pause and resume campaigns."
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and not SendJob.objects.exists()
    monkeypatch.undo()
    launched = client_for(pat).post(url, {"action": "launch"})
    assert message_texts(launched)[-1] == "Spring sale is launched: 2 messages queued."


@pytest.fixture
def results(acme: Organization, campaign: Campaign, number: SendingNumber) -> Campaign:
    """Six messages: three delivered, one sent, one failed, one skipped (DNC). Clicks: Ann's link by a person and a
    link preview, Bo's by a link preview only. One opt-out reply. Gates: DNC once, quiet hours four times."""
    states = [JobState.DELIVERED] * 3 + [JobState.SENT, JobState.FAILED, JobState.SKIPPED]
    jobs = []
    for index, state in enumerate(states):
        contact = contact_create(organization=acme, phone=f"04130000{index:02d}", data={"first_name": f"N{index}"})
        sent = state != JobState.SKIPPED
        jobs.append(
            SendJob.objects.create(
                organization=acme, campaign=campaign, contact=contact, position=index, state=state,
                number=number if sent else None, segments=1 if sent else 0,
                cost=Decimal("0.0555") if state in (JobState.DELIVERED, JobState.SENT) else Decimal("0"),
                sent_at=NOW - timedelta(hours=1) if sent else None,
                delivered_at=NOW - timedelta(minutes=59) if state == JobState.DELIVERED else None,
                reason="dnc" if state == JobState.SKIPPED else "",
            )
        )  # fmt: skip
    expires = NOW + timedelta(days=60)
    first = ShortLink.objects.create(
        organization=acme, token="tok0", job=jobs[0], url=campaign.link_url, expires_at=expires
    )
    second = ShortLink.objects.create(
        organization=acme, token="tok1", job=jobs[1], url=campaign.link_url, expires_at=expires
    )
    Click.objects.create(organization=acme, link=first, is_bot=False, user_agent="Mozilla/5.0")
    Click.objects.create(organization=acme, link=first, is_bot=True, user_agent="Slackbot")
    Click.objects.create(organization=acme, link=second, is_bot=True, user_agent="facebookexternalhit")
    InboundMessage.objects.create(
        organization=acme, contact=jobs[2].contact, campaign=campaign, provider_sid="SM-stop", from_e164="+61413000002",
        to_e164=number.phone_e164, body="STOP", kind=InboundKind.OPT_OUT,
    )  # fmt: skip
    InboundMessage.objects.create(
        organization=acme, contact=jobs[3].contact, campaign=campaign, provider_sid="SM-re", from_e164="+61413000003",
        to_e164=number.phone_e164, body="Still on?", kind=InboundKind.REPLY,
    )  # fmt: skip
    CampaignGateCount.objects.create(campaign=campaign, gate="dnc", count=1)
    CampaignGateCount.objects.create(campaign=campaign, gate="quiet_hours", count=4)
    return campaign


@pytest.mark.isolation("portal:messaging_campaign")
def test_the_campaign_page_shows_its_analytics_with_charts(client_for, acme, alice, results, globex_things):
    response = client_for(alice).get(f"/messaging/campaigns/{results.pk}/")
    assert response.status_code == 200
    stats = response.context["stats"]
    assert stats["total"] == 6
    assert [(bar.label, bar.count, bar.width) for bar in stats["state_bars"]] == [
        ("Queued", 0, "0.0"),
        ("Sending", 0, "0.0"),
        ("Sent", 1, "16.7"),
        ("Delivered", 3, "50.0"),
        ("Failed", 1, "16.7"),
        ("Skipped", 1, "16.7"),
    ]
    gates = {bar.label: (bar.count, bar.width) for bar in stats["gate_bars"]}
    assert gates["Quiet hours"] == (4, "100.0") and gates["On the do-not-contact list"] == (1, "25.0")
    assert gates["Budget cap reached"] == (0, "0.0")
    body = text_of(response)
    shown = {
        name: body.split(f'data-stat="{name}">')[1].split("</dd>")[0]
        for name in ("total", "cost", "delivery_rate", "ctr_human", "ctr_all", "opt_outs")
    }
    # 4 x 0.0555 = 0.2220 -> 0.22; delivered 3 of 5 handed over; people clicked 1 of 3 delivered, anything 2 of 3.
    assert shown == {
        "total": "6",
        "cost": "AUD 0.22",
        "delivery_rate": "60.0 %",
        "ctr_human": "33.3 %",
        "ctr_all": "66.7 %",
        "opt_outs": "1",
    }
    replies = body.split('data-stat="replies">')[1].split("</dd>")[0]
    assert replies == f'<a href="/messaging/replies/?campaign={results.pk}">1</a>'
    assert 'style="width: 50.0%"' in body  # the delivered bar
    assert "Acme Deals: Hi Sam, sale at" in body  # its template as sent
    assert f'href="/messaging/campaigns/{results.pk}/export.csv"' in body
    assert_nothing_of_globex(response)
    assert client_for(alice).get(f"/messaging/campaigns/{globex_things['campaign'].pk}/").status_code == 404


def test_a_campaign_without_messages_says_so(client_for, alice, campaign):
    body = text_of(client_for(alice).get(f"/messaging/campaigns/{campaign.pk}/"))
    assert "No messages yet: they are created at launch." in body and "No message was held or skipped." in body
    assert 'data-stat="delivery_rate">-</dd>' in body


@pytest.mark.isolation("portal:messaging_campaign_export")
def test_the_csv_export_has_one_line_per_message(client_for, acme, alice, results, globex_things):
    response = client_for(alice).get(f"/messaging/campaigns/{results.pk}/export.csv")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="campaign-{results.pk}.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["phone", "name", "state", "reason"]
    assert len(rows) == 7
    first = dict(zip(rows[0], rows[1], strict=True))
    assert (first["phone"], first["name"], first["state"], first["cost"]) == (
        "'+61413000000",
        "N0",
        "DELIVERED",
        "0.0555",
    )
    assert (first["clicks_human"], first["clicks_all"]) == ("1", "2")
    assert rows[6][2:4] == ["SKIPPED", "dnc"]
    other = globex_things["campaign"]
    assert client_for(alice).get(f"/messaging/campaigns/{other.pk}/export.csv").status_code == 404


@pytest.mark.isolation("portal:messaging_campaigns")
def test_the_campaign_list_shows_each_campaigns_messages(client_for, acme, alice, results, globex_things):
    response = client_for(alice).get("/messaging/campaigns/")
    [listed] = response.context["page"].object_list
    assert (listed.name, listed.job_count) == ("Spring sale", 6)
    assert_nothing_of_globex(response)


# -- query counts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [2, 20])
def test_template_and_campaign_lists_cost_the_same_queries_for_2_or_20_rows(
    client_for, acme, alice, number, frozen, rows, django_assert_max_num_queries
):
    for index in range(rows):
        template = template_create(organization=acme, name=f"T{index:02d}", body=f"Offer {index}")
        made = campaign_create(
            organization=acme, name=f"C{index:02d}", template_ids=[template.pk], number_ids=[number.pk]
        )
        SendJob.objects.create(
            organization=acme, campaign=made, contact=contact_create(organization=acme, phone=f"04140000{index:02d}")
        )
        frozen.shift(timedelta(seconds=1))
    dnc_add(organization=acme, phone_e164="+61414000000", reason="manual")
    client = client_for(alice)
    # base + the settings (the sender's name) + count + one page of templates
    with django_assert_max_num_queries(BASE + 3):
        response = client.get("/messaging/templates/")
    assert len(response.context["rows"]) == rows
    # base + count + one page of campaigns with their message counts
    with django_assert_max_num_queries(BASE + 2):
        response = client.get("/messaging/campaigns/")
    assert [campaign.job_count for campaign in response.context["page"]] == [1] * rows
