"""Templates, message composition and campaign launch: sender named, opt-out line present, one job per consenting
audience contact, launching twice creates nothing, and only owners, admins and managers launch."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from events.models import Event
from sms.messages import OPT_OUT_LINE, compose, has_opt_out, placeholders_of
from sms.models import CampaignStatus, JobState, SendingNumber, SendJob
from sms.services.campaigns import (
    campaign_cancel,
    campaign_create,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    template_create,
)
from sms.services.contacts import contact_create
from tenancy.errors import ConflictError, ServiceValidationError
from tests.helpers import race

pytestmark = pytest.mark.django_db


def test_placeholders_are_checked():
    assert placeholders_of("Hi {first_name}, see {link}") == ["first_name", "link"]
    with pytest.raises(ValueError, match=r"\{coupon\} is not a placeholder"):
        placeholders_of("Use {coupon}")
    with pytest.raises(ValueError, match="not closed"):
        placeholders_of("Hi {first_name")
    with pytest.raises(ValueError, match="not a placeholder"):
        placeholders_of("Hi {first_name!r}")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hi {first_name}, 20% off today", "Acme Pty Ltd: Hi Ann, 20% off today Reply STOP to opt out"),
        ("Acme Pty Ltd sale: {link}", "Acme Pty Ltd sale: https://s.test/s/abc Reply STOP to opt out"),
        ("Hi {first_name}. Reply STOP to unsubscribe", "Acme Pty Ltd: Hi Ann. Reply STOP to unsubscribe"),
        ("Hi {last_name}  there", "Acme Pty Ltd: Hi there Reply STOP to opt out"),
    ],
)
def test_every_message_names_the_sender_and_says_how_to_opt_out(body, expected):
    values = {"first_name": "Ann", "link": "https://s.test/s/abc"}
    assert compose(body, values, "Acme Pty Ltd") == expected
    assert has_opt_out(expected) and not has_opt_out("Hi Ann, stop by our shop")
    assert OPT_OUT_LINE in compose("x", {}, "A")


def test_templates_refuse_bad_bodies(acme):
    with pytest.raises(ServiceValidationError) as bad:
        template_create(organization=acme, name="Promo", body="Use {code}")
    assert "body" in bad.value.message_dict
    with pytest.raises(ServiceValidationError):
        template_create(organization=acme, name=" ", body="Hi")


@pytest.fixture
def number(acme):
    return SendingNumber.objects.create(organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 1, 1))


@pytest.fixture
def audience(acme):
    consent = {"source": "web form"}
    contacts = [
        contact_create(organization=acme, phone="0412000001", data={"tags": ["vip"]}, consent=consent),
        contact_create(organization=acme, phone="0412000002", data={"tags": ["vip", "perth"]}, consent=consent),
        contact_create(organization=acme, phone="0412000003", data={"tags": ["perth"]}, consent=consent),
        contact_create(organization=acme, phone="0412000004", data={"tags": ["vip"]}),  # no consent: never a job
    ]
    return contacts


def make(acme, number, **kwargs):
    first = template_create(organization=acme, name="A", body="Hi {first_name}, see {link}")
    second = template_create(organization=acme, name="B", body="Hello {first_name}")
    values: dict[str, Any] = {"name": "Spring", "template_ids": [first.pk, second.pk], "number_ids": [number.pk]}
    values.update(link_url="https://acme.test/spring", **kwargs)
    return campaign_create(organization=acme, **values)


def test_launch_creates_one_job_per_consenting_audience_contact_once(acme, alice, number, audience):
    campaign = make(acme, number, audience_tags=["VIP"])
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign_launch(campaign=campaign, actor=alice) == 2
    assert campaign.status == CampaignStatus.RUNNING and campaign.launched_at is not None
    jobs = list(SendJob.objects.filter(campaign=campaign).order_by("position"))
    assert [(job.contact.phone_e164, job.position, job.state) for job in jobs] == [
        ("+61412000001", 0, JobState.QUEUED),
        ("+61412000002", 1, JobState.QUEUED),
    ]
    assert campaign_launch(campaign=campaign, actor=alice) == 0  # again: nothing new
    assert SendJob.objects.count() == 2
    assert Event.objects.filter(type="campaign.launched").count() == 2


def test_a_campaign_without_tags_goes_to_every_consenting_contact(acme, alice, number, audience, globex):
    contact_create(organization=globex, phone="0412000001", consent={"source": "form"})
    campaign = make(acme, number)
    assert campaign_launch(campaign=campaign, actor=alice) == 3
    assert set(SendJob.objects.values_list("organization_id", flat=True)) == {acme.pk}


def test_a_future_start_is_scheduled(acme, alice, number, audience):
    start = datetime.now(UTC) + timedelta(days=1)
    campaign = make(acme, number, start_at=start)
    campaign_launch(campaign=campaign, actor=alice)
    assert campaign.status == CampaignStatus.SCHEDULED


def test_only_owners_admins_and_managers_launch_pause_and_resume(acme, bob, alice, number, audience):
    campaign = make(acme, number)
    with pytest.raises(PermissionDenied):
        campaign_launch(campaign=campaign, actor=bob)  # a technician
    assert not SendJob.objects.exists()
    campaign_launch(campaign=campaign, actor=alice)
    with pytest.raises(PermissionDenied):
        campaign_pause(campaign=campaign, actor=bob)
    assert campaign_pause(campaign=campaign, actor=alice).status == CampaignStatus.PAUSED
    assert campaign_resume(campaign=campaign, actor=alice).status == CampaignStatus.RUNNING
    assert campaign_cancel(campaign=campaign, actor=alice).status == CampaignStatus.CANCELED
    with pytest.raises(ConflictError):
        campaign_launch(campaign=campaign, actor=alice)
    with pytest.raises(ConflictError):
        campaign_resume(campaign=campaign, actor=alice)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"template_ids": []}, "template_ids"),
        ({"template_ids": ["not-an-id"]}, "template_ids"),
        ({"number_ids": []}, "number_ids"),
        ({"link_url": ""}, "link_url"),
        ({"link_url": "acme.test"}, "link_url"),
        ({"start_at": datetime(2026, 1, 1)}, "start_at"),  # noqa: DTZ001 - the naive time is refused
    ],
)
def test_campaigns_refuse_bad_input_by_field(acme, number, change, field):
    template = template_create(organization=acme, name="A", body="Hi {first_name} {link}")
    values = {
        "name": "Spring",
        "template_ids": [template.pk],
        "number_ids": [number.pk],
        "link_url": "https://acme.test",
        **change,
    }
    with pytest.raises(ServiceValidationError) as bad:
        campaign_create(organization=acme, **values)
    assert field in bad.value.message_dict


def test_another_organizations_templates_and_numbers_cannot_be_used(acme, globex, number):
    theirs = template_create(organization=globex, name="G", body="Hi")
    their_number = SendingNumber.objects.create(
        organization=globex, phone_e164="+61400000009", warmup_start=date(2026, 1, 1)
    )
    mine = template_create(organization=acme, name="A", body="Hi")
    with pytest.raises(ServiceValidationError) as bad:
        campaign_create(organization=acme, name="X", template_ids=[theirs.pk], number_ids=[number.pk])
    assert "template_ids" in bad.value.message_dict
    with pytest.raises(ServiceValidationError) as bad:
        campaign_create(organization=acme, name="X", template_ids=[mine.pk], number_ids=[their_number.pk])
    assert "number_ids" in bad.value.message_dict


@pytest.mark.django_db(transaction=True)
def test_launches_at_once_create_each_job_once(acme, alice, number, audience):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    campaign = make(acme, number)
    outcomes = race(lambda: campaign_launch(campaign=campaign, actor=alice), 3)
    assert sorted(outcomes) == [0, 0, 3]
    assert SendJob.objects.count() == 3


def test_the_partners_admins_launch_too(acme, pat, number, audience):
    campaign = make(acme, number)
    assert campaign_launch(campaign=campaign, actor=pat) == 3
    assert campaign_pause(campaign=campaign, actor=pat).status == CampaignStatus.PAUSED
