"""Staff screens: the price book, the quote list and its actions, and custom quotes written by staff."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail

from quotes import services
from quotes.models import AddOn, Quote, QuoteStatus
from tests.quotes.conftest import PROSPECT

pytestmark = pytest.mark.django_db


@pytest.fixture
def quote(price_book, prospect):
    return services.quote_create(email=PROSPECT, tier="core_plus", configuration={"users": 3, "devices": 3})


@pytest.mark.parametrize(
    "path",
    [
        "/admin/quotes/plan/",
        "/admin/quotes/plan/add/",
        "/admin/quotes/addon/",
        "/admin/quotes/addon/add/",
        "/admin/quotes/quote/",
        "/admin/quotes/quote/?status__exact=DRAFT&tier__exact=core_plus",
        f"/admin/quotes/quote/?q={PROSPECT}",
        "/admin/quotes/quote/custom/",
    ],
)
def test_admin_screens_render(staff_client, quote, path):
    assert staff_client.get(path).status_code == 200


def test_quote_page_is_read_only_and_shows_the_public_link(staff_client, quote):
    response = staff_client.get(f"/admin/quotes/quote/{quote.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"/quote/{quote.quote_key}" in page
    assert 'name="_save"' not in page


def test_search_by_key_prefix(staff_client, quote):
    response = staff_client.get(f"/admin/quotes/quote/?q={quote.quote_key[:8]}")
    assert response.context["cl"].result_count == 1


def test_add_goes_to_the_custom_quote_page(staff_client):
    response = staff_client.get("/admin/quotes/quote/add/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/quotes/quote/custom/"


def test_add_on_admin_saves_allowed_tiers(staff_client, price_book):
    response = staff_client.post(
        "/admin/quotes/addon/add/",
        {
            "code": "m365_backup",
            "name": "Microsoft 365 backup",
            "kind": "backup_tb",
            "unit_price": "4.50",
            "unit_label": "user",
            "sms_credits": "0",
            "allowed_tiers": ["premium", "enterprise"],
            "currency": "AUD",
            "max_quantity": "500",
            "active": "on",
            "sort_order": "9",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert AddOn.objects.get(code="m365_backup").allowed_tiers == ["premium", "enterprise"]


def test_an_sms_pack_needs_credits(staff_client, price_book):
    response = staff_client.post(
        "/admin/quotes/addon/add/",
        {"code": "sms_pack_5", "name": "SMS", "kind": "sms_pack", "unit_price": "1", "sms_credits": "0",
         "currency": "AUD", "max_quantity": "5", "sort_order": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert not AddOn.objects.filter(code="sms_pack_5").exists()


def test_send_action_calls_the_service_and_emails_once(staff_client, quote, django_capture_on_commit_callbacks):
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                "/admin/quotes/quote/", {"action": "send_quotes", "_selected_action": [str(quote.pk)]}
            )
        assert response.status_code == 302
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.SENT
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(("action", "status"), [("expire_quotes", "EXPIRED"), ("reject_quotes", "REJECTED")])
def test_expire_and_reject_actions(staff_client, quote, action, status):
    staff_client.post("/admin/quotes/quote/", {"action": action, "_selected_action": [str(quote.pk)]})
    quote.refresh_from_db()
    assert quote.status == status


def test_action_on_a_closed_quote_warns_instead_of_failing(staff_client, quote):
    services.quote_reject(quote=quote)
    response = staff_client.post(
        "/admin/quotes/quote/", {"action": "send_quotes", "_selected_action": [str(quote.pk)]}, follow=True
    )
    assert response.status_code == 200
    assert any("cannot be sent" in str(m) for m in response.context["messages"])


def lines_post(*lines, **fields):
    data = {
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "1",
        "lines-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for n, line in enumerate(lines):
        data.update({f"lines-{n}-{key}": value for key, value in line.items()})
    return data


def test_staff_write_an_enterprise_quote(staff_client, price_book, staff, django_capture_on_commit_callbacks):
    page = staff_client.get("/admin/quotes/quote/custom/").content.decode()
    assert "2999.00" in page  # the first line starts from the Enterprise plan's price
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/quotes/quote/custom/",
            lines_post(
                {"code": "base", "description": "Managed service, 400 seats", "quantity": "1",
                 "unit_price": "14500.00"},
                {"code": "", "description": "Onsite engineer days", "quantity": "4", "unit_price": "1250.005"},
                {"code": "", "description": "", "quantity": "1", "unit_price": ""},  # a blank row, as sent
                email="cio@megacorp.test", tier="enterprise", currency="AUD", valid_days="45", send_now="on",
            ),
        )  # fmt: skip
    assert response.status_code == 302
    quote = Quote.objects.get()
    assert response["Location"] == f"/admin/quotes/quote/{quote.pk}/change/"
    assert quote.is_custom and quote.tier == "enterprise" and quote.created_by == staff
    assert quote.price_monthly == Decimal("19500.02")  # 14500 + 4 x 1250.005 = 5000.02
    assert quote.status == QuoteStatus.SENT
    assert mail.outbox[0].to == ["cio@megacorp.test"]


def test_custom_quote_errors_are_shown_and_nothing_is_stored(staff_client, price_book):
    response = staff_client.post(
        "/admin/quotes/quote/custom/",
        lines_post(
            {"description": "Managed service", "quantity": "0", "unit_price": "10"},
            email="nobody", tier="enterprise", currency="AUD", valid_days="30",
        ),
    )  # fmt: skip
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert response.context["formset"].errors[0]["quantity"]
    assert Quote.objects.count() == 0


def test_lines_of_an_unsent_custom_quote_can_be_edited(staff_client, price_book, staff):
    quote = services.quote_create_custom(
        email="cio@megacorp.test", tier="enterprise", created_by=staff,
        lines=[{"description": "Managed service", "quantity": 1, "unit_price": "9000"}],
    )  # fmt: skip
    page = staff_client.get(f"/admin/quotes/quote/{quote.pk}/change/").content.decode()
    assert f"/admin/quotes/quote/{quote.pk}/lines/" in page
    assert staff_client.get(f"/admin/quotes/quote/{quote.pk}/lines/").status_code == 200
    response = staff_client.post(
        f"/admin/quotes/quote/{quote.pk}/lines/",
        lines_post(
            {"description": "Managed service", "quantity": "1", "unit_price": "9500"},
            {"description": "Security awareness training", "quantity": "400", "unit_price": "2.50"},
        ),
    )
    assert response.status_code == 302
    quote.refresh_from_db()
    assert quote.price_monthly == Decimal("10500.00")
    services.quote_send(quote=quote, actor=staff)
    response = staff_client.post(
        f"/admin/quotes/quote/{quote.pk}/lines/",
        lines_post({"description": "Managed service", "quantity": "1", "unit_price": "1"}),
        follow=True,
    )
    assert any("cannot be changed" in str(m) for m in response.context["messages"])
    quote.refresh_from_db()
    assert quote.price_monthly == Decimal("10500.00")
