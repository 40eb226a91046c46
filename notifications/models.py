"""Notifications: what people are told, through which channels, and whether it reached them.

- ``Notice``: one call of ``notify()``: an event of one organization, its context, and an optional idempotency
  ``key`` (unique per organization and event type, so the same notice is never created twice). A *platform notice*
  has no organization: an email to the MSP's staff or to an address that belongs to no customer (a sales assignment
  of a prospect, an automatic answer to an unknown sender). Tenant-scoped lookups never see it; the admin shows it.
- ``Notification``: the notice for one person. It is their in-app item (the bell) when ``in_app`` is on, with
  ``read_at`` once read; the email and SMS to them are its deliveries.
- ``Delivery``: one message on one channel (email, SMS, Slack), with its status (pending, sent, failed, skipped with a
  reason), its attempts and when it is next due. A Slack delivery belongs to the notice, not to a person, and so
  does an email to a plain address (someone without an account, or outside the organization's membership).
- ``NotificationPreference``: a person's choice of channels for one event type in one organization; without a row
  the defaults of their role apply (``notifications.catalogue.ROLE_DEFAULTS``).
- ``SlackWebhook``: an organization's Slack incoming webhook (stored encrypted) and the event types routed to it.
- ``BulkSend``: a notice sent to many organizations by staff (an incident, maintenance), run as a background job
  that counts its progress.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from notifications.catalogue import EMAIL, EVENT_TYPES, SLACK, SMS
from tenancy.models import Organization, TenantModel


class BulkStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft (not started)"
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    DONE = "DONE", "Done"


class BulkSend(models.Model):
    """A notice to the people with ``roles`` in many organizations (all active ones, or those chosen), written as a
    draft and then started. ``total`` is the number of people it is addressed to; each is then counted once as
    ``sent`` (told through at least one channel), ``skipped`` (every channel turned off) or ``failed`` (their
    organization's notice could not be created)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    message = models.TextField(max_length=4000)
    url = models.CharField(max_length=500, blank=True, help_text="A page with more: a path (/status/) or https://.")
    roles = models.JSONField(default=list, help_text="Members with these roles are told.")
    organizations = models.ManyToManyField(
        Organization, blank=True, related_name="+", help_text="Only these organizations; every active one when empty."
    )
    status = models.CharField(max_length=10, choices=BulkStatus.choices, default=BulkStatus.DRAFT)
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the job running it.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(status__in=BulkStatus.values), name="notif_bulk_send_status")]

    def __str__(self) -> str:
        return self.title

    @property
    def done(self) -> int:
        return self.sent + self.skipped + self.failed

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == BulkStatus.DONE else 0
        return min(100, self.done * 100 // self.total)


class Notice(TenantModel):
    organization = models.ForeignKey(  # type: ignore[assignment]
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty for a platform notice (to the MSP's staff, or to an address of no customer).",
    )  # fmt: skip
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=64)
    key = models.CharField(max_length=200, blank=True, help_text="Idempotency key: the notice is created once.")
    context = models.JSONField(default=dict, blank=True)
    template = models.CharField(max_length=100, blank=True, help_text="An email template used instead of the event's.")
    sealed = models.TextField(
        blank=True, help_text="Encrypted values only the email carries (a one-time link); never shown."
    )
    auto_reply = models.BooleanField(
        default=False, help_text="An automatic answer: its email says so, so that other systems do not answer it."
    )
    recipients = models.PositiveIntegerField(default=0, help_text="People it was addressed to.")
    notified = models.PositiveIntegerField(default=0, help_text="People told through at least one channel.")
    bulk_send = models.ForeignKey(BulkSend, null=True, blank=True, on_delete=models.SET_NULL, related_name="notices")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "event_type", "key"], condition=~Q(key=""), name="notif_notice_key_once"
            ),
            # NULLs differ in a unique index, so platform notices need their own.
            models.UniqueConstraint(
                fields=["event_type", "key"],
                condition=Q(organization__isnull=True) & ~Q(key=""),
                name="notif_platform_notice_key_once",
            ),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="notif_notice_org_created")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.created_at:%Y-%m-%d %H:%M}"


class Notification(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event_type = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    in_app = models.BooleanField(default=True, help_text="Shown in the portal (the person's choice).")
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["notice", "user"], name="notif_once_per_person")]
        indexes = [
            models.Index(fields=["user", "organization", "-created_at"], name="notif_inbox"),
            models.Index(
                fields=["user", "organization"],
                condition=Q(in_app=True, read_at__isnull=True),
                name="notif_unread",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    @property
    def event_label(self) -> str:
        event = EVENT_TYPES.get(self.event_type)
        return event.label if event else self.event_type


class Channel(models.TextChoices):
    EMAIL = EMAIL, "Email"
    SMS = SMS, "SMS"
    SLACK = SLACK, "Slack"


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    SENT = "SENT", "Sent"
    FAILED = "FAILED", "Failed"
    SKIPPED = "SKIPPED", "Skipped"


class Reason(models.TextChoices):
    """Why a delivery was skipped or failed."""

    DNC = "dnc", "Number on the do-not-contact list"
    NO_PHONE = "no_phone", "No valid mobile number"
    NO_SENDER = "no_sender", "No number to send SMS from"
    NO_WEBHOOK = "no_webhook", "Slack webhook removed or not usable"
    REFUSED = "refused", "Refused (not worth retrying)"
    GAVE_UP = "gave_up", "Still failing after the last attempt"


class Delivery(TenantModel):
    organization = models.ForeignKey(  # type: ignore[assignment]
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty for the email of a platform notice.",
    )  # fmt: skip
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="deliveries")
    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    to = models.CharField(max_length=254, blank=True, help_text="Email address or E.164 number; blank for Slack.")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    reason = models.CharField(max_length=12, choices=Reason.choices, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When a pending delivery is due.")
    locked_until = models.DateTimeField(null=True, blank=True, help_text="Claimed by a worker until then.")
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=64, blank=True, help_text="The SMS provider's message id.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "channel"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="notif_delivery_status"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="notif_delivery_channel"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status=DeliveryStatus.PENDING), name="notif_delivery_due"
            ),
            models.Index(fields=["organization", "-created_at"], name="notif_delivery_org_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.to or 'Slack'}: {self.get_status_display()}"


class NotificationPreference(TenantModel):
    """A person's channels for one event type in one organization (Slack is the organization's, not theirs)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=64)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=False)
    sms = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event_type"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user", "event_type"], name="notif_preference_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.event_type}"

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(name for name in ("in_app", "email", "sms") if getattr(self, name))


class SlackWebhook(TenantModel):
    """The organization's Slack incoming webhook. The URL is a credential (anyone holding it may post to the
    channel), so it is stored encrypted and shown only as ``hint``."""

    url_encrypted = models.TextField()
    hint = models.CharField(max_length=80, help_text="The URL with its secret part hidden.")
    event_types = models.JSONField(default=list, blank=True, help_text="Event types posted to Slack.")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="notif_slack_webhook_per_org")]

    def __str__(self) -> str:
        return self.hint
