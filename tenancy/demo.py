"""Demo data for `manage.py seed_demo`. Idempotent: running it again converges on the same data."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from tenancy.models import ApiKey, Membership, Organization, Partner, PartnerMembership, Role, Tier, User
from tenancy.services import api_key_create, organization_create

DEMO_PASSWORD = "keel-demo-password"  # noqa: S105 - demo data only; seed_demo refuses to run in production
DEMO_KEY_NAME = "Demo partner key"

ORGS = [
    # slug, name, tier, timezone, currency, country, partner?, branding colours
    ("acme", "Acme Pty Ltd", Tier.PREMIUM, "Australia/Sydney", "AUD", "AU", True, ("#0b6e4f", "#f2a900")),
    ("initech", "Initech", Tier.CORE_PLUS, "Australia/Perth", "AUD", "AU", True, ("#5b2a86", "#f26419")),
    ("globex", "Globex Corporation", Tier.ENTERPRISE, "America/New_York", "USD", "US", False, ("#9a031e", "#5f0f40")),
]
PEOPLE = [
    # email, name, org, role
    ("alice@acme.test", "Alice Owner", "acme", Role.OWNER),
    ("dana@acme.test", "Dana Admin", "acme", Role.ADMIN),
    ("mike@acme.test", "Mike Manager", "acme", Role.MANAGER),
    ("bob@acme.test", "Bob Member", "acme", Role.MEMBER),
    ("ian@initech.test", "Ian Owner", "initech", Role.OWNER),
    ("irene@initech.test", "Irene Admin", "initech", Role.ADMIN),
    ("ivan@initech.test", "Ivan Manager", "initech", Role.MANAGER),
    ("iris@initech.test", "Iris Member", "initech", Role.MEMBER),
    ("carol@globex.test", "Carol Owner", "globex", Role.OWNER),
    ("gary@globex.test", "Gary Admin", "globex", Role.ADMIN),
    ("gina@globex.test", "Gina Manager", "globex", Role.MANAGER),
    ("greg@globex.test", "Greg Member", "globex", Role.MEMBER),
]
STAFF = ["Technician", "Sales", "Billing", "Manager", "Admin"]


@dataclass
class SeedReport:
    sign_ins: list[tuple[str, str]] = field(default_factory=list)
    staff_codes: dict[str, list[str]] = field(default_factory=dict)
    api_key: str = ""


def _user(email: str, name: str, *, staff: bool = False) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=DEMO_PASSWORD, full_name=name, is_staff=staff)
    else:
        user.full_name = name
        user.is_staff = staff or user.is_staff
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["full_name", "is_staff", "password"])
    return user


def _backup_codes(user: User) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Backup codes", defaults={"confirmed": True})
    codes = list(device.token_set.values_list("token", flat=True))
    if len(codes) < 5:
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(10)]
        StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def seed() -> SeedReport:
    report = SeedReport()
    summit, _ = Partner.objects.get_or_create(slug="summit", defaults={"name": "Summit IT Partners"})
    orgs: dict[str, Organization] = {}
    for slug, name, tier, tz, currency, country, partnered, (primary, accent) in ORGS:
        org = Organization.objects.filter(slug=slug).first() or organization_create(
            name=name,
            slug=slug,
            tier=tier,
            timezone=tz,
            currency=currency,
            country=country,
            partner=summit if partnered else None,
        )
        org.brand_primary_color, org.brand_accent_color = primary, accent
        org.brand_support_email = f"support@{slug}.test"
        org.save(update_fields=["brand_primary_color", "brand_accent_color", "brand_support_email", "updated_at"])
        orgs[slug] = org
    for email, name, slug, role in PEOPLE:
        user = _user(email, name)
        Membership.objects.update_or_create(user=user, organization=orgs[slug], defaults={"role": role})
        report.sign_ins.append((email, f"{role.label} at {orgs[slug].name}"))
    pat = _user("pat@summit.test", "Pat Partner")
    PartnerMembership.objects.get_or_create(user=pat, partner=summit)
    report.sign_ins.append((pat.email, "partner admin at Summit (Acme and Initech)"))
    for group_name in STAFF:
        user = _user(f"{group_name.lower()}@keel.test", f"{group_name} Staff", staff=True)
        user.groups.add(Group.objects.get(name=group_name))
        if group_name == "Admin" and not user.is_superuser:
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
        report.sign_ins.append((user.email, f"staff: {group_name} (admin site; needs a backup code)"))
        report.staff_codes[user.email] = _backup_codes(user)
    # One live demo key for the partner API: the previous one is revoked so reruns do not pile keys up.
    ApiKey.objects.filter(partner=summit, name=DEMO_KEY_NAME, revoked_at__isnull=True).delete()
    _, report.api_key = api_key_create(name=DEMO_KEY_NAME, scopes=["read", "write"], partner=summit)
    return report
