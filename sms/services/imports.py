"""CSV import of contacts, with a preview that is exactly what the import will do.

``contacts_import(organization=…, content=…, dry_run=…)`` reads the whole file first and reports every row it
cannot use (row, field, reason). The dry run stops there; the real import writes every valid row in one transaction
and reports the same counts. Importing the same file again creates nothing (a contact is found by its number) and
updates only contacts whose values differ.

Columns (a header row is required; names are case-insensitive, extra columns are ignored): ``phone`` (required),
``first_name``, ``last_name``, ``email``, ``timezone``, ``tags`` (separated by ``;`` or ``,``), ``consent``
(yes/no), ``consent_source``, ``consented_at`` (ISO 8601; without an offset it is read in the organization's
zone). ``consent=no`` records no consent; it does not withdraw consent a contact gave before (a contact withdraws by
replying STOP). A number that appears again further down the file is counted in ``duplicates_in_file`` and the
first row wins.

Files are UTF-8 (a byte-order mark is fine) or UTF-16 with a byte-order mark, at most ``MAX_BYTES`` and
``MAX_ROWS`` rows.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from sms.models import ConsentEvent, ConsentKind, Contact, DoNotContact
from sms.phones import DEFAULT_REGION, e164, region_valid
from sms.services.contacts import ZONES
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
COLUMNS = ("phone", "first_name", "last_name", "email", "timezone", "tags", "consent", "consent_source", "consented_at")
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0", ""}
CHUNK = 1000
EARLIEST_CONSENT = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ImportReport:
    dry_run: bool
    total_rows: int = 0
    valid: int = 0
    created: int = 0
    updated: int = 0
    duplicates_in_file: int = 0
    on_dnc: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "total_rows": self.total_rows,
            "valid": self.valid,
            "created": self.created,
            "updated": self.updated,
            "duplicates_in_file": self.duplicates_in_file,
            "on_dnc": self.on_dnc,
            "invalid": self.invalid,
        }


@dataclass
class Row:
    number: int  # the row's line in the file, the header being row 1
    phone: str
    values: dict[str, Any]
    consent_at: datetime | None
    consent_source: str


def decode(content: bytes) -> str:
    """The file's text, or a 400 naming the problem."""
    if len(content) > MAX_BYTES:
        raise ServiceValidationError({"file": [f"The file is over {MAX_BYTES // (1024 * 1024)} MB."]})
    encoding = "utf-16" if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        text = content.decode(encoding)
    except UnicodeDecodeError as bad:
        raise ServiceValidationError(
            {"file": [f"The file is not UTF-8 text (byte {bad.start + 1} is not valid); save it as CSV UTF-8."]}
        ) from None
    if "\x00" in text:
        raise ServiceValidationError({"file": ["The file holds binary data; upload a CSV file."]})
    return text


def _rows(text: str) -> tuple[list[str], list[list[str]]]:
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise ServiceValidationError({"file": ["The file is empty; the first row must name the columns."]})
        names = [cell.strip().lower().replace(" ", "_") for cell in header]
        if "phone" not in names:
            raise ServiceValidationError(
                {"file": [f"The header row has no phone column (columns: {', '.join(COLUMNS)})."]}
            )
        rows: list[list[str]] = []
        for cells in reader:
            if len(rows) >= MAX_ROWS:
                raise ServiceValidationError({"file": [f"The file has more than {MAX_ROWS:,} rows; split it."]})
            rows.append(cells)
    except csv.Error as bad:
        raise ServiceValidationError({"file": [f"The file is not valid CSV: {bad}."]}) from None
    return names, rows


def _consent_time(raw: str, zone: ZoneInfo) -> datetime:
    moment = parse_datetime(raw)
    if moment is None:
        day = parse_date(raw)
        if day is None:
            raise ValueError("not a date or time (use ISO 8601, e.g. 2026-03-01 or 2026-03-01T09:30:00+10:00)")
        moment = datetime.combine(day, time())
    return timezone.make_aware(moment, zone) if timezone.is_naive(moment) else moment


