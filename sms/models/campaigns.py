"""Templates, sending numbers, campaigns, their send jobs, and the counters that keep caps exact."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from sms.models.contacts import Contact
from tenancy.models import Organization, TenantModel

WARMUP_DEFAULT = "50/100/200/300"


class Template(TenantModel):
    """A message body with placeholders (``{first_name}``, ``{last_name}``, ``{link}``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    body = models.TextField(max_length=1600)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SendingNumber(models.Model):
    """A number messages are sent from, managed by staff: it warms up over its first sending days."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sending_numbers")
    phone_e164 = models.CharField(max_length=16, unique=True)
    warmup_start = models.DateField(help_text="Its first sending day.")
    warmup_curve = models.CharField(
        max_length=100,
        default=WARMUP_DEFAULT,
        help_text="Daily caps on its 1st, 2nd, ... sending day; the last repeats.",
    )
    per_second = models.PositiveSmallIntegerField(default=1, help_text="Messages per second it may send.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = models.Manager()

    class Meta:
        ordering = ["phone_e164"]
        constraints = [models.CheckConstraint(condition=Q(per_second__gte=1), name="sending_number_per_second")]

    def __str__(self) -> str:
        return self.phone_e164


class CampaignStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    SCHEDULED = "SCHEDULED", "Scheduled"
    RUNNING = "RUNNING", "Running"
    PAUSED = "PAUSED", "Paused"
    COMPLETED = "COMPLETED", "Completed"
    CANCELED = "CANCELED", "Canceled"


class Campaign(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    templates = models.ManyToManyField(Template, through="CampaignTemplate", related_name="+")
    numbers = models.ManyToManyField(SendingNumber, through="CampaignNumber", related_name="+")
    audience_tags = models.CharField(
        max_length=500,
        blank=True,
        help_text="Contacts with any of these tags (stored like a contact's); all when empty.",
    )
    link_url = models.URLField(max_length=500, blank=True, help_text="Where {link} leads.")
    start_at = models.DateTimeField(null=True, blank=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CampaignStatus.values), name="campaign_status_valid")
        ]

    def __str__(self) -> str:
        return self.name


class CampaignTemplate(models.Model):
    """A campaign's templates, used in turn by ``position``."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="template_links")
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "template"], name="campaign_template_once")]

    def __str__(self) -> str:
        return f"{self.campaign_id} #{self.position}"


class CampaignNumber(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="number_links")
    number = models.ForeignKey(SendingNumber, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="campaign_number_once")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.number_id}"


class JobState(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    SENDING = "SENDING", "Sending"
    SENT = "SENT", "Sent"
    DELIVERED = "DELIVERED", "Delivered"
    FAILED = "FAILED", "Failed"
    SKIPPED = "SKIPPED", "Skipped"


# A state only moves forward: a late "sent" after "delivered" changes nothing.
STATE_RANK = {JobState.QUEUED: 0, JobState.SENDING: 1, JobState.SENT: 2, JobState.DELIVERED: 3, JobState.FAILED: 3,
              JobState.SKIPPED: 3}  # fmt: skip


class SendJob(TenantModel):
    """One campaign message to one contact: created at launch, gated, sent once."""

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="jobs")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="send_jobs")
    position = models.PositiveIntegerField(default=0, help_text="Its place in the campaign: picks the template.")
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    reason = models.CharField(max_length=20, blank=True, help_text="The gate that last held or skipped it.")
    deferred_until = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="While SENDING: when the claim expires.")
    number = models.ForeignKey(SendingNumber, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(blank=True)
    segments = models.PositiveSmallIntegerField(default=0)
    cost = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    provider_sid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    provider_price = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "campaign", "contact"], name="send_job_once"),
            models.CheckConstraint(condition=Q(state__in=JobState.values), name="send_job_state_valid"),
        ]
        indexes = [
            # The dispatcher's claim: an organization's queued jobs in order, with when each may go.
            models.Index(
                fields=["organization", "id"],
                include=["deferred_until"],
                condition=Q(state="QUEUED"),
                name="send_job_queued",
            ),
            models.Index(fields=["lease_until"], condition=Q(state="SENDING"), name="send_job_sending"),
            models.Index(fields=["campaign", "state"], name="send_job_campaign_state"),
            models.Index(fields=["organization", "contact", "sent_at"], name="send_job_contact_sent"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.state})"


