"""Ticket search: PostgreSQL full-text search (English stemming, web-search syntax) over the subject, the description
and the public replies -- never internal notes, so a search cannot reveal them. Other databases fall back to
case-insensitive containment. A reference such as ``T-1042`` also finds that ticket by number.

On PostgreSQL both documents have GIN expression indexes (migration 0005), built from the very expressions
``ticket_document`` and ``reply_document`` give, so a search reads the index instead of computing a vector for every
row. The matching tickets are gathered as one ``UNION`` of ids (subject and description, replies, number), so the
planner joins a short list of matches to the caller's tickets rather than testing each of its tickets.
"""

from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Q, QuerySet

from tickets.models import Comment, Ticket

REFERENCE = re.compile(r"^\s*T-?(\d{1,9})\s*$", re.IGNORECASE)
SEARCH_CONFIG = "english"


def ticket_document() -> SearchVector:
    return SearchVector("subject", "description", config=SEARCH_CONFIG)


def reply_document() -> SearchVector:
    return SearchVector("body", config=SEARCH_CONFIG)


def full_text_available() -> bool:
    return connection.vendor == "postgresql"


def ticket_search(queryset: QuerySet[Ticket], text: str) -> QuerySet[Ticket]:
    text = text.strip()
    if not text:
        return queryset
    number = int(match.group(1)) if (match := REFERENCE.match(text)) else None
    if full_text_available():
        query = SearchQuery(text, config=SEARCH_CONFIG, search_type="websearch")
        matches = (
            Ticket.objects.annotate(document=ticket_document())
            .filter(document=query)
            .order_by()
            .values("pk")
            .union(
                Comment.objects.filter(internal=False)
                .annotate(document=reply_document())
                .filter(document=query)
                .order_by()
                .values("ticket_id")
            )
        )
        if number is not None:
            matches = matches.union(Ticket.objects.filter(number=number).order_by().values("pk"))
        return queryset.filter(pk__in=matches)
    by_number = Q(number=number) if number is not None else Q()
    replies = Comment.objects.filter(internal=False, body__icontains=text).values("ticket_id")
    return queryset.filter(Q(subject__icontains=text) | Q(description__icontains=text) | Q(pk__in=replies) | by_number)
