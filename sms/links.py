"""Short links: ``GET /s/<token>`` counts a click and redirects to where the campaign's ``{link}`` leads.

The route is public: the token is the only credential (like a quote's key), so the link is found by its token alone,
and the click is recorded in the link's own organization. The view sets no cookie and touches neither the session
nor the signed-in user, and every answer says not to cache it, so each visit is counted.

- An unknown token is the plain 404 page.
- A link is valid strictly before its ``expires_at``: from that instant on it answers 410 Gone with a short page,
  and records nothing.
- Otherwise one ``Click`` row is written and the answer is a 302 to the link's URL. Finding the link and counting
  the click are one statement (``INSERT ... SELECT`` from the link that returns its URL), so a click can only be
  counted for a link that exists and is still valid at that instant. On PostgreSQL the click commits
  asynchronously (``synchronous_commit`` off for its transaction alone): the redirect does not wait for the disk,
  and a crash of PostgreSQL itself may lose the last fraction of a second's clicks, never anything else.

Clicks by machines are recorded with ``is_bot=True`` so click-through rates can leave them out: HEAD requests (a
browser following a link always GETs it), requests without a user agent, user agents the ``crawlerdetect`` library
knows (search engines, monitors, HTTP libraries, most link-preview fetchers), and the preview fetchers of messaging
apps listed in :data:`PREVIEW_FETCHERS`. A bot still gets the redirect, and its click changes nothing but its row.
"""

from __future__ import annotations

import re
from datetime import datetime

from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]  # ships no type information
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from sms.models import Click, ShortLink, SmsSettings
from tenancy.statements import ASYNCHRONOUS_COMMIT, statement_cursor

TOKEN = re.compile(r"[A-Za-z0-9_-]{1,16}")
USER_AGENT_LIMIT = 400  # Click.user_agent's length
# Link-preview fetchers of messaging and social apps. crawlerdetect knows most of them already; these are named
# here so the ones a text message meets stay covered whatever its list becomes. Matched against the lower-cased user
# agent: the same matches as ignoring case (a header's characters are Latin-1), at a tenth of the cost.
PREVIEW_FETCHERS = re.compile(
    r"slackbot|slack-imgproxy|whatsapp|facebookexternalhit|facebookcatalog|facebot|twitterbot|telegrambot|"
    r"discordbot|linkpreview|skypeuripreview|googlebot|google-pagerenderer|applebot|bingbot|bingpreview|"
    r"linkedinbot|pinterest|redditbot|embedly|iframely|viber|snapchat|mastodon|bluesky|cardyb|vkshare|"
    r"microsoftpreview|yahoo.*slurp"
)
_crawlers = CrawlerDetect()  # compiles its patterns once; is_crawler() caches answers per user agent
_LINK = ShortLink._meta.db_table
_CLICK = Click._meta.db_table
# The link's URL comes back from the row just inserted: the statement returns nothing when no valid link has the
# token.
_CLICK_INSERT = (
    f'INSERT INTO "{_CLICK}" ("organization_id", "link_id", "at", "user_agent", "is_bot") '  # noqa: S608
    f'SELECT "organization_id", "id", %s, %s, %s FROM "{_LINK}" WHERE "token" = %s AND "expires_at" > %s '
    f'RETURNING (SELECT "url" FROM "{_LINK}" WHERE "id" = "{_CLICK}"."link_id")'
)

# A click is a count, not a promise: on PostgreSQL its transaction commits without waiting for the disk
# (asynchronous commit). If PostgreSQL itself crashes, the clicks of its last fraction of a second may be missing;
# nothing else is at risk, and the person was redirected either way. On its own (autocommit) the statement is its
# own transaction, and it turns the setting off for that transaction alone (``ASYNCHRONOUS_COMMIT``, joined to the
# row it inserts): one round trip, with no BEGIN, SET and COMMIT around it.
_CLICK_INSERT_ASYNCHRONOUS = (
    f'INSERT INTO "{_CLICK}" ("organization_id", "link_id", "at", "user_agent", "is_bot") '  # noqa: S608
    f'SELECT l."organization_id", l."id", %s, %s, %s FROM "{_LINK}" AS l, '
    f"({ASYNCHRONOUS_COMMIT}) AS asynchronous "
    'WHERE l."token" = %s AND l."expires_at" > %s '
    f'RETURNING (SELECT "url" FROM "{_LINK}" WHERE "id" = "{_CLICK}"."link_id")'
)


def is_bot(*, method: str, user_agent: str) -> bool:
    """Whether a request for a short link is a machine's: see the module docstring."""
    if method == "HEAD":
        return True
    agent = user_agent.strip()
    if not agent:
        return True
    return bool(PREVIEW_FETCHERS.search(agent.lower())) or _crawlers.is_crawler(agent)


def click_record(*, token: str, user_agent: str, bot: bool, at: datetime) -> str | None:
    """One click, at ``at``, on the link with ``token`` if it is valid then, in the link's organization; the URL it
    leads to. None, and nothing recorded, when no link has the token or it has expired."""
    when = connection.ops.adapt_datetimefield_value(at)
    # On its own (the view), the click commits without waiting for the disk; inside a caller's transaction it leaves
    # that transaction's commit alone.
    asynchronous = connection.vendor == "postgresql" and connection.get_autocommit()
    with statement_cursor() as cursor:
        cursor.execute(
            _CLICK_INSERT_ASYNCHRONOUS if asynchronous else _CLICK_INSERT,
            [when, user_agent[:USER_AGENT_LIMIT], bot, token, when],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


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
    now = timezone.now()
    user_agent = request.headers.get("user-agent", "")
    bot = is_bot(method=request.method or "GET", user_agent=user_agent)
    url = click_record(token=token, user_agent=user_agent, bot=bot, at=now)
    if url is not None:
        response: HttpResponse = HttpResponseRedirect(url)
    else:
        # No valid link had the token. The organization is read only for an expired link's page.
        link = ShortLink.objects.filter(token=token).only("organization", "expires_at").first()
        if link is None or now < link.expires_at:  # unknown, or made after the click was looked for
            raise Http404("No such link.")
        response = _expired_page(link)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response
