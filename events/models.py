"""The transactional outbox: domain events written in the same transaction as the change they describe."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from tenancy.models import Organization, TenantQuerySet


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # Set once every handler registered at fan-out time has a Delivery row.
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], condition=models.Q(fanned_out_at__isnull=True), name="event_pending"),
            # For the admin's filter by type (an equality). Declared here rather than with db_index=True, which on
            # PostgreSQL adds a second, varchar_pattern_ops index for LIKE prefixes that nothing asks: one index
            # less for every event written. The name is the one db_index gave it, so databases keep their index.
            models.Index(fields=["type"], name="events_event_type_369b1d2e"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryState(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed (will retry)"
    DEAD = "DEAD", "Gave up"


class Delivery(models.Model):
    """One handler's processing of one event. ``(event, handler)`` is unique: each handler runs at most once."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    handler = models.CharField(max_length=150)
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "handler"], name="delivery_event_handler_unique")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.handler} ← {self.event_id} ({self.state})"


class WebhookEndpoint(models.Model):
    """Where a partner or an organization wants events posted: its URL, the event types it takes, and the secret its
    deliveries are signed with (encrypted here, shown to its owner once). ``consecutive_failures`` counts events in a
    row that were given up on; at ``DISABLE_AFTER`` the endpoint is switched off and its owner told. ``paused_until``
    is set when the endpoint asked Keel to slow down (429, or 503 with ``Retry-After``): nothing is posted to it
    before then."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    partner = models.ForeignKey(
        "tenancy.Partner", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text='Event types delivered; ["*"] for all.')
    secret_encrypted = models.TextField(editable=False)
    secret_prefix = models.CharField(max_length=12, editable=False, help_text="The secret's start, to recognise it.")
    active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    paused_until = models.DateTimeField(
        null=True, blank=True, help_text="The endpoint asked Keel to slow down: nothing is sent to it before then."
    )
    created_by = models.ForeignKey("tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(organization__isnull=False, partner__isnull=True)
                | models.Q(organization__isnull=True, partner__isnull=False),
                name="webhook_endpoint_one_owner",
            )
        ]

    def __str__(self) -> str:
        return self.url

    def takes(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


class WebhookState(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Sending"
    SUCCEEDED = "SUCCEEDED", "Delivered"
    RETRYING = "RETRYING", "Failed, will retry"
    FAILED = "FAILED", "Gave up"


class WebhookDelivery(models.Model):
    """One event for one endpoint: ``(endpoint, event)`` is unique, so an event reaches an endpoint once however often
    it is fanned out; a redelivery asked for by the owner is a new attempt of the same row."""

    id = models.BigAutoField(primary_key=True)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="webhook_deliveries")
    state = models.CharField(max_length=10, choices=WebhookState.choices, default=WebhookState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once")]
        indexes = [
            models.Index(
                fields=["endpoint", "next_attempt_at", "id"],
                condition=models.Q(state__in=["PENDING", "RETRYING", "RUNNING"]),
                name="webhook_delivery_due",
            ),
            # An endpoint's delivery log, newest first.
            models.Index(fields=["endpoint", "-created_at", "-id"], name="webhook_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: when, what came back, how long it took."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"
