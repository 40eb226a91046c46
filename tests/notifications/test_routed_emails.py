"""The existing emails go through notifications: each invitation, welcome, ticket email (reply, merge,
acknowledgement, unknown sender), invoice email (payment failed, reminder, contract renewal), staff ticket alert and
sales assignment is a notice with an email delivery, sent after commit, word for word the email it was before (dates
written before they are stored as JSON), once per idempotency key. Plain addresses (people without an account, or
outside the membership) are emailed once each; platform notices (no organization) go to addresses only and never show
in an organization's portal; required channels cannot be turned off."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from anymail.inbound import AnymailInboundMessage
from django.contrib.auth.models import Group
from django.core import mail
from django.core.cache import cache
from django.db import transaction
from django.template import engines
from django.utils import timezone

from billing.models import Subscription
from billing.services.collection import invoice_notify
from billing.services.contracts import ContractTerms, contract_create, contracts_renewal_notices
from billing.services.invoices import invoice_create, invoice_finalize
from billing.services.provisioning import _welcome
from notifications.catalogue import EMAIL, IN_APP
from notifications.models import Delivery, DeliveryStatus, Notice, Notification, NotificationPreference
from notifications.services import notify
from notifications.services.preferences import channels_for, preferences_table, preferences_update
from qualification.models import Qualification
from qualification.services import qualification_submit
from tenancy.emails import render_email
from tenancy.errors import ServiceValidationError
from tenancy.models import Invitation, Organization, Role, User
from tenancy.services import invitation_create
from tests.factories import UserFactory
from tests.qualification.conftest import PREMIUM, sales_reps  # noqa: F401 (the Sales group's reps)
from tickets import routing
from tickets.inbound import inbound_receive
from tickets.models import Ticket
from tickets.services import comment_add, ticket_create, ticket_merge

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.SITE_URL = "https://portal.keel.test"


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    """Run a service in a transaction and everything it queues on commit (the notice's sends, then the mail task)."""

    def run(work: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return work()

    return run


@pytest.fixture
def tech(db: Any) -> User:
    return UserFactory(email="tech@keel.test", full_name="Terry Tech", is_staff=True)


def only_notice(event_type: str) -> Notice:
    [notice] = Notice.objects.filter(event_type=event_type)
    return notice


def sent(notice: Notice) -> list[tuple[str, str, bool]]:
    """Each delivery as (channel, to, is it a person's notification) once sent; asserts everything was SENT."""
    rows = list(Delivery.objects.filter(notice=notice))
    assert all(row.status == DeliveryStatus.SENT for row in rows), [(row.to, row.last_error) for row in rows]
    return sorted((row.channel, row.to, row.notification_id is not None) for row in rows)


def same_email(message: Any, template: str, context: dict[str, Any], organization: Organization | None) -> None:
    """The message is word for word what ``template`` renders from ``context`` as the caller had it before."""
    expected = render_email(template, context, organization)
    assert message.subject == expected["subject"]
    assert message.body == expected["text"]
    assert message.alternatives[0][0] == expected["html"]


def as_before(value: Any, format: str) -> str:
    """What the email templates' ``|date:format`` wrote for ``value`` before dates were written by the caller."""
    return engines["django"].from_string(f'{{{{ value|date:"{format}" }}}}').render({"value": value})


def inbound(sender: str, subject: str, message_id: str) -> AnymailInboundMessage:
    return AnymailInboundMessage.construct(
        from_email=sender, to="support@keel.test", subject=subject, text="Hello", headers=[("Message-ID", message_id)]
    )


# -- account: invitation and welcome ---------------------------------------------------------------------------------


def test_an_invitation_is_a_notice_to_the_invitees_address_with_its_link_sealed(committed, acme, alice, staff_client):
    with timezone.override(SYDNEY):  # the portal renders in the organization's zone
        invitation, token = committed(
            lambda: invitation_create(
                organization=acme, email="Dana@Example.test", role=Role.MANAGER, invited_by=alice,
                actor_role=Role.OWNER,
            )
        )  # fmt: skip
        before = {
            "organization_name": acme.display_name, "inviter": alice.get_full_name(), "role": "Manager",
            "path": f"/invite/{token}/", "expires_at": as_before(invitation.expires_at, "j F Y, H:i e"),
        }  # fmt: skip
        [message] = mail.outbox
        same_email(message, "invitation", before, acme)
    assert message.to == ["dana@example.test"]
    assert invitation.expires_at.astimezone(SYDNEY).strftime("%H:%M") in message.body  # written in Sydney time

    notice = only_notice("account.invitation")
    assert (notice.organization, notice.template, notice.key) == (acme, "invitation", f"invitation:{invitation.pk}")
    assert sent(notice) == [(EMAIL, "dana@example.test", False)]  # an address: no person's notification
    # The one-time link is emailed only: not in the notice's context, its stored values or the admin.
    assert token not in str(notice.context) and token not in notice.sealed and notice.sealed
    page = staff_client.get(f"/admin/notifications/notice/{notice.pk}/change/").content.decode()
    assert token not in page and notice.sealed not in page
    assert not Notification.objects.exists()


def test_the_welcome_is_required_for_the_new_owner_and_sent_once_per_subscription(committed, acme, alice):
    preferences_update(organization=acme, user=alice, choices={"account.welcome": set()})  # tries to opt out
    subscription = Subscription.objects.create(
        organization=acme, stripe_subscription_id="sub_1", stripe_customer_id="cus_1", tier="CORE_PLUS",
        plan_name="Core+", status="TRIALING", price_monthly=Decimal("12345.50"), currency="AUD",
        trial_end=datetime(2026, 12, 1, 13, 30, tzinfo=UTC), owner=alice,
    )  # fmt: skip
    committed(lambda: _welcome(subscription, acme, alice, True))
    committed(lambda: _welcome(subscription, acme, alice, True))  # a retried provisioning

    [message] = mail.outbox
    path = re.search(r"https://portal\.keel\.test(/\S+)", str(message.body))
    assert path is not None
    before = {
        "user_name": "Alice", "organization_name": acme.name, "plan_name": "Core+",
        "price_monthly": Decimal("12345.50"), "currency": "AUD",
        "trial_end": as_before(subscription.trial_end, "j F Y"), "new_account": True, "path": path.group(1),
        "valid_days": 7,
    }  # fmt: skip
    same_email(message, "welcome", before, acme)
    assert "12,345.50 a month, free until 1 December 2026" in message.body
    notice = only_notice("account.welcome")
    assert notice.key == f"welcome:{subscription.pk}" and path.group(1) not in str(notice.context)
    assert sent(notice) == [(EMAIL, "alice@acme.test", True)]  # a member: her notification, with its email
    assert Notification.objects.get(notice=notice).in_app is False  # she turned the bell off, not the email


# -- required channels -----------------------------------------------------------------------------------------------


def test_a_required_channel_cannot_be_turned_off_by_the_service(acme, alice, bob):
    saved = preferences_update(organization=acme, user=bob, choices={"account.welcome": set()})
    assert saved["account.welcome"] == {EMAIL}
    assert NotificationPreference.objects.get(user=bob, event_type="account.welcome").channels == {EMAIL}
    # A row written before the channel became required is read with it on.
    NotificationPreference.objects.filter(user=bob).update(email=False)
    assert channels_for(organization=acme, users=[bob], event_type="account.welcome") == {bob.pk: {EMAIL}}
    assert preferences_table(organization=acme, user=bob)["account.welcome"] == {EMAIL}
    assert channels_for(organization=acme, users=[alice], event_type="account.welcome") == {alice.pk: {EMAIL, IN_APP}}


def test_the_settings_page_shows_a_required_channel_ticked_and_disabled_and_ignores_unticking_it(
    client_for, acme, alice
):
    client = client_for(alice)
    page = client.get("/settings/notifications/")
    html = page.content.decode()
    field = re.search(r'<input[^>]*name="account\.welcome:email"[^>]*>', html)
    assert field is not None and "checked" in field.group(0) and "disabled" in field.group(0)
    assert "always sent" in html
    in_app = re.search(r'<input[^>]*name="account\.welcome:in_app"[^>]*>', html)
    assert in_app is not None and "disabled" not in in_app.group(0)
    # Event types nobody chooses (to addresses, to staff) are not offered, here or for Slack.
    assert "account.invitation" not in html and "ticket.staff_alert" not in html and "sales." not in html

    data = {name: "on" for name in page.context["form"].fields if page.context["form"][name].value()}
    data.pop("account.welcome:email")
    data.pop("account.welcome:in_app")
    assert client.post("/settings/notifications/", {"form": "preferences", **data}).status_code == 302
    assert NotificationPreference.objects.get(user=alice, event_type="account.welcome").channels == {EMAIL}


# -- tickets ---------------------------------------------------------------------------------------------------------


def test_a_staff_reply_is_a_notice_to_the_requesters_address_once_per_comment(committed, acme, alice, tech):
    ticket = ticket_create(organization=acme, subject="VPN down", requester=alice)
    comment = committed(lambda: comment_add(ticket=ticket, body="Restarting it now.", author=tech, by_staff=True))

    [message] = mail.outbox
    before = {"reference": "T-1001", "subject": "VPN down", "body": "Restarting it now.", "author": "Terry",
              "path": "/support/tickets/1001/"}  # fmt: skip
    same_email(message, "ticket_reply", before, acme)
    notice = only_notice("ticket.replied")
    assert (notice.organization, notice.key, notice.template) == (acme, f"comment:{comment.pk}", "ticket_reply")
    assert sent(notice) == [(EMAIL, "alice@acme.test", False)]
    # The same comment told again (a retried service) emails nobody twice.
    committed(lambda: notify(organization=acme, event_type="ticket.replied", addresses=["alice@acme.test"],
                             template="ticket_reply", key=f"comment:{comment.pk}", context=before))  # fmt: skip
    assert len(mail.outbox) == 1 and Notice.objects.count() == 1


def test_a_member_with_ticket_email_off_gets_replies_to_their_own_tickets_only(committed, acme, alice, bob, tech):
    preferences_update(organization=acme, user=bob, choices={"ticket.replied": {IN_APP}})
    bobs = ticket_create(organization=acme, subject="Bob's printer", requester=bob)
    alices = ticket_create(organization=acme, subject="Alice's laptop", requester=alice)
    committed(lambda: comment_add(ticket=bobs, body="Fixed.", author=tech, by_staff=True))
    committed(lambda: comment_add(ticket=alices, body="Ordered.", author=tech, by_staff=True))
    # The reply is the conversation itself: its requester gets it whatever they chose; nobody else is emailed.
    assert sorted(message.to[0] for message in mail.outbox) == ["alice@acme.test", "bob@acme.test"]
    assert [message.subject for message in mail.outbox if message.to == ["bob@acme.test"]] == ["[T-1001] Bob's printer"]


def test_a_requester_without_an_account_gets_the_reply_and_the_merge_notice(committed, acme, tech):
    first = ticket_create(organization=acme, subject="Printer", requester_email="dave@vendor.test")
    second = ticket_create(organization=acme, subject="Printer again", requester_email="dave@vendor.test")
    committed(lambda: comment_add(ticket=first, body="On it.", author=tech, by_staff=True))
    committed(lambda: ticket_merge(ticket=second, into=first, actor=tech))

    reply, merged = mail.outbox
    assert reply.to == merged.to == ["dave@vendor.test"]
    before = {"reference": "T-1002", "subject": "Printer again", "into_reference": "T-1001", "into_subject": "Printer",
              "path": "/support/tickets/1001/"}  # fmt: skip
    same_email(merged, "ticket_merged", before, acme)
    notice = only_notice("ticket.merged")
    assert notice.key == f"ticket:{second.pk}:merged"
    assert sent(notice) == [(EMAIL, "dave@vendor.test", False)]


def test_an_emailed_ticket_is_acknowledged_as_an_automatic_answer(committed, acme, alice):
    assert committed(lambda: inbound_receive(inbound("Alice <alice@acme.test>", "Printer", "<m1@mail.test>"))) == (
        "opened:T-1001"
    )
    [ack] = mail.outbox
    same_email(ack, "ticket_received", {"reference": "T-1001", "subject": "Printer",
                                        "path": "/support/tickets/1001/"}, acme)  # fmt: skip
    assert ack.extra_headers["Auto-Submitted"] == "auto-replied"
    notice = only_notice("ticket.received")
    ticket = Ticket.objects.for_org(acme).get()
    assert (notice.organization, notice.key, notice.auto_reply) == (acme, f"ticket:{ticket.pk}:received", True)
    assert sent(notice) == [(EMAIL, "alice@acme.test", False)]


def test_an_unknown_sender_gets_one_platform_notice_per_message(committed, settings, acme):
    settings.SUPPORT_INBOUND_UNKNOWN_SENDER = "reject"
    stranger = inbound("Stranger <stranger@elsewhere.test>", "Hello?", "<x1@mail.test>")
    assert committed(lambda: inbound_receive(stranger)) == "rejected"
    cache.clear()  # the daily limit forgotten: the message's key still answers it once
    assert committed(lambda: inbound_receive(stranger)) == "rejected"

    [reply] = mail.outbox
    same_email(reply, "ticket_unknown_sender", {"subject": "Hello?", "sender": "stranger@elsewhere.test"}, None)
    assert reply.extra_headers["Auto-Submitted"] == "auto-replied"
    notice = only_notice("ticket.sender_unknown")
    assert notice.organization is None and notice.auto_reply
    assert sent(notice) == [(EMAIL, "stranger@elsewhere.test", False)]


def test_a_staff_alert_is_a_platform_notice_one_email_per_address(committed, acme):
    ticket = ticket_create(organization=acme, subject="Server down", priority="P1")
    to = ["manager@keel.test", "Manager@Keel.test", "admin@keel.test", "not an address"]
    committed(lambda: routing.alert(ticket, to=to, headline="First response at risk", detail="Due 10:36."))

    assert sorted(message.to[0] for message in mail.outbox) == ["admin@keel.test", "manager@keel.test"]
    before = {"headline": "First response at risk", "detail": "Due 10:36.", "reference": "T-1001",
              "subject": "Server down", "organization_name": acme.name, "priority": ticket.get_priority_display(),
              "path": f"/admin/tickets/ticket/{ticket.pk}/change/"}  # fmt: skip
    same_email(mail.outbox[0], "ticket_alert", before, None)  # staff mail keeps Keel's branding
    notice = only_notice("ticket.staff_alert")
    assert notice.organization is None and (notice.recipients, notice.notified) == (2, 2)
    assert sent(notice) == [(EMAIL, "admin@keel.test", False), (EMAIL, "manager@keel.test", False)]
    assert not Notice.objects.for_org(acme).exists()


def test_managers_are_told_once_of_an_unrouted_ticket(committed, acme):
    Group.objects.get_or_create(name="Manager")[0].user_set.add(UserFactory(email="boss@keel.test", is_staff=True))
    ticket = committed(lambda: ticket_create(organization=acme, subject="Mac", required_skills=["macos"]))
    notice = only_notice("ticket.staff_alert")
    assert notice.key == f"ticket:{ticket.pk}:unrouted" and [m.to for m in mail.outbox] == [["boss@keel.test"]]
    Ticket.objects.filter(pk=ticket.pk).update(notices_sent={})  # even if the ticket forgot it told them
    ticket.refresh_from_db()
    committed(lambda: routing.managers_told_unrouted(ticket, "again", timezone.now()))
    assert len(mail.outbox) == 1 and Notice.objects.filter(event_type="ticket.staff_alert").count() == 1


# -- billing ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def invoice(acme: Organization, alice: User) -> Any:
    draft = invoice_create(
        organization=acme, lines=[{"description": "Managed services", "quantity": "1", "unit_price": "550.00"}],
        issue_date=date(2026, 3, 2), tax_rate=Decimal("0"),
    )  # fmt: skip
    issued = invoice_finalize(invoice=draft)
    mail.outbox.clear()
    return issued


def test_a_failed_payment_is_emailed_to_each_billing_contact_whatever_they_chose(committed, acme, alice, invoice):
    admin = UserFactory(email="ada@acme.test", full_name="Ada Admin")
    acme.memberships.create(user=admin, role=Role.ADMIN)
    preferences_update(organization=acme, user=alice, choices={"payment.failed": set()})
    retry = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    context = {"amount": "550.00", "reason": "Insufficient funds.", "next_payment_at": retry, "hard_decline": False,
               "exhausted": False}  # fmt: skip
    committed(lambda: invoice_notify(invoice, "payment_failed", **context))
    committed(lambda: invoice_notify(invoice, "payment_failed", **context))  # the same failure again: its key

    assert sorted(message.to[0] for message in mail.outbox) == ["ada@acme.test", "alice@acme.test"]
    before = {"reference": invoice.reference, "organization_name": acme.name, "currency": "AUD",
              "pay_url": f"https://portal.keel.test/billing/invoices/{invoice.pk}/", **context,
              "next_payment_at": as_before(retry, "j F Y, H:i T")}  # fmt: skip
    same_email(mail.outbox[0], "payment_failed", before, acme)
    assert "We will try the card again on 3 March 2026, 01:00 UTC." in mail.outbox[0].body
    notice = only_notice("payment.failed")
    assert notice.key == f"invoice:{invoice.pk}:payment_failed:0"
    assert sent(notice) == [(EMAIL, "ada@acme.test", False), (EMAIL, "alice@acme.test", False)]


def test_reminders_are_keyed_by_their_day(committed, acme, alice, invoice):
    due = {"amount_due": "550.00", "due_date": "16 March 2026"}
    committed(lambda: invoice_notify(invoice, "invoice_reminder", **due, days_overdue=0, days_left=3))
    committed(lambda: invoice_notify(invoice, "invoice_reminder", **due, days_overdue=0, days_left=3))
    committed(lambda: invoice_notify(invoice, "invoice_reminder", **due, days_overdue=1, days_left=0))
    assert [message.subject for message in mail.outbox] == [
        f"Invoice {invoice.reference} is due on 16 March 2026",
        f"Invoice {invoice.reference} is 1 day overdue",
    ]
    keys = sorted(Notice.objects.filter(event_type="invoice.reminder").values_list("key", flat=True))
    assert keys == [f"invoice:{invoice.pk}:reminder:-3", f"invoice:{invoice.pk}:reminder:1"]


def test_a_renewal_notice_is_sent_once_per_end_date(committed, acme, alice):
    contract = contract_create(
        organization=acme,
        terms=ContractTerms(
            name="Managed IT",
            start_date=date(2026, 3, 1),
            anchor_day=1,
            end_date=date(2027, 3, 1),
            auto_renew=True,
            renewal_term_months=12,
        ),
        lines=[{"description": "Managed services", "pricing_model": "FLAT", "amount": "100.00"}],
        activate=True,
    )
    assert committed(lambda: contracts_renewal_notices(today=date(2027, 1, 30))) == 1
    type(contract).objects.filter(pk=contract.pk).update(renewal_notice_for=None)  # as if the claim were lost
    assert committed(lambda: contracts_renewal_notices(today=date(2027, 1, 31))) == 1
    [message] = mail.outbox
    assert message.to == ["alice@acme.test"] and message.subject == "Managed IT renews on 1 March 2027"
    notice = only_notice("contract.renewal")
    assert notice.key == f"contract:{contract.pk}:renewal:2027-03-01"
    assert sent(notice) == [(EMAIL, "alice@acme.test", False)]


# -- sales -----------------------------------------------------------------------------------------------------------


def test_a_sales_assignment_without_an_organization_is_a_platform_notice(committed, sales_reps):  # noqa: F811
    qualification = committed(lambda: qualification_submit(tier="premium", data=dict(PREMIUM)))
    assert isinstance(qualification, Qualification) and qualification.organization_id is None
    rep = qualification.assigned_to
    assert rep is not None
    [message] = mail.outbox
    before = {"rep_name": rep.get_short_name(), "tier": qualification.get_tier_display(),
              "status": qualification.get_status_display(), "score": qualification.auto_score, "company": "BigCo",
              "path": f"/admin/qualification/qualification/{qualification.pk}/change/"}  # fmt: skip
    same_email(message, "qualification_assigned", before, None)
    notice = only_notice("sales.qualification_assigned")
    assert notice.organization is None
    assert sent(notice) == [(EMAIL, rep.email, False)]


# -- addresses, platform notices and isolation -----------------------------------------------------------------------


def test_addresses_are_emailed_once_and_never_twice_to_a_person_already_emailed(committed, acme, alice, bob):
    preferences_update(organization=acme, user=bob, choices={"ticket.created": {IN_APP, EMAIL}})
    notice = committed(
        lambda: notify(
            organization=acme, event_type="ticket.created", context={"title": "Printer"}, users=[bob],
            addresses=["BOB@acme.test", "dana@example.test", " Dana@Example.test ", "alice@acme.test"],
        )
    )  # fmt: skip
    assert sent(notice) == [
        (EMAIL, "alice@acme.test", False),  # a member, but named only as an address: emailed, no notification
        (EMAIL, "bob@acme.test", True),  # told by email as a person: not again as an address
        (EMAIL, "dana@example.test", False),
    ]
    assert (notice.recipients, notice.notified) == (3, 3)
    assert sorted(message.to[0] for message in mail.outbox) == ["alice@acme.test", "bob@acme.test",
                                                                "dana@example.test"]  # fmt: skip
    assert [n.user for n in Notification.objects.all()] == [bob]
    # An address gets the event type's own words too, greeted without a name.
    dana = next(message for message in mail.outbox if message.to == ["dana@example.test"])
    assert dana.subject == "Printer" and dana.body.startswith("Hello there,")


def test_an_address_of_a_person_told_only_in_the_portal_is_still_emailed(committed, acme, bob):
    notice = committed(
        lambda: notify(organization=acme, event_type="ticket.created", context={}, users=[bob],
                       addresses=["bob@acme.test"])
    )  # fmt: skip
    assert sent(notice) == [(EMAIL, "bob@acme.test", False)]
    assert Notification.objects.get(notice=notice).in_app is True
    assert (notice.recipients, notice.notified) == (1, 1)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"addresses": ["not an address"]}, "addresses"),
        ({"addresses": ["a@b.test", ""]}, "addresses"),
        ({"addresses": [f"{'x' * 250}@b.test"]}, "addresses"),
        ({"organization": None, "addresses": []}, "addresses"),
        ({"organization": None, "users": "alice"}, "users"),
        ({"organization": None, "roles": [Role.OWNER]}, "roles"),
        ({"sealed": {"path": "/secret/"}}, "sealed"),
        ({"sealed": {"path": 7}, "template": "invitation"}, "sealed"),
    ],
)
def test_bad_addresses_and_platform_notices_with_people_are_refused_by_field(acme, alice, arguments, field):
    values: dict[str, Any] = {"organization": acme, "event_type": "ticket.staff_alert", "context": {},
                              "addresses": ["staff@keel.test"], **arguments}  # fmt: skip
    if values.get("users") == "alice":
        values["users"] = [alice]
    with pytest.raises(ServiceValidationError) as refused:
        notify(**values)
    assert field in refused.value.message_dict
    assert not Notice.objects.exists()


