"""The portal's contact import: upload a CSV file, preview exactly what the import will do (counts and row errors
from the real import run as a dry run), confirm to import those same bytes, once.

The file of every test: seven rows. Ann and Bo are new; +61412345678 is already Acme's contact (as Old Name), and
Globex has a contact with that number too; Ann appears twice; row 6 has a phone that is not one; row 7 has a bad
email and a bad consent value; Dee's number is on Acme's do-not-contact list.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from sms.models import ConsentEvent, Contact
from sms.services.contacts import contact_create, dnc_add
from sms.services.imports import MAX_BYTES
from tenancy.models import Organization

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 10, 0, tzinfo=ZoneInfo("Australia/Sydney"))
CSV = (
    b"phone,first_name,last_name,email,tags,consent,consent_source\n"
    b"0412 000 001,Ann,Lee,ann@example.test,vip;perth,yes,web form\n"
    b"0412000002,Bo,,,staff,no,\n"
    b"+61412345678,Existing,Contact,,,,\n"
    b"0412000001,Ann again,,,,,\n"
    b"12,Bad,,,,,\n"
    b"0412000005,Eve,,not-an-email,,maybe,\n"
    b"0412000006,Dee,,,,,\n"
)
COUNTS = ("total_rows", "valid", "created", "updated", "duplicates_in_file", "on_dnc", "invalid_rows")


def upload(content: bytes = CSV, name: str = "contacts.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def message_texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def counts(report: dict[str, Any]) -> dict[str, int]:
    return {name: report[name] for name in COUNTS}


@pytest.fixture(autouse=True)
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def existing(acme: Organization, globex: Organization) -> Contact:
    contact_create(organization=globex, phone="+61412345678", data={"first_name": "Gus"})
    dnc_add(organization=acme, phone_e164="+61412000006", reason="manual")
    return contact_create(organization=acme, phone="+61412345678", data={"first_name": "Old", "last_name": "Name"})


def stored_path(client: Any, preview_url: str) -> str:
    """Where the preview's bytes are kept, as the session records it."""
    token = preview_url.rstrip("/").rsplit("/", 1)[-1]
    return str(client.session["messaging_imports"][token]["path"])


def preview_url_of(response: Any) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    location = response["Location"]
    assert location.startswith("/messaging/contacts/import/") and location.endswith("/")
    return location


@pytest.mark.isolation("portal:messaging_import")
def test_the_preview_is_exactly_what_the_import_does_and_confirming_twice_adds_nothing(
    client_for, acme, globex, alice, existing
):
    client = client_for(alice)
    assert client.get("/messaging/contacts/import/").status_code == 200
    preview_url = preview_url_of(client.post("/messaging/contacts/import/", {"file": upload(), "default_region": "AU"}))
    # The preview wrote nothing.
    assert Contact.objects.for_org(acme).count() == 1
    page = client.get(preview_url)
    preview = page.context["preview"]
    assert counts(preview) == {
        "total_rows": 7,
        "valid": 4,
        "created": 3,
        "updated": 1,
        "duplicates_in_file": 1,
        "on_dnc": 1,
        "invalid_rows": 2,
    }
    assert preview["invalid"] == [
        {"row": 6, "field": "phone", "error": "'12' is not a valid phone number in AU or with its country code."},
        {"row": 7, "field": "email", "error": "'not-an-email' is not an email address."},
        {"row": 7, "field": "consent", "error": "'maybe' is not yes or no."},
    ]
    body = page.content.decode()
    assert 'data-count="created">3<' in body and 'data-count="invalid_rows">2<' in body
    assert "Import 4 contacts" in body and "contacts.csv" in body
    assert "&#x27;maybe&#x27; is not yes or no." in body

    confirm_url = f"{preview_url}confirm/"
    kept = stored_path(client, preview_url)
    assert default_storage.open(kept).read() == CSV
    response = client.post(confirm_url)
    assert response.status_code == 302 and response["Location"] == preview_url
    assert message_texts(response)[-1] == "Imported: 3 new contacts, 1 updated."
    done = client.get(preview_url)
    imported = done.context["imported"]
    assert counts(imported) == counts(preview)
    assert imported["dry_run"] is False and "Import done" in done.content.decode()
    contacts = {contact.phone_e164: contact for contact in Contact.objects.for_org(acme)}
    assert sorted(contacts) == ["+61412000001", "+61412000002", "+61412000006", "+61412345678"]
    assert (contacts["+61412000001"].first_name, contacts["+61412000001"].tag_list) == ("Ann", ["perth", "vip"])
    assert contacts["+61412000001"].consent_source == "web form" and contacts["+61412000002"].consent_at is None
    assert (contacts["+61412345678"].first_name, contacts["+61412345678"].last_name) == ("Existing", "Contact")
    assert Contact.objects.for_org(globex).get().first_name == "Gus"
    events = ConsentEvent.objects.for_org(acme).count()

    again = client.post(confirm_url)
    assert again.status_code == 302
    assert message_texts(again)[-1] == "This file was already imported; nothing more was done."
    assert Contact.objects.for_org(acme).count() == 4
    assert ConsentEvent.objects.for_org(acme).count() == events
    # The bytes are not kept once imported.
    assert not default_storage.exists(kept)

    # The same file once more: nothing left to create or change.
    second = client.get(
        preview_url_of(client.post("/messaging/contacts/import/", {"file": upload(), "default_region": "AU"}))
    )
    assert (second.context["preview"]["created"], second.context["preview"]["updated"]) == (0, 0)