def _parse(organization: Organization, names: list[str], cells: list[str], number: int, region: str,
           report: ImportReport) -> Row | None:  # fmt: skip
    values = {name: (cells[index].strip() if index < len(cells) else "") for index, name in enumerate(names)}
    errors: list[tuple[str, str]] = []
    phone = ""
    try:
        phone = e164(values.get("phone", ""), region)
    except ValueError as bad:
        errors.append(("phone", str(bad)))
    row_values: dict[str, Any] = {}
    for name in ("first_name", "last_name"):
        if name in values:
            row_values[name] = values[name][:100]
    email = values.get("email", "")
    if email and ("@" not in email or " " in email or len(email) > 254):
        errors.append(("email", f"{email!r} is not an email address."))
    elif "email" in values:
        row_values["email"] = email
    zone = values.get("timezone", "")
    if zone and zone not in ZONES:
        errors.append(("timezone", f"{zone!r} is not a time zone (use a name like Australia/Sydney)."))
    elif "timezone" in values:
        row_values["timezone"] = zone
    if "tags" in values:
        tags = Contact.tags_text([tag for part in values["tags"].split(";") for tag in part.split(",")])
        if len(tags) > 500:
            errors.append(("tags", "Too many tags (500 characters at most)."))
        row_values["tags"] = tags
    consent = values.get("consent", "").lower()
    consent_at: datetime | None = None
    if consent not in YES | NO:
        errors.append(("consent", f"{values['consent']!r} is not yes or no."))
    elif consent in YES:
        raw = values.get("consented_at", "")
        try:
            consent_at = _consent_time(raw, ZoneInfo(organization.timezone)) if raw else timezone.now()
        except ValueError as bad:
            errors.append(("consented_at", f"{raw!r} is {bad}."))
        if consent_at is not None and consent_at > timezone.now():
            errors.append(("consented_at", "Consent cannot be given in the future."))
        elif consent_at is not None and consent_at < EARLIEST_CONSENT:  # year 1 with an offset is year 0 in UTC
            errors.append(("consented_at", "Consent cannot be given before 1970."))
    if errors:
        report.invalid += [{"row": number, "field": name, "error": message} for name, message in errors]
        return None
    source = (values.get("consent_source") or "import")[:120]
    return Row(number, phone, row_values, consent_at, source)


def contacts_import(
    *, organization: Organization, content: bytes, dry_run: bool, region: str = DEFAULT_REGION
) -> ImportReport:
    """Preview (``dry_run``) or import a CSV file of contacts; see the module docstring."""
    if not region_valid(region):
        raise ServiceValidationError({"default_region": [f"{region!r} is not a two-letter region code like AU."]})
    names, cells = _rows(decode(content))
    report = ImportReport(dry_run=dry_run, total_rows=len(cells))
    rows: dict[str, Row] = {}
    for offset, row_cells in enumerate(cells):
        if not any(cell.strip() for cell in row_cells):
            report.total_rows -= 1  # a blank line is not a row
            continue
        row = _parse(organization, names, row_cells, offset + 2, region, report)
        if row is None:
            continue
        if row.phone in rows:
            report.duplicates_in_file += 1
            continue
        rows[row.phone] = row
    report.valid = len(rows)
    phones = list(rows)
    dnc = set()
    for start in range(0, len(phones), CHUNK):
        chunk = phones[start : start + CHUNK]
        dnc |= set(
            DoNotContact.objects.for_org(organization).filter(phone_e164__in=chunk).values_list("phone_e164", flat=True)
        )
    report.on_dnc = len(dnc)
    try:
        with transaction.atomic():
            _apply(organization, rows, report)
            if dry_run:
                transaction.set_rollback(True)
    except IntegrityError:  # another import created the same numbers at the same moment
        raise ConflictError("Another import is adding the same contacts; try again in a moment.") from None
    return report


def _apply(organization: Organization, rows: dict[str, Row], report: ImportReport) -> None:
    """Create and update the contacts of ``rows`` and record their consent (the dry run rolls this back, so its
    counts are the import's own)."""
    phones = list(rows)
    existing: dict[str, Contact] = {}
    for start in range(0, len(phones), CHUNK):
        chunk = phones[start : start + CHUNK]
        for contact in Contact.objects.for_org(organization).select_for_update().filter(phone_e164__in=chunk):
            existing[contact.phone_e164] = contact
    now = timezone.now()
    new: list[Contact] = []
    changed: list[Contact] = []
    consents: list[ConsentEvent] = []
    changed_fields: set[str] = set()
    for phone, row in rows.items():
        contact = existing.get(phone)
        if contact is None:
            contact = Contact(organization=organization, phone_e164=phone, created_at=now, updated_at=now, **row.values)
            new.append(contact)
        else:
            fields = [name for name, value in row.values.items() if getattr(contact, name) != value]
            for name in fields:
                setattr(contact, name, row.values[name])
            if row.consent_at is not None and contact.consent_at is None:
                fields.append("consent")
            if fields:
                changed.append(contact)
                changed_fields.update(name for name in fields if name != "consent")
        if row.consent_at is not None and contact.consent_at is None:
            contact.consent_at, contact.consent_source = row.consent_at, row.consent_source
            contact.consent_text = "Consent recorded by the organization (imported)."
            changed_fields.update({"consent_at", "consent_source", "consent_text"})
            consents.append(
                ConsentEvent(
                    organization=organization,
                    contact=contact,
                    phone_e164=phone,
                    kind=ConsentKind.GIVEN,
                    source=row.consent_source,
                    text=contact.consent_text,
                    at=row.consent_at,
                )
            )
    Contact.objects.bulk_create(new, batch_size=CHUNK)
    if changed:
        for contact in changed:
            contact.updated_at = now
        Contact.objects.bulk_update(changed, [*sorted(changed_fields), "updated_at"], batch_size=CHUNK)
    ConsentEvent.objects.bulk_create(consents, batch_size=CHUNK)
    report.created, report.updated = len(new), len(changed)
