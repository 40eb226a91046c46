"""Messaging's replies: every message contacts sent back that was not a keyword (opt-out, opt-in, help), newest
first, from every campaign or one. People are told of replies by the quarter of an hour
(``sms.services.reply_notices``); this page is where all of them are."""

from __future__ import annotations

import uuid

from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal.access import MemberRequest
from portal.views.messaging import PAGE_SIZE, messaging_page, org_of
from sms.models import Campaign, InboundKind, InboundMessage

CAMPAIGNS_OFFERED = 200  # the newest campaigns with replies, in the filter


@require_safe
@messaging_page
def messaging_replies(request: MemberRequest) -> HttpResponse:
    org = org_of(request)
    replies = (
        InboundMessage.objects.for_org(org)
        .filter(kind=InboundKind.REPLY)
        .select_related("contact", "campaign")
        .order_by("-received_at", "-id")
    )
    chosen = None
    wanted = request.GET.get("campaign", "").strip()
    if wanted:
        try:
            chosen = Campaign.objects.for_org(org).filter(pk=uuid.UUID(wanted)).first()
        except ValueError:
            chosen = None
        if chosen is None:
            raise Http404("No such campaign.")
        replies = replies.filter(campaign=chosen)
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
