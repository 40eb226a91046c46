"""What the status page asks about Calendly: the booked call's time, and where to book one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import dateformat, timezone

from integrations.calendly.models import Booking, BookingStatus
from qualification.models import Qualification

MEETING_FORMAT = "l j F Y, H:i T"  # Tuesday 3 March 2026, 10:00 AEDT


@dataclass(frozen=True)
class Meeting:
    start: datetime  # in ``zone``
    zone: str

    @property
    def label(self) -> str:
        return dateformat.format(self.start, MEETING_FORMAT)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def scheduled_meeting(qualification: Qualification) -> Meeting | None:
    """The qualification's booked call: the next one not yet over, else the last one. Shown in the time zone the
    invitee booked in (Calendly's ``timezone``), else the site's. One query."""
    bookings = list(
        Booking.objects.filter(qualification=qualification, status=BookingStatus.SCHEDULED)
        .only("start_time", "end_time", "timezone")
        .order_by("start_time")
    )
    if not bookings:
        return None
    now = timezone.now()
    booking = next((item for item in bookings if item.end_time >= now), bookings[-1])
    zone = _zone(booking.timezone or settings.TIME_ZONE)
    return Meeting(start=booking.start_time.astimezone(zone), zone=zone.key)


def booking_link(base_url: str, *, qualification_id: uuid.UUID) -> str:
    """``base_url`` (the Calendly event page) with UTM parameters Calendly hands back in the booking's ``tracking``:
    ``utm_content`` is the qualification's id, so the booking finds its qualification whatever email is typed in.
    No personal data goes into the link: the public status page shows it."""
    parts = urlsplit(base_url)
    query = [
        (name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if not name.startswith("utm_")
    ]
    query += [("utm_source", "keel"), ("utm_medium", "status_page"), ("utm_content", str(qualification_id))]
    return urlunsplit(parts._replace(query=urlencode(query)))


def booking_url(qualification: Qualification) -> str:
    """Where the prospect books their discovery call, or "" when no booking page is configured."""
    base = settings.CALENDLY_BOOKING_URL.strip()
    return booking_link(base, qualification_id=qualification.id) if base else ""
