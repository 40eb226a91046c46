"""Short links: ``GET /s/<token>`` counts a click and redirects to where the campaign's ``{link}`` leads.

The route is public: the token is the only credential (like a quote's key), so the link is found by its token alone,
and the click is recorded in the link's own organization. The view sets no cookie and touches neither the session
nor the signed-in user, and every answer says not to cache it, so each visit is counted.

- An unknown token is the plain 404 page.
- A link is valid strictly before its ``expires_at``: from that instant on it answers 410 Gone with a short page,
  and records nothing.
- Otherwise one ``Click`` row is written (a small transaction of its own) and the answer is a 302 to the link's URL.

Clicks by machines are recorded with ``is_bot=True`` so click-through rates can leave them out: HEAD requests (a
browser following a link always GETs it), requests without a user agent, user agents the ``crawlerdetect`` library
knows (search engines, monitors, HTTP libraries, most link-preview fetchers), and the preview fetchers of messaging
apps listed in :data:`PREVIEW_FETCHERS`. A bot still gets the redirect, and its click changes nothing but its row.
"""

from __future__ import annotations

import re

from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]  # ships no type information
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from sms.models import Click, ShortLink, SmsSettings

TOKEN = re.compile(r"[A-Za-z0-9_-]{1,16}")
USER_AGENT_LIMIT = 400  # Click.user_agent's length
# Link-preview fetchers of messaging and social apps. crawlerdetect knows most of them already; these are named
# here so the ones a text message meets stay covered whatever its list becomes.
PREVIEW_FETCHERS = re.compile(
    r"slackbot|slack-imgproxy|whatsapp|facebookexternalhit|facebookcatalog|facebot|twitterbot|telegrambot|"
    r"discordbot|linkpreview|skypeuripreview|googlebot|google-pagerenderer|applebot|bingbot|bingpreview|"
    r"linkedinbot|pinterest|redditbot|embedly|iframely|viber|snapchat|mastodon|bluesky|cardyb|vkshare|"
    r"microsoftpreview|yahoo.*slurp",
    re.IGNORECASE,
)
_crawlers = CrawlerDetect()  # compiles its patterns once; is_crawler() caches answers per user agent


def is_bot(*, method: str, user_agent: str) -> bool:
    """Whether a request for a short link is a machine's: see the module docstring."""
    if method == "HEAD":
        return True
    agent = user_agent.strip()
    if not agent:
        return True
    return bool(PREVIEW_FETCHERS.search(agent)) or _crawlers.is_crawler(agent)


def click_record(*, link: ShortLink, user_agent: str, bot: bool) -> Click:
    """One click on ``link``, in the link's organization."""
    with transaction.atomic():
        return Click.objects.create(
            organization_id=link.organization_id, link=link, user_agent=user_agent[:USER_AGENT_LIMIT], is_bot=bot
        )


def _expired_page(link: ShortLink) -> HttpResponse:
    sender = (
        SmsSettings.objects.filter(organization_id=link.organization_id).values_list("business_name", flat=True).first()
    )
    # Rendered without the request: the page needs no session, no user and no portal context.
    html = render_to_string("sms/link_expired.html", {"sender": sender or link.organization.display_name})
    return HttpResponse(html, status=410)


@never_cache
@require_safe
def short_link(request: HttpRequest, token: str) -> HttpResponse:
    if not TOKEN.fullmatch(token):
        raise Http404("No such link.")
    # The organization is read only for an expired link's page: a click does not load its row (and its logo).
    link = ShortLink.objects.filter(token=token).first()
    if link is None:
        raise Http404("No such link.")
    if timezone.now() >= link.expires_at:
        response = _expired_page(link)
    else:
        user_agent = request.headers.get("user-agent", "")
        click_record(
            link=link, user_agent=user_agent, bot=is_bot(method=request.method or "GET", user_agent=user_agent)
        )
        response = HttpResponseRedirect(link.url)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response
