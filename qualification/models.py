"""Prospects' questionnaire answers, their score and where they stand in the sales funnel."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.timezone import now

from qualification import scoring


class QualificationTier(models.TextChoices):
    CORE_PLUS = "core_plus", "Core+"
    PREMIUM = "premium", "Premium"
    ENTERPRISE = "enterprise", "Enterprise"


class QualificationStatus(models.TextChoices):
    AUTO_APPROVED = scoring.AUTO_APPROVED, "Approved automatically"
    MANUAL_REVIEW = scoring.MANUAL_REVIEW, "Manual review"
    APPROVED = scoring.APPROVED, "Approved"
    CONDITIONAL_APPROVAL = scoring.CONDITIONAL_APPROVAL, "Conditionally approved"
    DISCOVERY_CALL = scoring.DISCOVERY_CALL, "Discovery call"
    DISCOVERY_CALL_SCHEDULED = scoring.DISCOVERY_CALL_SCHEDULED, "Discovery call scheduled"
    SUBMITTED = scoring.SUBMITTED, "Submitted"
    QUALIFIED = scoring.QUALIFIED, "Qualified"
    NOT_QUALIFIED = scoring.NOT_QUALIFIED, "Not qualified"


# May get a self-serve quote.
APPROVED_STATUSES = frozenset({QualificationStatus.AUTO_APPROVED, QualificationStatus.APPROVED,
                               QualificationStatus.QUALIFIED})  # fmt: skip
# Wait for a person in sales: assigned to a rep on submission.
NEEDS_HUMAN_STATUSES = frozenset({QualificationStatus.MANUAL_REVIEW, QualificationStatus.CONDITIONAL_APPROVAL,
                                  QualificationStatus.DISCOVERY_CALL, QualificationStatus.DISCOVERY_CALL_SCHEDULED,
                                  QualificationStatus.SUBMITTED})  # fmt: skip
# A booked discovery call moves a qualification from one of these to DISCOVERY_CALL_SCHEDULED (and a canceled call
# back to the one it came from): the prospect is waiting for a person, so talking to one makes sense. Never from a
# final status: a decision stands whatever the prospect books.
CALL_SCHEDULABLE_STATUSES = frozenset({
    QualificationStatus.DISCOVERY_CALL, QualificationStatus.MANUAL_REVIEW, QualificationStatus.CONDITIONAL_APPROVAL,
    QualificationStatus.SUBMITTED,
})  # fmt: skip
FINAL_STATUSES = frozenset({QualificationStatus.AUTO_APPROVED, QualificationStatus.APPROVED,
                            QualificationStatus.QUALIFIED, QualificationStatus.NOT_QUALIFIED})  # fmt: skip


class NextStep(models.TextChoices):
    GET_QUOTE = "get_quote", "Get a quote"
    BOOK_DISCOVERY_CALL = "book_discovery_call", "Book a discovery call"
    ATTEND_DISCOVERY_CALL = "attend_discovery_call", "Attend your discovery call"
    AWAIT_REVIEW = "await_review", "Wait for our review"
    AWAIT_QUOTE = "await_quote", "Wait for your tailored quote"
    CONTACT_SALES = "contact_sales", "Talk to us"


class Qualification(models.Model):
    """One prospect's questionnaire for one tier. Platform-level (no organization yet): staff-only in admin."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tier = models.CharField(max_length=16, choices=QualificationTier.choices)
    customer_email = models.EmailField()
    name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    answers = models.JSONField(default=dict, blank=True)
    auto_score = models.PositiveSmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=24, choices=QualificationStatus.choices)
    status_reason = models.CharField(max_length=500, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="qualifications"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    converted = models.BooleanField(default=False)
    converted_at = models.DateTimeField(null=True, blank=True)
    organization = models.ForeignKey(
        "tenancy.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="qualifications"
    )
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("customer_email"), "tier", name="qualification_email_per_tier_unique"),
        ]
        indexes = [models.Index(fields=["status", "tier"], name="qualification_queue")]

    def __str__(self) -> str:
        return f"{self.get_tier_display()} · {self.customer_email} ({self.get_status_display()})"

    @property
    def next_step(self) -> str:
        return next_step(self.tier, self.status)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def next_step(tier: str, status: str) -> str:
    if status in APPROVED_STATUSES:
        return NextStep.AWAIT_QUOTE if tier == QualificationTier.ENTERPRISE else NextStep.GET_QUOTE
    if status == QualificationStatus.DISCOVERY_CALL:
        return NextStep.BOOK_DISCOVERY_CALL
    if status == QualificationStatus.DISCOVERY_CALL_SCHEDULED:
        return NextStep.ATTEND_DISCOVERY_CALL
    if status == QualificationStatus.NOT_QUALIFIED:
        return NextStep.CONTACT_SALES
    return NextStep.AWAIT_REVIEW
