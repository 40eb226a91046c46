"""Platform controls staff set per partner or organization (API rate-limit policies, feature flags) and the reports
an organization has emailed to it on a schedule.

Imported at the end of ``tenancy.models``, so they are models of the ``tenancy`` app like the others.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save, pre_save
from django.utils.timezone import now

from tenancy.models import Organization, Partner, RatePolicyQuerySet, TenantModel

# -- API rate-limit policies ------------------------------------------------------------------------------------------


class RatePolicy(models.Model):
    """How many API requests a partner or an organization may make per minute, hour and day (UTC clock windows).

    Exactly one of ``partner`` / ``organization`` is set, and each has at most one policy. A key is governed by the
    policy of its organization, else by the policy of that organization's partner; a partner's key by its partner's
    policy. The keys of one organization share their counters; a partner's policy counts each of its organizations
    apart, and the partner's own keys together (``tenancy.api_auth.RateScope``), so one organization's traffic never
    uses up another's. An empty limit is no limit, so a policy with none lets its keys through unthrottled. While a
    policy governs a key, the default per-key rate (``API_KEY_RATE``) does not apply to it; an inactive policy
    governs nothing.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.OneToOneField(Partner, null=True, blank=True, on_delete=models.CASCADE, related_name="rate_policy")
    organization = models.OneToOneField(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="rate_policy"
    )
    per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: no limit per minute."
    )
    per_hour = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: no limit per hour."
    )
    per_day = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: no limit per day."
    )
    active = models.BooleanField(default=True, help_text="Off: the default per-key rate applies instead.")
    note = models.CharField(max_length=200, blank=True, help_text="Why this limit (the contract, an incident...).")
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RatePolicyQuerySet.as_manager()

    class Meta:
        verbose_name = "API rate-limit policy"
        verbose_name_plural = "API rate-limit policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(organization__isnull=False, partner__isnull=True)
                | Q(organization__isnull=True, partner__isnull=False),
                name="rate_policy_owner_exactly_one",
            ),
            models.CheckConstraint(
                condition=Q(per_minute__isnull=True) | Q(per_minute__gt=0), name="rate_policy_per_minute_positive"
            ),
            models.CheckConstraint(
                condition=Q(per_hour__isnull=True) | Q(per_hour__gt=0), name="rate_policy_per_hour_positive"
            ),
            models.CheckConstraint(
                condition=Q(per_day__isnull=True) | Q(per_day__gt=0), name="rate_policy_per_day_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Rate policy of {self.owner_label}"

    @property
    def owner_label(self) -> str:
        if self.organization_id is not None:
            return f"organization {self.organization}"
        return f"partner {self.partner}"

    def clean(self) -> None:
        super().clean()
        if (self.organization_id is None) == (self.partner_id is None):
            raise ValidationError("Choose exactly one of partner or organization.")

    def limits(self) -> dict[str, int | None]:
        """The limit of each window, by name: ``{"minute": 100, "hour": None, "day": 10000}``."""
        return {"minute": self.per_minute, "hour": self.per_hour, "day": self.per_day}


# -- feature flags ----------------------------------------------------------------------------------------------------


class FeatureFlag(models.Model):
    """A feature turned on for some organizations: those with an override saying so, and among the others a stable
    ``percentage`` of them (see ``tenancy.flags.flag_enabled``). A new flag is off for everyone."""

    key = models.SlugField(
        max_length=60, unique=True, help_text="How the code asks for it: flag_enabled('<key>', organization)."
    )
    description = models.CharField(max_length=300, blank=True)
    percentage = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(100)],
        help_text="Share of organizations (0 to 100) that have the feature, overrides aside. Raising it only adds "
        "organizations.",
    )
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(condition=Q(percentage__lte=100), name="feature_flag_percentage_range"),
        ]

    def __str__(self) -> str:
        return self.key

    @staticmethod
    def cache_key(key: str) -> str:
        return f"feature-flag:v1:{key}"


class FeatureFlagOverride(TenantModel):
    """One organization's answer for one flag, whatever its percentage says."""

    flag = models.ForeignKey(FeatureFlag, on_delete=models.CASCADE, related_name="overrides")
    enabled = models.BooleanField(help_text="On: the organization has the feature; off: it does not.")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["flag", "organization__name"]
        constraints = [
            models.UniqueConstraint(fields=["flag", "organization"], name="feature_flag_override_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.flag_id} for {self.organization_id}: {'on' if self.enabled else 'off'}"


def _forget_flag(key: str) -> None:
    """Drop a flag's cached state now, and again once the change commits (a read in between may cache the old)."""
    cache.delete(FeatureFlag.cache_key(key))
    transaction.on_commit(lambda: cache.delete(FeatureFlag.cache_key(key)))


def _flag_before_save(sender: type[FeatureFlag], instance: FeatureFlag, **kwargs: Any) -> None:
    if instance.pk is not None:  # a renamed flag: its old key must not answer from the cache either
        old = FeatureFlag.objects.filter(pk=instance.pk).values_list("key", flat=True).first()
        if old is not None and old != instance.key:
            _forget_flag(old)


def _flag_changed(sender: type[FeatureFlag], instance: FeatureFlag, **kwargs: Any) -> None:
    _forget_flag(instance.key)


def _override_changed(sender: type[FeatureFlagOverride], instance: FeatureFlagOverride, **kwargs: Any) -> None:
    key = FeatureFlag.objects.filter(pk=instance.flag_id).values_list("key", flat=True).first()
    if key is not None:
        _forget_flag(key)


pre_save.connect(_flag_before_save, sender=FeatureFlag, dispatch_uid="tenancy.flag_before_save")
post_save.connect(_flag_changed, sender=FeatureFlag, dispatch_uid="tenancy.flag_saved")
post_delete.connect(_flag_changed, sender=FeatureFlag, dispatch_uid="tenancy.flag_deleted")
post_save.connect(_override_changed, sender=FeatureFlagOverride, dispatch_uid="tenancy.flag_override_saved")
post_delete.connect(_override_changed, sender=FeatureFlagOverride, dispatch_uid="tenancy.flag_override_deleted")


# -- scheduled reports ------------------------------------------------------------------------------------------------


class ReportKind(models.TextChoices):
    SLA = "sla", "SLA performance"
    BILLING = "billing", "Billing"
    CAMPAIGNS = "campaigns", "SMS campaigns"


class ReportFrequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class ScheduledReport(TenantModel):
    """A report emailed as CSV to some of the organization's people at 07:00 in its zone: daily (the day before),
    weekly on Mondays (the week before) or monthly on the 1st (the month before). ``next_run_at`` is the next
    sending; ``last_period_start`` the first day of the last period sent, so a period is never sent twice."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    report = models.CharField(max_length=12, choices=ReportKind.choices)
    frequency = models.CharField(max_length=10, choices=ReportFrequency.choices)
    recipients = models.JSONField(default=list, blank=True, help_text="Email addresses of the organization's people.")
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_period_start = models.DateField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(report__in=ReportKind.values), name="scheduled_report_kind_valid"),
            models.CheckConstraint(
                condition=Q(frequency__in=ReportFrequency.values), name="scheduled_report_frequency_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["next_run_at"], condition=Q(active=True), name="scheduled_report_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_frequency_display()} {self.get_report_display()} report"