def test_a_platform_key_makes_one_notice(committed, acme):
    def tell() -> Notice:
        return notify(organization=None, event_type="ticket.staff_alert", context={"title": "x"},
                      addresses=["ops@keel.test"], key="k-1")  # fmt: skip

    first, again = committed(tell), committed(tell)
    assert first.pk == again.pk and Notice.objects.count() == 1 and len(mail.outbox) == 1
    # Keys are per organization: the same key in Acme is another notice.
    acmes = committed(lambda: notify(organization=acme, event_type="ticket.staff_alert", context={},
                                     addresses=["ops@keel.test"], key="k-1"))  # fmt: skip
    assert acmes.pk != first.pk and Notice.objects.count() == 2 and len(mail.outbox) == 2


@pytest.mark.isolation("portal:notifications")
def test_a_platform_notice_never_shows_in_any_organizations_portal(committed, client_for, acme, globex, alice, carol,
                                                                   staff_client):  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Server down", priority="P1")
    committed(lambda: routing.alert(ticket, to=[alice.email, carol.email], headline="Breached", detail="Late."))
    committed(lambda: notify(organization=acme, event_type="ticket.created", context={"title": "Mine"},
                             users=[alice]))  # fmt: skip
    platform = Notice.objects.get(organization__isnull=True)

    for user in (alice, carol):
        listed = client_for(user).get("/notifications/").context["notifications"]
        assert [n.title for n in listed] == (["Mine"] if user == alice else [])
    for organization in (acme, globex):
        assert platform not in Notice.objects.for_org(organization)
        assert not Delivery.objects.for_org(organization).filter(notice=platform).exists()
    assert not Notification.objects.filter(notice=platform).exists()
    # The staff admin shows it, among the notices without an organization.
    listing = staff_client.get("/admin/notifications/notice/?organization__isempty=1")
    assert [notice.pk for notice in listing.context["cl"].result_list] == [platform.pk]
    assert staff_client.get(f"/admin/notifications/notice/{platform.pk}/change/").status_code == 200
    deliveries = staff_client.get("/admin/notifications/delivery/?organization__isempty=1")
    assert sorted(d.to for d in deliveries.context["cl"].result_list) == ["alice@acme.test", "carol@globex.test"]


