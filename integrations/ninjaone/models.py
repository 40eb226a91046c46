"""NinjaOne's side of an organization: its settings, the devices NinjaOne manages for it, the alerts that became
tickets, and every webhook delivery Keel acted on.

An organization is linked to NinjaOne by ``Organization.ninjaone_org_id`` (NinjaOne's organization id). Device ids,
alert ids (NinjaOne's ``seriesUid``) and activity ids are NinjaOne's own, kept as text.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations.ninjaone.base import NODE_CLASSES
from tenancy.models import Organization, TenantModel, TenantQuerySet

# Resolve an alert's ticket when NinjaOne resets the alert, unless the organization's settings say otherwise.
RESOLVE_ON_RESET_DEFAULT = True


class NinjaOneSettings(models.Model):
    """How NinjaOne alerts are handled for one organization, and where its device sync stands.

    The row is also the organization's NinjaOne lock: alert processing and device syncs hold it
    (``SELECT ... FOR UPDATE``) so that two deliveries at once cannot both open a ticket."""

    organization = models.OneToOneField(
        Organization, primary_key=True, on_delete=models.CASCADE, related_name="ninjaone_settings"
    )
    resolve_on_reset = models.BooleanField(
        default=RESOLVE_ON_RESET_DEFAULT,
        help_text="Resolve an alert's ticket when NinjaOne resets the alert (once no other alert on it is active).",
    )
    device_count = models.PositiveIntegerField(null=True, blank=True, help_text="Devices found by the last sync.")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "NinjaOne settings"
        verbose_name_plural = "NinjaOne settings"

    def __str__(self) -> str:
        return f"NinjaOne settings of {self.organization}"


class Device(TenantModel):
    """A device NinjaOne manages for the organization, as of the last sync. A device NinjaOne no longer lists is kept
    with ``removed_at`` set (it no longer counts); it comes back if NinjaOne lists it again."""

    ninja_id = models.CharField(max_length=64, help_text="NinjaOne's device id.")
    display_name = models.CharField(max_length=200, blank=True)
    system_name = models.CharField(max_length=200, blank=True)
    node_class = models.CharField(max_length=40, blank=True, help_text="e.g. WINDOWS_SERVER, MAC, LINUX_WORKSTATION.")
    os_name = models.CharField(max_length=200, blank=True)
    offline = models.BooleanField(default=False)
    last_contact_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    synced_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["display_name", "system_name", "ninja_id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "ninja_id"], name="ninjaone_device_per_org"),
        ]
        indexes = [
            models.Index(
                fields=["organization", "display_name", "system_name"],
                condition=Q(removed_at__isnull=True),
                name="ninjaone_device_present",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.display_name or self.system_name or f"Device {self.ninja_id}"

    @property
    def status_label(self) -> str:
        return "Offline" if self.offline else "Online"

    @property
    def kind_label(self) -> str:
        return NODE_CLASSES.get(self.node_class, self.node_class.replace("_", " ").capitalize())


class AlertState(models.TextChoices):
    OPEN = "OPEN", "Active"
    RESET = "RESET", "Reset"


class Alert(TenantModel):
    """One NinjaOne alert (a condition that triggered on a device) and the ticket it opened or joined.

    ``uid`` is NinjaOne's ``seriesUid``, shared by the alert's TRIGGERED and RESET activities. Several alerts may share
    a ticket: the same condition triggering again on the same device while its ticket is still open joins that ticket
    instead of opening another."""

    uid = models.CharField(max_length=100)
    device_id = models.CharField(max_length=64)
    device_name = models.CharField(max_length=200, blank=True)
    condition_uid = models.CharField(max_length=100, blank=True, help_text="NinjaOne's sourceConfigUid.")
    condition_name = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=20, blank=True)
    message = models.TextField(blank=True)
    state = models.CharField(max_length=8, choices=AlertState.choices, default=AlertState.OPEN)
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="ninjaone_alerts"
    )
    triggered_at = models.DateTimeField(null=True, blank=True)
    reset_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="The activity that last changed the alert.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "uid"], name="ninjaone_alert_per_org"),
            models.CheckConstraint(condition=Q(state__in=AlertState.values), name="ninjaone_alert_state_valid"),
        ]
        indexes = [
            models.Index(fields=["organization", "device_id", "condition_uid"], name="ninjaone_alert_condition"),
        ]

    def __str__(self) -> str:
        return f"{self.condition_name or self.message[:60] or self.uid} on {self.device_name or self.device_id}"


class Outcome(models.TextChoices):
    OPENED = "opened", "Opened a ticket"
    JOINED = "joined", "Joined an open ticket"
    COMMENTED = "commented", "Noted the reset on the ticket"
    RESOLVED = "resolved", "Noted the reset and resolved the ticket"
    IGNORED = "ignored", "Ignored"


class WebhookEvent(models.Model):
    """A condition activity NinjaOne delivered, stored once by its activity id: a repeat delivery finds it and
    changes nothing. Deliveries for a NinjaOne organization no Keel organization is linked to are kept too (with no
    organization), so staff can see what is not being mapped."""

    provider_event_id = models.CharField(max_length=64, unique=True, help_text="NinjaOne's activity id.")
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    ninjaone_org_id = models.CharField(max_length=64)
    status = models.CharField(max_length=40, help_text="TRIGGERED, RESET, ...")
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    detail = models.CharField(max_length=300, blank=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["organization", "-received_at"], name="ninjaone_event_recent")]

    def __str__(self) -> str:
        return f"{self.status} {self.provider_event_id}"
