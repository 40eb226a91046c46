"""Files a template email carries (``notifications.attachments``): named in the notice, made when the email is sent,
binary content carried through the mail task base64-encoded, and refused by field when they are not right."""

from __future__ import annotations

import pytest

from billing.models import Invoice
from notifications.models import Delivery, DeliveryStatus
from notifications.services import notify
from tenancy.errors import ServiceValidationError

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "attachments",
    [
        [{"kind": "spreadsheet", "id": "1"}],
        [{"kind": "invoice_pdf"}],
        [{"kind": "invoice_pdf", "id": 7}],
        "invoice_pdf",
        [{"kind": "invoice_pdf", "id": str(n)} for n in range(6)],
    ],
)
def test_bad_attachments_are_refused_naming_the_field(acme, attachments):
    with pytest.raises(ServiceValidationError) as refused:
        notify(organization=acme, event_type="invoice.issued", addresses=["ap@acme.test"], template="invoice",
               context={}, attachments=attachments)  # fmt: skip
    assert "attachments" in refused.value.message_dict


def test_attachments_need_a_template_email(acme):
    with pytest.raises(ServiceValidationError, match="template"):
        notify(organization=acme, event_type="invoice.issued", addresses=["ap@acme.test"], context={},
               attachments=[{"kind": "invoice_pdf", "id": "x"}])  # fmt: skip


def test_an_attachment_whose_object_is_gone_fails_the_delivery_without_retrying(
    acme, alice, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        notify(organization=acme, event_type="invoice.issued", addresses=["ap@acme.test"], template="invoice",
               context={"reference": "INV-09999"},
               attachments=[{"kind": "invoice_pdf", "id": "5f0e9d1c-0000-4000-8000-000000000000"}])  # fmt: skip
    (delivery,) = Delivery.objects.for_org(acme)
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert "no longer exists" in delivery.last_error and mailoutbox == []
    assert not Invoice.objects.exists()
