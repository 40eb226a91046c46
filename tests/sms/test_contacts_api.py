"""The contacts, import and do-not-contact API: scopes, roles, bad input by field, and tenant isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from sms.models import ConsentEvent, Contact, DoNotContact
from sms.services.contacts import contact_create, dnc_add

pytestmark = pytest.mark.django_db

SCOPES = ("read", "write", "sms:read", "sms:write")


def session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def acme_key(api: Any, acme: Any, api_key_for: Any) -> APIClient:
    _, raw = api_key_for(organization=acme, scopes=SCOPES)
    return api(raw)


@pytest.fixture
def summit_key(api: Any, summit: Any, api_key_for: Any) -> str:
    _, raw = api_key_for(partner=summit, scopes=SCOPES)
    return raw


@pytest.fixture
def ann(acme: Any) -> Contact:
    return contact_create(organization=acme, phone="0412345678", data={"first_name": "Ann", "tags": ["vip"]})


@pytest.fixture
def gus(globex: Any) -> Contact:
    return contact_create(organization=globex, phone="0412345678", data={"first_name": "Gus"})


def post(client: APIClient, path: str, body: Any, **headers: Any) -> Any:
    return client.generic("POST", path, json.dumps(body), content_type="application/json", **headers)


def test_a_key_creates_lists_and_changes_contacts(acme_key, ann, acme):
    response = post(
        acme_key,
        "/api/sms/contacts/",
        {
            "phone": "0413 000 111",
            "first_name": "Bo",
            "tags": ["Staff"],
            "consent": {"source": "web form", "text": "Yes, text me."},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["phone"], body["tags"], body["consent"]["source"], body["on_dnc"]) == (
        "+61413000111",
        ["staff"],
        "web form",
        False,
    )
    dnc_add(organization=acme, phone_e164="+61413000111", reason="manual")
    listed = acme_key.get("/api/sms/contacts/?on_dnc=true").json()
    assert [item["phone"] for item in listed["results"]] == ["+61413000111"]
    assert [item["first_name"] for item in acme_key.get("/api/sms/contacts/?tag=vip").json()["results"]] == ["Ann"]
    assert [item["first_name"] for item in acme_key.get("/api/sms/contacts/?consent=yes").json()["results"]] == ["Bo"]
    assert [item["first_name"] for item in acme_key.get("/api/sms/contacts/?q=345").json()["results"]] == ["Ann"]
    changed = acme_key.patch(f"/api/sms/contacts/{ann.pk}/", {"last_name": "Lee"}, format="json")
    assert changed.status_code == 200 and changed.json()["last_name"] == "Lee"
    assert acme_key.delete(f"/api/sms/contacts/{ann.pk}/").status_code == 204
    assert not Contact.objects.filter(pk=ann.pk).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({}, "phone"),
        ({"phone": "0412000000", "email": "nope"}, "email"),
        ({"phone": "0412000000", "timezone": "Moon/Base"}, "timezone"),
        ({"phone": "0412000000", "tags": "vip"}, "tags"),
        ({"phone": "0412000000", "consent": {"text": "no source"}}, "consent"),
        ({"phone": "0412000000", "owner": "me"}, "owner"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(acme_key, body, field):
    response = post(acme_key, "/api/sms/contacts/", body)
    assert response.status_code == 400 and field in response.json()
    assert not Contact.objects.exists()


def test_a_taken_number_is_a_409(acme_key, ann):
    response = post(acme_key, "/api/sms/contacts/", {"phone": "+61412345678"})
    assert response.status_code == 409 and "phone" in response.json()


def test_scopes_and_roles_decide(api, api_key_for, acme, bob, alice, ann):
    _, read_only = api_key_for(organization=acme, scopes=("read", "sms:read"))
    assert api(read_only).get("/api/sms/contacts/").status_code == 200
    assert post(api(read_only), "/api/sms/contacts/", {"phone": "0413000111"}).status_code == 403
    _, billing_only = api_key_for(organization=acme, scopes=("read", "write", "billing:read"))
    assert api(billing_only).get("/api/sms/contacts/").status_code == 403
    assert session(bob).get("/api/sms/contacts/").status_code == 403  # a technician (member)
    assert session(alice).get("/api/sms/contacts/").status_code == 200  # the owner


def test_import_previews_then_imports_the_same(acme_key):
    content = b"phone,first_name,consent\n0412345678,Ann,yes\n0413000111,Bo,no\n12,Bad,\n"

    def upload(dry_run: str) -> Any:
        file = SimpleUploadedFile("contacts.csv", content, content_type="text/csv")
        return acme_key.post("/api/sms/contacts/import/", {"file": file, "dry_run": dry_run}, format="multipart")

    preview = upload("true")
    assert preview.status_code == 200 and not Contact.objects.exists()
    assert preview.json()["invalid"] == [
        {"row": 4, "field": "phone", "error": "'12' is not a valid phone number in AU or with its country code."}
    ]
    imported = upload("false")
    assert imported.json() == {**preview.json(), "dry_run": False}
    assert (imported.json()["created"], Contact.objects.count(), ConsentEvent.objects.count()) == (2, 2, 1)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "file"),
        ({"file": b"name\nAnn\n"}, "file"),
        ({"file": b"phone\n0412345678\n", "default_region": "ZZ"}, "default_region"),
        ({"file": b"phone\n0412345678\n", "dry_run": "perhaps"}, "dry_run"),
    ],
)
def test_an_import_that_cannot_run_is_a_400(acme_key, data, field):
    if "file" in data:
        data = {**data, "file": SimpleUploadedFile("c.csv", data["file"], content_type="text/csv")}
    response = acme_key.post("/api/sms/contacts/import/", data, format="multipart")
    assert response.status_code == 400 and field in response.json()


def test_the_do_not_contact_list(acme_key, acme, ann):
    added = post(acme_key, "/api/sms/dnc/", {"phone": "0412 345 678", "source": "phone call"})
    assert added.status_code == 201 and added.json()["reason"] == "manual"
    again = post(acme_key, "/api/sms/dnc/", {"phone": "+61412345678", "reason": "import"})
    assert again.status_code == 200 and again.json()["id"] == added.json()["id"]
    assert acme_key.get(f"/api/sms/contacts/{ann.pk}/").json()["on_dnc"] is True
    assert [item["phone"] for item in acme_key.get("/api/sms/dnc/").json()["results"]] == ["+61412345678"]
    assert post(acme_key, "/api/sms/dnc/", {"phone": "0412000000", "reason": "whim"}).status_code == 400
    assert acme_key.delete(f"/api/sms/dnc/{added.json()['id']}/").status_code == 204
    assert not DoNotContact.objects.exists()
    assert list(ann.consent_events.order_by("at", "id").values_list("kind", flat=True)) == ["dnc_added", "dnc_removed"]


@pytest.mark.isolation("api-sms-contact-list")
def test_contact_lists_show_only_the_callers_organization(acme_key, api, summit_key, ann, gus, carol):
    for client in (acme_key, api(summit_key, organization="acme")):
        names = [item["first_name"] for item in client.get("/api/sms/contacts/").json()["results"]]
        assert names == ["Ann"]
    assert [item["first_name"] for item in session(carol).get("/api/sms/contacts/").json()["results"]] == ["Gus"]
    # A partner key without X-Organization lists its partner's organizations only (Globex is not Summit's).
    assert [item["first_name"] for item in api(summit_key).get("/api/sms/contacts/").json()["results"]] == ["Ann"]


@pytest.mark.isolation("api-sms-contact-detail")
def test_another_organizations_contact_is_404(acme_key, api, summit_key, gus, alice):
    for client in (acme_key, api(summit_key, organization="acme"), session(alice)):
        path = f"/api/sms/contacts/{gus.pk}/"
        assert client.get(path).status_code == 404
        assert client.patch(path, {"first_name": "Owned"}, format="json").status_code == 404
        assert client.delete(path).status_code == 404
        assert client.get("/api/sms/contacts/not-a-uuid/").status_code == 404
    gus.refresh_from_db()
    assert gus.first_name == "Gus"


@pytest.mark.isolation("api-sms-contact-import")
def test_an_import_writes_only_to_the_callers_organization(acme_key, gus, globex):
    file = SimpleUploadedFile("c.csv", b"phone,first_name\n0412345678,Acme's Ann\n", content_type="text/csv")
    response = acme_key.post("/api/sms/contacts/import/", {"file": file, "dry_run": "false"}, format="multipart")
    assert response.json()["created"] == 1
    gus.refresh_from_db()
    assert gus.first_name == "Gus" and Contact.objects.for_org(globex).count() == 1


@pytest.mark.isolation("api-sms-dnc-list", "api-sms-dnc-detail")
def test_another_organizations_do_not_contact_entries_are_hidden(acme_key, api, summit_key, globex, acme):
    theirs = dnc_add(organization=globex, phone_e164="+61499999999", reason="manual")
    ours = dnc_add(organization=acme, phone_e164="+61411111111", reason="manual")
    for client in (acme_key, api(summit_key, organization="acme")):
        assert [item["id"] for item in client.get("/api/sms/dnc/").json()["results"]] == [ours.pk]
        assert client.get(f"/api/sms/dnc/{theirs.pk}/").status_code == 404
        assert client.delete(f"/api/sms/dnc/{theirs.pk}/").status_code == 404
        assert client.get("/api/sms/dnc/x/").status_code == 404
    assert DoNotContact.objects.filter(pk=theirs.pk).exists()