class SendCounter(models.Model):
    """How much of a cap a window has used: messages per minute or second, a number's day, money spent. Taken with
    one conditional upsert that refuses to pass the cap, so concurrent workers never exceed it."""

    key = models.CharField(max_length=80)
    window = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window"], name="send_counter_window")]
        indexes = [models.Index(fields=["window"], name="send_counter_window_at")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window:%Y-%m-%d %H:%M:%S}: {self.count}"


class CampaignGateCount(models.Model):
    """How many times a gate held or skipped one of a campaign's jobs (a deferred job counts each time it is held)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="gate_counts")
    gate = models.CharField(max_length=20)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "gate"], name="campaign_gate_once")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.gate}: {self.count}"


class SmsPrice(models.Model):
    """What one message segment costs to destinations whose number starts with ``prefix`` (``+61``, ``+614``); the
    longest matching prefix wins, and ``+`` is the price everywhere else. Staff keep these in the admin."""

    prefix = models.CharField(max_length=8, unique=True, help_text="E.164 prefix, e.g. +61; + alone matches all.")
    segment_price = models.DecimalField(max_digits=8, decimal_places=4)
    currency = models.CharField(max_length=3, default="AUD")
    description = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["prefix"]
        verbose_name = "SMS price"
        constraints = [
            models.CheckConstraint(condition=Q(segment_price__gte=0), name="sms_price_positive"),
            models.CheckConstraint(condition=Q(prefix__regex=r"^\+[0-9]{0,7}$"), name="sms_price_prefix"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}: {self.segment_price} {self.currency}"


class StatusCallback(models.Model):
    """A provider status callback seen once: ``(sid, status)`` is unique, so a repeat changes nothing."""

    sid = models.CharField(max_length=64)
    status = models.CharField(max_length=20)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sid", "status"], name="status_callback_once")]

    def __str__(self) -> str:
        return f"{self.sid} {self.status}"


class InboundKind(models.TextChoices):
    OPT_OUT = "opt_out", "Opt-out"
    OPT_IN = "opt_in", "Opt-in"
    HELP = "help", "Help"
    REPLY = "reply", "Reply"


class InboundMessage(TenantModel):
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replies",
        help_text="The campaign whose message the contact last received from this number, if any.",
    )
    provider_sid = models.CharField(max_length=64, unique=True)
    from_e164 = models.CharField(max_length=16)
    to_e164 = models.CharField(max_length=16)
    body = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=InboundKind.choices)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["organization", "from_e164", "received_at"], name="inbound_from"),
            # The replies page (an organization's, newest first) and the quarter-hourly count of replies.
            models.Index(fields=["organization", "-received_at"], name="inbound_replies", condition=Q(kind="reply")),
            models.Index(fields=["received_at"], name="inbound_replies_at", condition=Q(kind="reply")),
        ]

    def __str__(self) -> str:
        return f"{self.from_e164}: {self.body[:40]}"


class ShortLink(TenantModel):
    """``https://<SMS_SHORT_DOMAIN>/s/<token>`` for one recipient of one campaign."""

    token = models.CharField(max_length=16, unique=True)
    job = models.OneToOneField(SendJob, null=True, blank=True, on_delete=models.CASCADE, related_name="link")
    url = models.URLField(max_length=500)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.token


class Click(TenantModel):
    link = models.ForeignKey(ShortLink, on_delete=models.CASCADE, related_name="clicks")
    at = models.DateTimeField(default=timezone.now)
    user_agent = models.CharField(max_length=400, blank=True)
    is_bot = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["link", "is_bot"], name="click_link_bot")]

    def __str__(self) -> str:
        return f"{self.link_id} at {self.at:%Y-%m-%d %H:%M}"
