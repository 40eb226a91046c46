"""Partners, organizations (the tenants), users, memberships, invitations, API keys and the audit log."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from tenancy.auth_cache import access_changed, users_changed

if TYPE_CHECKING:
    from collections.abc import Iterable

HEX_COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Enter a colour as #RRGGBB.")


class UserQuerySet(models.QuerySet["User"]):
    """An ``update`` of people drops their cached rows (:func:`tenancy.auth_cache.users_changed`), as saving or
    deleting one does (its signals): a deactivated person is signed out of every session at their next request."""

    def update(self, **kwargs: Any) -> int:
        ids = list(self.values_list("pk", flat=True))
        rows = super().update(**kwargs)
        if rows:
            users_changed(ids)
        return rows


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_queryset(self) -> UserQuerySet:
        return UserQuerySet(self.model, using=self._db)

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username or "")


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in by email: a customer, a partner admin, or MSP staff (``is_staff``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Platform staff: may use the admin site.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name.split(" ")[0] if self.full_name else self.email.split("@")[0]) or self.email


class TenantQuerySet(models.QuerySet[Any]):
    """Every lookup of a tenant-owned row goes through ``for_org`` or ``for_user``."""

    org_field = "organization"

    def for_org(self, organization: Organization | uuid.UUID | str) -> TenantQuerySet:
        return self.filter(**{self.org_field: organization})

    def for_orgs(self, organizations: Iterable[Organization] | models.QuerySet[Organization]) -> TenantQuerySet:
        return self.filter(**{f"{self.org_field}__in": organizations})

    def for_user(self, user: User) -> TenantQuerySet:
        return self.filter(**{f"{self.org_field}__in": Organization.objects.visible_to(user)})


class AccessQuerySet(models.QuerySet[Any]):
    """Rows that decide who may do what (keys, organizations, partners, rate-limit policies, memberships and
    partner admins): an ``update`` of them drops the cached access (:mod:`tenancy.auth_cache`), as saving or
    deleting one does (its signals), unless it changes only ``quiet_fields``, which decide nothing."""

    quiet_fields: frozenset[str] = frozenset()

    def update(self, **kwargs: Any) -> int:
        rows = super().update(**kwargs)
        if rows and not set(kwargs) <= self.quiet_fields:
            access_changed()
        return rows


# django-stubs types ``as_manager`` per class and calls a subclass's an incompatible override.
class ApiKeyQuerySet(AccessQuerySet, TenantQuerySet):  # type: ignore[override]
    quiet_fields = frozenset({"last_used_at"})  # recorded at most once a minute as keys are used


class RatePolicyQuerySet(AccessQuerySet, TenantQuerySet):  # type: ignore[override]
    pass


class MembershipQuerySet(AccessQuerySet, TenantQuerySet):  # type: ignore[override]
    pass


class OrganizationQuerySet(AccessQuerySet):
    def visible_to(self, user: Any) -> OrganizationQuerySet:
        """Organizations the user is a member of, or manages as a partner admin."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(Q(memberships__user=user) | Q(partner__admins__user=user)).distinct()

    def for_partner(self, partner: Partner) -> OrganizationQuerySet:
        return self.filter(partner=partner)


class Partner(models.Model):
    """A reseller MSP that manages several customer organizations."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(default=now)

    objects = AccessQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tier(models.TextChoices):
    CORE_PLUS = "CORE_PLUS", "Core+"
    PREMIUM = "PREMIUM", "Premium"
    ENTERPRISE = "ENTERPRISE", "Enterprise"


class OrgStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    SUSPENDED = "SUSPENDED", "Suspended"


class Organization(models.Model):
    """The tenant: a customer of the MSP. Every tenant-owned row points here."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.CORE_PLUS)
    timezone = models.CharField(max_length=64, default="Australia/Sydney")
    currency = models.CharField(max_length=3, default="AUD")
    country = models.CharField(max_length=2, default="AU")
    status = models.CharField(max_length=16, choices=OrgStatus.choices, default=OrgStatus.ACTIVE)
    suspended_reason = models.CharField(max_length=300, blank=True)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="organizations")
    require_mfa = models.BooleanField(default=False, help_text="Members must use two-factor sign-in.")

    # White-label branding, applied to the portal and emails.
    brand_display_name = models.CharField(max_length=200, blank=True)
    brand_primary_color = models.CharField(max_length=7, default="#1f4e79", validators=[HEX_COLOUR])
    brand_accent_color = models.CharField(max_length=7, default="#f2a900", validators=[HEX_COLOUR])
    brand_support_email = models.EmailField(blank=True)
    brand_logo = models.BinaryField(blank=True, default=b"", editable=False)
    brand_logo_type = models.CharField(max_length=40, blank=True)
    brand_logo_version = models.CharField(max_length=16, blank=True)

    invoice_emails = models.JSONField(
        default=list,
        blank=True,
        help_text="Where invoices, payment reminders and contract notices are emailed (an accounts address, say); "
        "when empty, to the organization's owners and admins.",
    )

    stripe_customer_id = models.CharField(max_length=64, blank=True)
    qbo_customer_id = models.CharField(max_length=64, blank=True)
    ninjaone_org_id = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_customer_id"], condition=~Q(stripe_customer_id=""), name="org_stripe_customer_unique"
            ),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="org_currency_iso"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.brand_display_name or self.name

    @property
    def is_active(self) -> bool:
        return self.status == OrgStatus.ACTIVE


class TenantModel(models.Model):
    """Base for rows owned by one organization. ``objects`` is tenant-scoped: use ``for_org``/``for_user``."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Role(models.TextChoices):
    OWNER = "OWNER", "Owner"
    ADMIN = "ADMIN", "Admin"
    MANAGER = "MANAGER", "Manager"
    MEMBER = "MEMBER", "Member"


# Roles that may manage the team, branding, API keys and security settings of their organization.
MANAGING_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=now)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["organization__name", "user__email"]
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} · {self.organization} ({self.get_role_display()})"


class PartnerMembership(models.Model):
    """A partner admin: acts on every organization of the partner."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="partner_memberships")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="admins")
    created_at = models.DateTimeField(default=now)

    objects = AccessQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "partner"], name="partner_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} · {self.partner}"


class Invitation(models.Model):
    """An invitation to join an organization; the emailed link carries a token whose hash is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_open_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now()


class ApiScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"


class ApiKey(models.Model):
    """A bearer credential for the partner API. Only a SHA-256 of the secret is stored; the prefix is shown."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys")
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=now)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(organization__isnull=False, partner__isnull=True)
                | Q(organization__isnull=True, partner__isnull=False),
                name="api_key_owner_exactly_one",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, at: Any = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (at or now())

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class AuditEvent(models.Model):
    """An append-only record of a security-relevant action."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=now, db_index=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200, blank=True, help_text="Who acted, kept if the user is deleted.")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_org_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} by {self.actor_label or 'system'}"


# Rate-limit policies, feature flags and scheduled reports live in their own module; importing them here makes them
# models of this app.
from tenancy.models_controls import (  # noqa: E402, F401
    FeatureFlag,
    FeatureFlagOverride,
    RatePolicy,
    ReportFrequency,
    ReportKind,
    ScheduledReport,
)
