"""Where an organization's invoices go: addresses it names (its accounts department) instead of its owners and
admins, set by an owner or admin on the Billing page, checked address by address, audited, and used by every invoice,
reminder and contract notice from then on (``billing.selectors.billing_contacts``)."""

from __future__ import annotations

import pytest

from billing.selectors import billing_contacts
from billing.services.invoices import invoice_finalize
from events.models import Event
from tenancy.errors import ServiceValidationError
from tenancy.models import AuditEvent, Organization, Role
from tenancy.services import invoice_emails_update
from tests.billing.test_invoices import manual
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def reloaded(organization: Organization) -> Organization:
    return Organization.objects.get(pk=organization.pk)


def test_without_addresses_invoices_go_to_the_active_owners_and_admins(acme, alice, bob):
    MembershipFactory(user=UserFactory(email="admin@acme.test"), organization=acme, role=Role.ADMIN)
    MembershipFactory(user=UserFactory(email="gone@acme.test", is_active=False), organization=acme, role=Role.OWNER)
    assert billing_contacts(acme) == ["admin@acme.test", "alice@acme.test"]


def test_named_addresses_receive_the_invoice_instead_of_the_owners_and_admins(
    acme, alice, mailoutbox, django_capture_on_commit_callbacks
):
    invoice_emails_update(organization=acme, actor=alice, emails="accounts@acme.test\nAP@acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        invoice_finalize(invoice=manual(reloaded(acme), ("Labour", "1", "100.00")))
    assert sorted(to for mail in mailoutbox for to in mail.to) == ["AP@acme.test", "accounts@acme.test"]
    assert all("INV-00001" in mail.subject for mail in mailoutbox)


def test_text_is_read_one_address_per_line_or_separated_by_commas_and_semicolons(acme, alice):
    invoice_emails_update(organization=acme, actor=alice, emails=" a@acme.test,\r\nb@acme.test ; c@acme.test,, ")
    assert reloaded(acme).invoice_emails == ["a@acme.test", "b@acme.test", "c@acme.test"]
    invoice_emails_update(organization=acme, actor=alice, emails="  ")
    assert reloaded(acme).invoice_emails == []
    assert billing_contacts(reloaded(acme)) == ["alice@acme.test"]


@pytest.mark.parametrize(
    ("emails", "error"),
    [
        ("accounts@acme.test\nnot an address", "'not an address' is not an email address."),
        (["accounts@acme.test", "Accounts@ACME.test"], "Accounts@ACME.test is listed twice."),
        ([f"ap{n}@acme.test" for n in range(6)], "At most 5 addresses; 6 were given."),
        ("=HYPERLINK(1)", "'=HYPERLINK(1)' is not an email address."),
    ],
)
def test_a_bad_list_names_the_field_and_the_address_and_changes_nothing(acme, alice, emails, error):
    invoice_emails_update(organization=acme, actor=alice, emails=["accounts@acme.test"])
    audits = AuditEvent.objects.count()
    with pytest.raises(ServiceValidationError) as refused:
        invoice_emails_update(organization=acme, actor=alice, emails=emails)
    assert refused.value.message_dict == {"invoice_emails": [error]}
    assert reloaded(acme).invoice_emails == ["accounts@acme.test"]
    assert AuditEvent.objects.count() == audits


def test_a_change_is_audited_and_published_and_saving_the_same_list_again_records_nothing(acme, alice):
    invoice_emails_update(organization=acme, actor=alice, emails=["accounts@acme.test"], ip="203.0.113.9")
    invoice_emails_update(organization=acme, actor=alice, emails="accounts@acme.test")
    (audit,) = AuditEvent.objects.filter(organization=acme, action="organization.updated")
    assert (audit.actor, audit.ip_address, audit.changes) == (
        alice,
        "203.0.113.9",
        {"invoice_emails": ["", "accounts@acme.test"]},
    )
    (event,) = Event.objects.filter(organization=acme, type="organization.updated")
    assert event.payload["changes"] == {"invoice_emails": ["", "accounts@acme.test"]}


# -- the portal --------------------------------------------------------------------------------------------------------

PAGE = "/billing/recipients/"


def test_the_billing_page_says_where_invoices_go_and_links_to_change_it(acme, alice, client_for):
    page = client_for(alice).get("/billing/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "emailed to your owners and admins: alice@acme.test" in text and f'href="{PAGE}"' in text
    invoice_emails_update(organization=acme, actor=alice, emails=["accounts@acme.test"])
    assert "are emailed to accounts@acme.test." in client_for(alice).get("/billing/").content.decode()


def test_an_owner_sets_the_addresses_on_the_page(acme, alice, client_for):
    client = client_for(alice)
    assert client.get(PAGE).status_code == 200
    answer = client.post(PAGE, {"invoice_emails": "accounts@acme.test\r\nap@acme.test"}, follow=True)
    assert answer.redirect_chain == [("/billing/", 302)]
    assert "Invoices will be emailed to accounts@acme.test, ap@acme.test." in answer.content.decode()
    assert reloaded(acme).invoice_emails == ["accounts@acme.test", "ap@acme.test"]
    assert "accounts@acme.test\nap@acme.test</textarea>" in client.get(PAGE).content.decode()


def test_a_bad_address_is_shown_on_the_field_and_nothing_is_saved(acme, alice, client_for):
    answer = client_for(alice).post(PAGE, {"invoice_emails": "accounts@acme.test\nnot-an-address"})
    assert answer.status_code == 400
    assert "&#x27;not-an-address&#x27; is not an email address." in answer.content.decode()
    assert reloaded(acme).invoice_emails == []


def test_a_member_cannot_see_or_change_where_invoices_go(acme, bob, client_for):
    client = client_for(bob)
    assert client.get(PAGE).status_code == 404
    assert client.post(PAGE, {"invoice_emails": "mine@evil.test"}).status_code == 404
    assert reloaded(acme).invoice_emails == []


@pytest.mark.isolation("portal:billing_recipients")
def test_the_page_shows_and_changes_only_the_own_organizations_addresses(acme, globex, alice, carol, client_for):
    invoice_emails_update(organization=globex, actor=carol, emails=["ap@globex.test"])
    client = client_for(alice)
    for page in (client.get(PAGE), client.get("/billing/")):
        assert "globex" not in page.content.decode().lower()
    assert client.post(PAGE, {"invoice_emails": "accounts@acme.test"}).status_code == 302
    assert reloaded(globex).invoice_emails == ["ap@globex.test"]
    assert reloaded(acme).invoice_emails == ["accounts@acme.test"]
