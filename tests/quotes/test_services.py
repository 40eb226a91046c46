"""Quote services: status transitions, sending once, acceptance, expiry (beat), custom quotes written by staff."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from events.models import Event
from quotes import services
from quotes.models import Quote, QuoteStatus
from quotes.tasks import expire_quotes
from tenancy.errors import ConflictError, ServiceValidationError
from tests.quotes.conftest import PROSPECT

pytestmark = pytest.mark.django_db

CONFIG = {"users": 11, "devices": 15, "add_ons": ["backup_tb"]}


@pytest.fixture
def make_quote(price_book, prospect):
    def make(status: str = QuoteStatus.DRAFT, **fields) -> Quote:
        quote = services.quote_create(email=PROSPECT, tier="core_plus", configuration=CONFIG)
        if status != QuoteStatus.DRAFT or fields:
            Quote.objects.filter(pk=quote.pk).update(status=status, **fields)
            quote.refresh_from_db()
        return quote

    return make


def test_quote_create_stores_lines_and_total(make_quote):
    quote = make_quote()
    assert quote.price_monthly == Decimal("623.00")  # 499 + 45 + 79
    assert [(line.position, line.code, line.amount) for line in quote.lines.all()] == [
        (1, "base", Decimal("499.00")),
        (2, "extra_users", Decimal("45.00")),
        (3, "backup_tb", Decimal("79.00")),
    ]
    assert quote.configuration == {"users": 11, "devices": 15, "add_ons": [{"code": "backup_tb", "quantity": 1}]}


def test_price_book_changes_do_not_reprice_existing_quotes(make_quote, price_book):
    quote = make_quote()
    price_book["plans"]["core_plus"].base_monthly = Decimal("599.00")
    price_book["plans"]["core_plus"].save()
    quote.refresh_from_db()
    assert quote.price_monthly == Decimal("623.00")
    assert services.quote_create(email=PROSPECT, tier="core_plus", configuration=CONFIG).price_monthly == Decimal(
        "723.00"
    )


def test_not_allowed_says_why(price_book, qualify):
    qualify(status="MANUAL_REVIEW")
    with pytest.raises(services.QuoteNotAllowedError) as caught:
        services.quote_create(email=PROSPECT, tier="core_plus", configuration=CONFIG)
    assert caught.value.next_step == "await_review"
    assert Quote.objects.count() == 0


# -- sending ----------------------------------------------------------------------------------------------------------


def test_send_emails_the_link_once(make_quote, staff, django_capture_on_commit_callbacks, settings):
    quote = make_quote()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.quote_send(quote=quote, actor=staff) is True
    with django_capture_on_commit_callbacks(execute=True):
        assert services.quote_send(quote=quote, actor=staff) is False  # already sent: no second email
    [message] = mail.outbox
    assert message.to == [PROSPECT]
    assert message.subject == "Your Core+ quote from Keel"
    link = f"{settings.SITE_URL}/quote/{quote.quote_key}"
    assert link in message.body
    assert "AUD 623.00" in message.body
    assert isinstance(message, EmailMultiAlternatives)
    html = message.alternatives[0][0]
    assert isinstance(html, str)
    assert link in html and "Sam" in html
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.SENT
    assert quote.sent_at is not None
    [event] = Event.objects.filter(type="quote.sent")
    assert quote.quote_key not in str(event.payload) and PROSPECT not in str(event.payload)


def test_a_stale_copy_cannot_send_twice(make_quote, django_capture_on_commit_callbacks):
    quote = make_quote()
    stale = Quote.objects.get(pk=quote.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.quote_send(quote=quote) is True
        assert services.quote_send(quote=stale) is False
    assert len(mail.outbox) == 1


def test_an_expired_quote_cannot_be_sent(make_quote, django_capture_on_commit_callbacks):
    quote = make_quote(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ConflictError, match="expired"):
        services.quote_send(quote=quote)
    assert mail.outbox == []
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.DRAFT


# -- transitions ------------------------------------------------------------------------------------------------------

ACCEPT = "accept"
SEND = "send"
REJECT = "reject"
EXPIRE = "expire"


def run(action, quote, organization):
    if action == SEND:
        return services.quote_send(quote=quote)
    if action == REJECT:
        return services.quote_reject(quote=quote, reason="Too dear")
    if action == EXPIRE:
        return services.quote_expire(quote=quote)
    return services.quote_mark_accepted(quote=quote, organization=organization)


# (status before, action) -> status after, or ConflictError. "same" = a no-op returning False.
@pytest.mark.parametrize(
    ("before", "action", "after"),
    [
        (QuoteStatus.DRAFT, SEND, QuoteStatus.SENT),
        (QuoteStatus.DRAFT, ACCEPT, QuoteStatus.ACCEPTED),
        (QuoteStatus.DRAFT, REJECT, QuoteStatus.REJECTED),
        (QuoteStatus.DRAFT, EXPIRE, QuoteStatus.EXPIRED),
        (QuoteStatus.SENT, SEND, "same"),
        (QuoteStatus.SENT, ACCEPT, QuoteStatus.ACCEPTED),
        (QuoteStatus.SENT, REJECT, QuoteStatus.REJECTED),
        (QuoteStatus.SENT, EXPIRE, QuoteStatus.EXPIRED),
        (QuoteStatus.ACCEPTED, SEND, ConflictError),
        (QuoteStatus.ACCEPTED, REJECT, ConflictError),
        (QuoteStatus.ACCEPTED, EXPIRE, ConflictError),
        (QuoteStatus.REJECTED, SEND, ConflictError),
        (QuoteStatus.REJECTED, ACCEPT, ConflictError),
        (QuoteStatus.REJECTED, REJECT, "same"),
        (QuoteStatus.REJECTED, EXPIRE, ConflictError),
        (QuoteStatus.EXPIRED, SEND, ConflictError),
        (QuoteStatus.EXPIRED, ACCEPT, ConflictError),
        (QuoteStatus.EXPIRED, REJECT, ConflictError),
        (QuoteStatus.EXPIRED, EXPIRE, "same"),
    ],
)
def test_transitions(make_quote, acme, before, action, after):
    quote = make_quote(status=before)
    if after is ConflictError:
        with pytest.raises(ConflictError):
            run(action, quote, acme)
        quote.refresh_from_db()
        assert quote.status == before
    elif after == "same":
        assert run(action, quote, acme) is False
        assert quote.status == before
    else:
        assert run(action, quote, acme) is True
        assert quote.status == after
        assert Quote.objects.get(pk=quote.pk).status == after


def test_accepting_links_the_organization_and_is_idempotent(make_quote, acme):
    quote = make_quote(status=QuoteStatus.SENT)
    assert services.quote_mark_accepted(quote=quote, organization=acme) is True
    assert services.quote_mark_accepted(quote=quote, organization=acme) is False
    quote.refresh_from_db()
    assert quote.organization == acme
    assert quote.accepted_at is not None
    assert Event.objects.filter(type="quote.accepted", organization=acme).count() == 1


def test_a_quote_accepted_by_one_organization_cannot_be_accepted_by_another(make_quote, acme, globex):
    quote = make_quote()
    services.quote_mark_accepted(quote=quote, organization=acme)
    with pytest.raises(ConflictError, match="already been accepted"):
        services.quote_mark_accepted(quote=quote, organization=globex)
    quote.refresh_from_db()
    assert quote.organization == acme


def test_payment_taken_just_past_expiry_is_still_accepted(make_quote, acme):
    quote = make_quote(status=QuoteStatus.SENT, expires_at=timezone.now() - timedelta(minutes=1))
    assert services.quote_mark_accepted(quote=quote, organization=acme) is True


def test_open_quote_past_expiry_cannot_be_rejected(make_quote):
    quote = make_quote(status=QuoteStatus.SENT, expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(ConflictError, match="expired"):
        services.quote_reject(quote=quote)


def test_rejection_keeps_the_reason(make_quote):
    quote = make_quote(status=QuoteStatus.SENT)
    services.quote_reject(quote=quote, reason="Went with another provider")
    assert quote.rejection_reason == "Went with another provider"
    assert quote.rejected_at is not None


# -- expiry (beat) ----------------------------------------------------------------------------------------------------


def test_quotes_expire_after_thirty_days(make_quote, acme):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        draft, sent, accepted, rejected = (make_quote() for _ in range(4))
        services.quote_send(quote=sent)
        services.quote_mark_accepted(quote=accepted, organization=acme)
        services.quote_reject(quote=rejected)
    with time_machine.travel(start + timedelta(days=29, hours=23), tick=False):
        assert services.quotes_expire() == 0
    with time_machine.travel(start + timedelta(days=30, seconds=1), tick=False):
        assert expire_quotes.delay().get() == 2
        assert services.quotes_expire() == 0  # a second run finds nothing
    statuses = {q.pk: q.status for q in Quote.objects.all()}
    assert statuses == {
        draft.pk: QuoteStatus.EXPIRED,
        sent.pk: QuoteStatus.EXPIRED,
        accepted.pk: QuoteStatus.ACCEPTED,
        rejected.pk: QuoteStatus.REJECTED,
    }
    assert Quote.objects.get(pk=draft.pk).expired_at == start + timedelta(days=30, seconds=1)
    assert Event.objects.filter(type="quote.expired").count() == 2


def test_expiry_works_in_batches(make_quote, monkeypatch):
    monkeypatch.setattr(services, "EXPIRY_BATCH", 2)
    for _ in range(5):
        make_quote(expires_at=timezone.now() - timedelta(days=1))
    assert services.quotes_expire() == 5
    assert Quote.objects.filter(status=QuoteStatus.EXPIRED).count() == 5


# -- custom quotes (staff) --------------------------------------------------------------------------------------------

LINES = [
    {"code": "base", "description": "Managed service, 400 seats", "quantity": 1, "unit_price": Decimal("14500.00")},
    {"description": "Onsite engineer days", "quantity": 4, "unit_price": "1250.00"},
]


def test_custom_quote_is_the_sum_of_its_lines(price_book, staff, qualify):
    qualification = qualify(email="cio@megacorp.test", tier="enterprise", status="QUALIFIED")
    quote = services.quote_create_custom(email="CIO@megacorp.test", tier="enterprise", lines=LINES, created_by=staff)
    assert quote.is_custom
    assert quote.price_monthly == Decimal("19500.00")
    assert quote.created_by == staff
    assert quote.qualification == qualification
    assert quote.status == QuoteStatus.DRAFT
    assert [line.code for line in quote.lines.all()] == ["base", "custom"]


def test_custom_quote_validity_and_currency(price_book, staff):
    quote = services.quote_create_custom(
        email="cio@megacorp.test", tier="enterprise", lines=LINES, created_by=staff, currency="usd",
        valid_for=timedelta(days=60),
    )  # fmt: skip
    assert quote.currency == "USD"
    assert abs(quote.expires_at - (timezone.now() + timedelta(days=60))) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"description": "", "quantity": 1, "unit_price": "1"}]}, "lines"),
        ({"currency": "dollars"}, "currency"),
        ({"email": "nobody"}, "email"),
        ({"tier": "gold"}, "tier"),
        ({"valid_for": timedelta(days=400)}, "valid_for"),
    ],
)
def test_custom_quote_bad_input(price_book, staff, kwargs, field):
    arguments = {"email": "cio@megacorp.test", "tier": "enterprise", "lines": LINES, "created_by": staff, **kwargs}
    with pytest.raises(ServiceValidationError) as caught:
        services.quote_create_custom(**arguments)
    assert field in caught.value.message_dict
    assert Quote.objects.count() == 0


def test_only_staff_write_custom_quotes(price_book, alice):
    with pytest.raises(ServiceValidationError) as caught:
        services.quote_create_custom(email="cio@megacorp.test", tier="enterprise", lines=LINES, created_by=alice)
    assert "created_by" in caught.value.message_dict


def test_custom_lines_can_be_rewritten_until_sent(price_book, staff):
    quote = services.quote_create_custom(email="cio@megacorp.test", tier="enterprise", lines=LINES, created_by=staff)
    services.quote_lines_replace(quote=quote, lines=LINES[:1], actor=staff)
    assert quote.price_monthly == Decimal("14500.00")
    assert quote.lines.count() == 1
    services.quote_send(quote=quote, actor=staff)
    with pytest.raises(ConflictError):
        services.quote_lines_replace(quote=quote, lines=LINES, actor=staff)
    assert quote.lines.count() == 1


def test_self_serve_lines_are_not_rewritten(make_quote, staff):
    quote = make_quote()
    with pytest.raises(ConflictError):
        services.quote_lines_replace(quote=quote, lines=LINES, actor=staff)
