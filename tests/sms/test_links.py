"""Short links: a click is recorded and redirected, an unknown token is 404, a link is valid strictly before its
``expires_at`` (410 from that instant), and bots (crawlers, link-preview fetchers, HEAD requests) are flagged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from sms.links import is_bot
from sms.models import Click, JobState, SendingNumber, SendJob, ShortLink, SmsSettings
from sms.services.campaigns import campaign_create, template_create
from sms.services.contacts import contact_create

pytestmark = pytest.mark.django_db

EXPIRES = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36"
)
BOTS = [
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "WhatsApp/2.24.6.77 A",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "TelegramBot (like TwitterBot)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    # iMessage's preview fetcher passes itself off as Facebook's and Twitter's.
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 "
    "Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "Mozilla/5.0 (compatible; LinkPreview/1.0)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Viber/21.3.0",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "",
]


@pytest.fixture
def link(acme: Any) -> ShortLink:
    number = SendingNumber.objects.create(organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 1, 1))
    template = template_create(organization=acme, name="Sale", body="Sale: {link}")
    campaign = campaign_create(
        organization=acme,
        name="Sale",
        template_ids=[template.pk],
        number_ids=[number.pk],
        link_url="https://shop.acme.test/sale?utm_source=sms",
    )
    contact = contact_create(organization=acme, phone="0412000001", consent={"source": "form"})
    job = SendJob.objects.create(organization=acme, campaign=campaign, contact=contact, state=JobState.DELIVERED)
    return ShortLink.objects.create(
        organization=acme, token="Ab3_x-Z9kQ", job=job, url=campaign.link_url, expires_at=EXPIRES
    )


def test_a_click_is_recorded_and_redirected_without_cookies(link):
    with time_machine.travel(EXPIRES - timedelta(days=3), tick=False):
        response = Client().get("/s/Ab3_x-Z9kQ", HTTP_USER_AGENT=PHONE)
        # A trailing slash is served too, and each visit counts.
        again = Client().get("/s/Ab3_x-Z9kQ/", HTTP_USER_AGENT=ANDROID)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.acme.test/sale?utm_source=sms"
    assert "no-cache" in response["Cache-Control"] and response["X-Robots-Tag"] == "noindex, nofollow"
    assert response.cookies == {}  # no session, no CSRF cookie
    click = Click.objects.order_by("id").first()
    assert click is not None
    assert (click.link_id, click.organization_id, click.user_agent, click.is_bot, click.at) == (
        link.pk,
        link.organization_id,
        PHONE,
        False,
        EXPIRES - timedelta(days=3),
    )
    assert again.status_code == 302
    assert list(Click.objects.order_by("id").values_list("user_agent", "is_bot")) == [(PHONE, False), (ANDROID, False)]


@pytest.mark.parametrize("token", ["unknown1", "Ab3_x-Z9kq", "a" * 17, "Ab3.x", "%00"])
def test_an_unknown_token_is_404(link, token):
    response = Client().get(f"/s/{token}", HTTP_USER_AGENT=PHONE)
    assert response.status_code == 404
    assert not Click.objects.exists()


def test_a_link_expires_exactly_at_expires_at(link):
    with time_machine.travel(EXPIRES - timedelta(microseconds=1), tick=False):
        assert Client().get("/s/Ab3_x-Z9kQ", HTTP_USER_AGENT=PHONE).status_code == 302
    with time_machine.travel(EXPIRES, tick=False):
        gone = Client().get("/s/Ab3_x-Z9kQ", HTTP_USER_AGENT=PHONE)
    assert gone.status_code == 410
    page = gone.content.decode()
    assert "This link has expired" in page and "Acme Pty Ltd" in page
    assert gone.cookies == {}
    with time_machine.travel(EXPIRES + timedelta(days=30), tick=False):
        assert Client().head("/s/Ab3_x-Z9kQ").status_code == 410
    assert Click.objects.count() == 1  # only the visit before it expired


def test_the_expired_page_names_the_business_name_when_set(link, acme):
    SmsSettings.objects.create(organization=acme, business_name="Acme <Deals>")
    with time_machine.travel(EXPIRES + timedelta(hours=1), tick=False):
        page = Client().get("/s/Ab3_x-Z9kQ", HTTP_USER_AGENT=PHONE).content.decode()
    assert "Acme &lt;Deals&gt;" in page and "<Deals>" not in page


@pytest.mark.parametrize("agent", BOTS)
def test_crawlers_and_preview_fetchers_are_flagged_and_still_redirected(link, agent):
    with time_machine.travel(EXPIRES - timedelta(days=1), tick=False):
        response = Client().get("/s/Ab3_x-Z9kQ", HTTP_USER_AGENT=agent)
    assert response.status_code == 302 and response["Location"] == link.url
    click = Click.objects.get()
    assert (click.is_bot, click.user_agent) == (True, agent)
    job = SendJob.objects.get()
    assert (job.state, job.updated_at) == (JobState.DELIVERED, link.job.updated_at)  # nothing else changes


def test_a_head_request_is_a_bot(link):
    with time_machine.travel(EXPIRES - timedelta(days=1), tick=False):
        response = Client().head("/s/Ab3_x-Z9kQ", HTTP_USER_AGENT=PHONE)
    assert response.status_code == 302
    assert Click.objects.get().is_bot is True


def test_other_methods_are_refused(link):
    assert Client().post("/s/Ab3_x-Z9kQ", HTTP_USER_AGENT=PHONE).status_code == 405
    assert not Click.objects.exists()


@pytest.mark.parametrize(
    ("method", "agent", "bot"),
    [("GET", PHONE, False), ("GET", ANDROID, False), ("HEAD", PHONE, True), ("GET", "  ", True)],
)
def test_is_bot(method, agent, bot):
    assert is_bot(method=method, user_agent=agent) is bot


def test_a_very_long_user_agent_is_cut_to_fit(link):
    agent = PHONE + " x" * 300
    with time_machine.travel(EXPIRES - timedelta(days=1), tick=False):
        assert Client().get("/s/Ab3_x-Z9kQ", HTTP_USER_AGENT=agent).status_code == 302
    assert Click.objects.get().user_agent == agent[:400]


@pytest.mark.isolation("sms-short-link")
def test_a_click_belongs_to_the_links_organization_only(link, globex, acme):
    theirs = ShortLink.objects.create(
        organization=globex, token="gLoBeX0001", url="https://globex.test", expires_at=EXPIRES
    )
    with time_machine.travel(EXPIRES - timedelta(days=1), tick=False):
        response = Client().get("/s/gLoBeX0001", HTTP_USER_AGENT=PHONE)
    assert response["Location"] == "https://globex.test"
    assert list(Click.objects.values_list("organization_id", "link_id")) == [(globex.pk, theirs.pk)]
    assert not Click.objects.for_org(acme).exists()
    # Acme's expired page names Acme, Globex's names Globex: nothing of one shows through the other's link.
    with time_machine.travel(EXPIRES, tick=False):
        assert "Globex Corporation" in Client().get("/s/gLoBeX0001").content.decode()
        assert "Globex" not in Client().get("/s/Ab3_x-Z9kQ").content.decode()
