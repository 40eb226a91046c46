"""Discovery calls prospects booked through Calendly, and the webhook deliveries that told us.

Platform-level rows, like the qualifications they belong to (a prospect has no organization yet): staff see them in
the admin; the public status page shows only a booking's meeting time.
"""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now


class BookingStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    CANCELED = "canceled", "Canceled"


class Booking(models.Model):
    """One Calendly invitee (one person booked into one scheduled event), matched to a qualification.

    Calendly never reuses an invitee: a reschedule cancels the old invitee (``rescheduled``) and creates a new one, so
    ``invitee_uri`` is the natural key. A cancellation that arrives before its booking is kept as a canceled row, so
    the late booking cannot schedule a call that no longer exists.
    """

    qualification = models.ForeignKey(
        "qualification.Qualification", on_delete=models.CASCADE, related_name="calendly_bookings"
    )
    invitee_uri = models.CharField(max_length=500, unique=True)
    event_uri = models.CharField(max_length=500, blank=True)
    invitee_email = models.EmailField(blank=True)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    timezone = models.CharField(max_length=64, blank=True, help_text="The invitee's time zone, for showing the time.")
    status = models.CharField(max_length=16, choices=BookingStatus.choices, default=BookingStatus.SCHEDULED)
    previous_status = models.CharField(
        max_length=24,
        blank=True,
        help_text="The qualification's status before the call was booked (restored on cancel).",
    )
    rescheduled = models.BooleanField(default=False, help_text="Canceled because the invitee picked another time.")
    canceled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["qualification", "status"], name="calendly_booking_qualification")]

    def __str__(self) -> str:
        return f"{self.start_time:%Y-%m-%d %H:%M} UTC ({self.get_status_display()})"


class WebhookEvent(models.Model):
    """One Calendly delivery, stored once. Calendly's payloads carry no event id, so ``key`` is a digest of the event
    type, the invitee and Calendly's ``created_at``: a redelivery has the same key and changes nothing."""

    key = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=40)
    invitee_uri = models.CharField(max_length=500)
    created_at = models.DateTimeField(help_text="When Calendly created the event.")
    received_at = models.DateTimeField(default=now)
    booking = models.ForeignKey(Booking, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    outcome = models.CharField(max_length=200, blank=True)
    payload = models.JSONField()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.invitee_uri}"
