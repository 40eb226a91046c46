"""Messaging's replies: every message contacts sent back that was not a keyword (opt-out, opt-in, help), newest
first, from every campaign or one. People are told of replies by the quarter of an hour
(``sms.services.reply_notices``); this page is where all of them are."""

from __future__ import annotations

import uuid

from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal.access import MemberRequest
from portal.views.messaging import PAGE_SIZE, messaging_page, org_of
from portal.views.messaging_campaigns import campaign_or_404
from sms.models import Campaign, InboundKind, InboundMessage
from sms.selectors import replies_csv, replies_of

CAMPAIGNS_OFFERED = 200  # the newest campaigns with replies, in the filter


def _chosen_campaign(request: MemberRequest) -> Campaign | None:
    """The campaign ``?campaign=`` names, None without one; 404 for one the organization does not have."""
    wanted = request.GET.get("campaign", "").strip()
    if not wanted:
        return None
    try:
        campaign_id = uuid.UUID(wanted)
    except ValueError:
        raise Http404("No such campaign.") from None
    return campaign_or_404(request, campaign_id)


@require_safe
@messaging_page
def messaging_replies(request: MemberRequest) -> HttpResponse:
    org = org_of(request)
    chosen = _chosen_campaign(request)
    replies = replies_of(org, chosen)
    # Queries: the count, one page of replies (with contact and campaign), the campaigns that have replies.
    page = Paginator(replies, PAGE_SIZE).get_page(request.GET.get("page"))
    answered = InboundMessage.objects.filter(campaign=OuterRef("pk"), kind=InboundKind.REPLY)
    campaigns = (
        Campaign.objects.for_org(org)
        .filter(Exists(answered))
        .order_by("-created_at", "-id")
        .values("pk", "name")[:CAMPAIGNS_OFFERED]
    )
    context = {"page": page, "campaigns": list(campaigns), "chosen": chosen}
    return render(request, "portal/messaging/replies.html", context)


@require_safe
@messaging_page
def messaging_replies_export(request: MemberRequest) -> StreamingHttpResponse:
    """The replies (of ``?campaign=`` only, if given) as CSV, streamed however many there are."""
    org = org_of(request)
    chosen = _chosen_campaign(request)
    response = StreamingHttpResponse(replies_csv(org, chosen), content_type="text/csv; charset=utf-8")
    name = f"replies-{chosen.pk}.csv" if chosen is not None else "replies.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
