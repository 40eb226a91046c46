"""CSV import of contacts: the preview is exactly the import, rows are reported by row and field, nothing is
half-written, and importing again creates nothing."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime

import pytest
import time_machine

from sms.models import ConsentEvent, Contact, DoNotContact
from sms.services import imports
from sms.services.imports import contacts_import
from tenancy.errors import ServiceValidationError

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
FILE = (
    "phone,first_name,last_name,email,timezone,tags,consent,consent_source,consented_at\n"
    "0412 345 678,Ann,Lee,ann@example.com,Australia/Perth,vip;Perth,yes,web form,2026-05-01\n"
    "+61 413 000 111,Bo,Ng,,,,no,,\n"
    "0412345678,Ann,Again,,,,yes,,\n"  # the same number again: the first row wins
    "12,Bad,Phone,,,,,,\n"
    "0414 222 333,Cy,Ro,not-an-email,Mars/Base,,maybe,,\n"
    "0415 999 888,Di,Xu,,,,yes,,yesterday\n"
    "\n"  # a blank line is not a row
    "0416 555 444,Ed,On,,,,yes,shop counter,2026-05-02T10:00:00\n"
)


def run(organization, content: str | bytes = FILE, dry_run: bool = False, **kwargs):
    data = content.encode() if isinstance(content, str) else content
    return contacts_import(organization=organization, content=data, dry_run=dry_run, **kwargs).as_dict()


@time_machine.travel(NOW, tick=False)
def test_the_preview_is_exactly_the_import_and_writes_nothing(acme):
    DoNotContact.objects.create(organization=acme, phone_e164="+61413000111", reason="manual")
    preview = run(acme, dry_run=True)
    assert not Contact.objects.exists() and not ConsentEvent.objects.exists()
    assert preview == {
        "dry_run": True,
        "total_rows": 7,
        "valid": 3,
        "created": 3,
        "updated": 0,
        "duplicates_in_file": 1,
        "on_dnc": 1,
        "invalid": [
            {"row": 5, "field": "phone", "error": "'12' is not a valid phone number in AU or with its country code."},
            {"row": 6, "field": "email", "error": "'not-an-email' is not an email address."},
            {
                "row": 6,
                "field": "timezone",
                "error": "'Mars/Base' is not a time zone (use a name like Australia/Sydney).",
            },
            {"row": 6, "field": "consent", "error": "'maybe' is not yes or no."},
            {
                "row": 7,
                "field": "consented_at",
                "error": "'yesterday' is not a date or time "
                "(use ISO 8601, e.g. 2026-03-01 or 2026-03-01T09:30:00+10:00).",
            },
        ],
    }
    assert run(acme) == {**preview, "dry_run": False}
    ann, bo, ed = (Contact.objects.get(phone_e164=phone) for phone in ("+61412345678", "+61413000111", "+61416555444"))
    assert (ann.first_name, ann.last_name, ann.email, ann.timezone, ann.tag_list) == (
        "Ann",
        "Lee",
        "ann@example.com",
        "Australia/Perth",
        ["perth", "vip"],
    )
    # A date alone is midnight in the organization's zone (Sydney, +10:00 in May).
    assert (ann.consent_at, ann.consent_source) == (datetime(2026, 4, 30, 14, tzinfo=UTC), "web form")
    assert bo.consent_at is None
    assert (ed.consent_at, ed.consent_source) == (datetime(2026, 5, 2, 0, tzinfo=UTC), "shop counter")
    assert sorted(ConsentEvent.objects.values_list("phone_e164", "kind")) == [
        ("+61412345678", "consent_given"),
        ("+61416555444", "consent_given"),
    ]


@time_machine.travel(NOW, tick=False)
def test_importing_again_creates_nothing_and_updates_only_what_changed(acme):
    run(acme)
    again = run(acme)
    assert (again["created"], again["updated"], again["valid"]) == (0, 0, 3)
    changed = FILE.replace("Bo,Ng,,,,no", "Bo,Ngu,,,,yes")
    report = run(acme, changed)
    assert (report["created"], report["updated"]) == (0, 1)
    bo = Contact.objects.get(phone_e164="+61413000111")
    assert (bo.last_name, bo.consent_at, bo.consent_source) == ("Ngu", NOW, "import")
    assert Contact.objects.count() == 3 and ConsentEvent.objects.count() == 3


def test_consent_no_does_not_withdraw_earlier_consent(acme):
    run(acme, "phone,consent\n0412345678,yes\n")
    run(acme, "phone,consent\n0412345678,no\n")
    assert Contact.objects.get().consent_at is not None


def test_another_organizations_contacts_are_neither_found_nor_touched(acme, globex):
    run(globex, "phone,first_name\n0412345678,Globex's\n")
    report = run(acme, "phone,first_name\n0412345678,Acme's\n")
    assert report["created"] == 1
    assert sorted(Contact.objects.values_list("first_name", flat=True)) == ["Acme's", "Globex's"]


def test_numbers_are_read_in_the_default_region(acme):
    report = run(acme, "phone\n(212) 555-0134\n", region="US")
    assert report["created"] == 1 and Contact.objects.get().phone_e164 == "+12125550134"
    with pytest.raises(ServiceValidationError) as bad:
        run(acme, "phone\n0412345678\n", region="ZZ")
    assert "default_region" in bad.value.message_dict


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "The file is empty"),
        (b"name,email\nAnn,ann@example.com\n", "The header row has no phone column"),
        (b"phone,first_name\n0412345678,Ren\xe9\n", "The file is not UTF-8 text (byte 32 is not valid)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text"),
        (b'phone,first_name\n0412345678,"unterminated\n', "not valid CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(acme, content, reason):
    with pytest.raises(ServiceValidationError) as bad:
        run(acme, content)
    assert reason in bad.value.message_dict["file"][0]
    assert not Contact.objects.exists()


def test_files_over_the_limits_are_refused(acme, monkeypatch):
    monkeypatch.setattr(imports, "MAX_ROWS", 2)
    with pytest.raises(ServiceValidationError) as bad:
        run(acme, "phone\n0412345671\n0412345672\n0412345673\n")
    assert bad.value.message_dict["file"] == ["The file has more than 2 rows; split it."]
    monkeypatch.setattr(imports, "MAX_BYTES", 10)
    with pytest.raises(ServiceValidationError) as bad:
        run(acme, "phone\n0412345671\n")
    assert "MB" in bad.value.message_dict["file"][0]


def test_utf16_files_with_a_byte_order_mark_are_read(acme):
    report = run(acme, codecs.BOM_UTF16_LE + "phone,first_name\r\n0412345678,Zoë\r\n".encode("utf-16-le"))
    assert report["created"] == 1 and Contact.objects.get().first_name == "Zoë"


def test_a_spreadsheet_formula_is_kept_as_text(acme):
    run(acme, 'phone,first_name\n0412345678,"=HYPERLINK(""http://x"")"\n')
    assert Contact.objects.get().first_name == '=HYPERLINK("http://x")'