def test_an_invitation_sent_twice_is_two_notices_and_a_revoked_one_keeps_its_own(committed, acme, alice):
    committed(lambda: invitation_create(organization=acme, email="d@example.test", role=Role.MEMBER, invited_by=alice))
    committed(lambda: invitation_create(organization=acme, email="d@example.test", role=Role.MEMBER, invited_by=alice))
    keys = set(Notice.objects.for_org(acme).values_list("key", flat=True))
    assert keys == {f"invitation:{pk}" for pk in Invitation.objects.for_org(acme).values_list("pk", flat=True)}
    assert len(mail.outbox) == 2


def test_a_delivery_to_an_address_is_retried_like_any_other(committed, acme, monkeypatch, frozen):
    from notifications import senders
    from notifications.tasks import retry_due

    calls: list[str] = []

    def flaky(**kwargs: Any) -> None:
        calls.append(kwargs["to"])
        if len(calls) == 1:
            raise ConnectionError("mail relay down")

    monkeypatch.setattr(senders, "email_send", flaky)
    notice = committed(lambda: notify(organization=None, event_type="ticket.staff_alert", context={},
                                      addresses=["ops@keel.test"], template="ticket_alert"))  # fmt: skip
    delivery = Delivery.objects.get(notice=notice)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    frozen.shift(timedelta(minutes=1))
    assert retry_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, calls) == (DeliveryStatus.SENT, ["ops@keel.test", "ops@keel.test"])
