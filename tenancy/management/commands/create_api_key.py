from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tenancy.errors import ServiceValidationError
from tenancy.models import Organization, Partner
from tenancy.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an organization or a partner and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        owner = parser.add_mutually_exclusive_group(required=True)
        owner.add_argument("--org", help="organization slug")
        owner.add_argument("--partner", help="partner slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", default="read", help="comma-separated, e.g. read,write")
        parser.add_argument("--expires-days", type=int, default=None, help="days until the key expires")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = partner = None
        if options["org"]:
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"No organization with slug {options['org']!r}.")
        else:
            partner = Partner.objects.filter(slug=options["partner"]).first()
            if partner is None:
                raise CommandError(f"No partner with slug {options['partner']!r}.")
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be at least 1.")
        try:
            key, raw = api_key_create(
                name=options["name"],
                scopes=options["scopes"].split(","),
                organization=organization,
                partner=partner,
                expires_at=timezone.now() + timedelta(days=days) if days else None,
            )
        except ServiceValidationError as exc:
            raise CommandError("; ".join(f"{f}: {' '.join(m)}" for f, m in exc.message_dict.items())) from exc
        self.stderr.write(f"Created {key.name} ({key.prefix}, scopes {','.join(key.scopes)}). Shown once:")
        self.stdout.write(raw)
