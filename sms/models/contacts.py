"""Contacts, their consent and the do-not-contact list, and each organization's messaging settings."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from tenancy.models import Organization, TenantModel

DEFAULT_OPT_OUT = "STOP,STOPALL,UNSUBSCRIBE,CANCEL,END,QUIT,OPTOUT,REVOKE"
DEFAULT_OPT_IN = "START,UNSTOP,YES"
DEFAULT_HELP = "HELP,INFO"


class SmsSettings(models.Model):
    """How an organization sends: who it says it is, what it may spend, how fast, and its kill switch."""

    organization = models.OneToOneField(
        Organization, primary_key=True, on_delete=models.CASCADE, related_name="sms_settings"
    )
    business_name = models.CharField(
        max_length=60, blank=True, help_text="Names the sender in every message; the organization's name when empty."
    )
    reply_contact = models.CharField(
        max_length=120, blank=True, help_text="How a contact reaches the organization (HELP replies): phone or email."
    )
    kill_switch = models.BooleanField(default=False, help_text="On: nothing is sent until it is turned off.")
    daily_budget = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    monthly_budget = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    messages_per_minute = models.PositiveIntegerField(default=120)
    suppression_days = models.PositiveSmallIntegerField(
        default=90, help_text="A contact messaged by a campaign gets no other campaign message for this many days."
    )
    opt_out_keywords = models.CharField(max_length=300, default=DEFAULT_OPT_OUT)
    opt_in_keywords = models.CharField(max_length=300, default=DEFAULT_OPT_IN)
    help_keywords = models.CharField(max_length=300, default=DEFAULT_HELP)
    budget_alerted = models.CharField(
        max_length=20, blank=True, help_text="The budget period (day or month) whose 80 % alert went out."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SMS settings"
        verbose_name_plural = "SMS settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_budget__gte=0) | Q(daily_budget__isnull=True), name="sms_daily_budget"
            ),
            models.CheckConstraint(
                condition=Q(monthly_budget__gte=0) | Q(monthly_budget__isnull=True), name="sms_monthly_budget"
            ),
        ]

    def __str__(self) -> str:
        return f"SMS settings of {self.organization_id}"

    @staticmethod
    def keywords(text: str) -> frozenset[str]:
        return frozenset(word.strip().upper() for word in text.split(",") if word.strip())


class Contact(TenantModel):
    """Someone an organization may message. ``tags`` is stored as ``,tag,tag,`` so a tag is found with one
    ``contains`` on any database."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone_e164 = models.CharField(max_length=16)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    timezone = models.CharField(max_length=64, blank=True, help_text="The organization's when empty.")
    tags = models.CharField(max_length=500, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_source = models.CharField(max_length=120, blank=True)
    consent_text = models.TextField(blank=True, help_text="The wording the contact agreed to.")
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "phone_e164"]
        constraints = [models.UniqueConstraint(fields=["organization", "phone_e164"], name="contact_phone_per_org")]
        indexes = [models.Index(fields=["organization", "created_at"], name="contact_org_created")]

    def __str__(self) -> str:
        return self.name or self.phone_e164

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def has_consent(self) -> bool:
        return self.consent_at is not None

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in self.tags.split(",") if tag]

    @staticmethod
    def tags_text(tags: list[str] | tuple[str, ...] | set[str]) -> str:
        """The stored form of ``tags``: lower case, sorted, without duplicates, wrapped in commas."""
        clean = sorted({tag.strip().lower()[:40] for tag in tags if tag and tag.strip()})
        return f",{','.join(clean)}," if clean else ""


class ConsentKind(models.TextChoices):
    GIVEN = "consent_given", "Consent given"
    WITHDRAWN = "consent_withdrawn", "Consent withdrawn"
    DNC_ADDED = "dnc_added", "Added to do-not-contact"
    DNC_REMOVED = "dnc_removed", "Removed from do-not-contact"


class ConsentEvent(TenantModel):
    """One change to a contact's consent or do-not-contact status: the contact's timeline keeps every one."""

    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="consent_events")
    phone_e164 = models.CharField(max_length=16)
    kind = models.CharField(max_length=20, choices=ConsentKind.choices)
    source = models.CharField(max_length=120, blank=True)
    text = models.TextField(blank=True)
    at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["organization", "phone_e164", "at"], name="consent_event_phone")]

    def __str__(self) -> str:
        return f"{self.kind} {self.phone_e164}"


class DncReason(models.TextChoices):
    STOP_KEYWORD = "stop_keyword", "Replied with an opt-out keyword"
    MANUAL = "manual", "Added by hand"
    IMPORT = "import", "Imported"
    BOUNCED = "bounced", "Number does not receive messages"


class DoNotContact(TenantModel):
    phone_e164 = models.CharField(max_length=16)
    reason = models.CharField(max_length=20, choices=DncReason.choices)
    source = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name = "do-not-contact entry"
        verbose_name_plural = "do-not-contact list"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["organization", "phone_e164"], name="dnc_phone_per_org")]

    def __str__(self) -> str:
        return f"{self.phone_e164} ({self.reason})"