def test_the_default_region_reads_numbers_without_a_country_code(client_for, acme, alice):
    client = client_for(alice)
    content = b"phone,first_name\n021 234 5678,Kiri\n"
    preview_url = preview_url_of(
        client.post("/messaging/contacts/import/", {"file": upload(content), "default_region": "nz"})
    )
    assert client.get(preview_url).context["entry"]["region"] == "NZ"
    client.post(f"{preview_url}confirm/")
    assert Contact.objects.for_org(acme).get().phone_e164 == "+64212345678"


@pytest.mark.parametrize(
    ("content", "region", "field", "message"),
    [
        (b"phone\n04\x0012\n", "AU", "file", "The file holds binary data; upload a CSV file."),
        (b"\xc3\x28name\n", "AU", "file", "The file is not UTF-8 text (byte 1 is not valid)"),
        (b"name,email\nAnn,a@b.test\n", "AU", "file", "The header row has no phone column"),
        (b"", "AU", "file", "The submitted file is empty."),
        (CSV, "ZZ", "default_region", "ZZ is not a two-letter region code like AU."),
        (CSV, "", "default_region", "This field is required."),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_beside_its_field(
    client_for, acme, alice, content, region, field, message
):
    response = client_for(alice).post(
        "/messaging/contacts/import/", {"file": upload(content), "default_region": region}
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and message in errors[field][0], errors
    assert not Contact.objects.exists()


def test_a_file_over_the_limit_is_refused_before_it_is_read(client_for, acme, alice):
    content = b"phone\n" + b"0412000001\n" * ((MAX_BYTES // 11) + 1)
    assert len(content) > MAX_BYTES
    response = client_for(alice).post("/messaging/contacts/import/", {"file": upload(content), "default_region": "AU"})
    assert response.status_code == 400
    assert response.context["form"].errors == {"file": ["The file is over 5 MB."]}


def test_a_missing_file_is_required(client_for, acme, alice):
    response = client_for(alice).post("/messaging/contacts/import/", {"default_region": "AU"})
    assert response.status_code == 400 and response.context["form"].errors == {"file": ["This field is required."]}


@pytest.mark.isolation("portal:messaging_import_preview", "portal:messaging_import_confirm")
def test_a_preview_belongs_to_its_person_and_organization(client_for, acme, initech, alice, bob, carol, pat, existing):
    """Another person (Carol of Globex, Bob without the role) cannot see or confirm Alice's preview; Pat's preview
    made in Acme is 404 once Pat switches to Initech, and confirming it there imports nothing anywhere."""
    alice_client = client_for(alice)
    preview_url = preview_url_of(
        alice_client.post("/messaging/contacts/import/", {"file": upload(), "default_region": "AU"})
    )
    outsider = client_for(carol)
    assert outsider.get(preview_url).status_code == 404
    assert outsider.post(f"{preview_url}confirm/").status_code == 404
    member = client_for(bob)
    assert member.get(preview_url).status_code == 403
    assert member.post(f"{preview_url}confirm/").status_code == 403
    assert Contact.objects.count() == 2  # Acme's and Globex's existing contacts only

    partner = client_for(pat)
    partner.post(f"/switch/{acme.slug}/")
    pat_url = preview_url_of(partner.post("/messaging/contacts/import/", {"file": upload(), "default_region": "AU"}))
    assert partner.get(pat_url).status_code == 200
    partner.post(f"/switch/{initech.slug}/")
    assert partner.get(pat_url).status_code == 404
    assert partner.post(f"{pat_url}confirm/").status_code == 404
    assert Contact.objects.count() == 2


def test_a_file_changed_or_gone_since_the_preview_is_not_imported(client_for, acme, alice):
    client = client_for(alice)
    preview_url = preview_url_of(client.post("/messaging/contacts/import/", {"file": upload(), "default_region": "AU"}))
    path = stored_path(client, preview_url)
    default_storage.delete(path)
    assert default_storage.save(path, ContentFile(b"phone\n0499999999\n")) == path
    response = client.post(f"{preview_url}confirm/")
    assert response["Location"] == "/messaging/contacts/import/"
    assert message_texts(response)[-1] == "The uploaded file changed since the preview; upload it again."
    default_storage.delete(path)
    response = client.post(f"{preview_url}confirm/")
    assert message_texts(response)[-1] == "The uploaded file is no longer kept; upload it again."
    assert not Contact.objects.exists()


def test_previews_nobody_confirmed_are_cleaned_up(client_for, acme, alice, frozen):
    """A preview's session ends (after two idle hours) without a confirmation: its file goes once it is a day old."""

    def preview() -> str:
        client = client_for(alice)  # a new session each time: the earlier ones have expired
        response = client.post("/messaging/contacts/import/", {"file": upload(), "default_region": "AU"})
        return stored_path(client, preview_url_of(response))

    first = preview()
    frozen.shift(timedelta(hours=23))
    second = preview()
    assert default_storage.exists(first) and default_storage.exists(second)
    frozen.shift(timedelta(hours=2))  # the first is now over a day old, the second is not
    preview()
    assert not default_storage.exists(first) and default_storage.exists(second)
