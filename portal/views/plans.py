"""Plans, the plan selector, and quotes for approved prospects (public pages)."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from integrations.calendly.selectors import booking_url, scheduled_meeting
from portal.access import PUBLIC, access
from portal.forms import add_service_error
from qualification.models import NextStep, Qualification, QualificationStatus, QualificationTier
from qualification.scoring import recommend_tier
from quotes.selectors import price_book, quote_by_key
from quotes.services import QuoteNotAllowedError, quote_create
from tenancy.errors import ServiceValidationError

QUESTIONNAIRE_URLS: dict[str, str] = {
    QualificationTier.CORE_PLUS: "portal:questionnaire_core_plus",
    QualificationTier.PREMIUM: "portal:questionnaire_premium",
    QualificationTier.ENTERPRISE: "portal:enterprise_discovery",
}


@access(PUBLIC)
@require_safe
def business_plans(request: HttpRequest) -> HttpResponse:
    book = price_book()
    plans = [plan for plan in book.plans if plan.active]
    add_ons = [
        {"add_on": add_on, "tiers": [plan.tier in add_on.allowed_tiers for plan in plans]}
        for add_on in book.add_ons
        if add_on.active
    ]
    rows = [{"plan": plan, "questionnaire": QUESTIONNAIRE_URLS[plan.tier]} for plan in plans]
    return render(request, "public/business_plans.html", {"rows": rows, "add_ons": add_ons})


class PlanSelectorForm(forms.Form):
    people = forms.IntegerField(label="How many people work in your business?", min_value=1, max_value=100_000)
    regulated = forms.BooleanField(label="We must meet a compliance standard (HIPAA, PCI, ISO 27001, …)",
                                   required=False)  # fmt: skip
    around_the_clock = forms.BooleanField(label="We need support 24 hours a day, 7 days a week", required=False)


@access(PUBLIC)
@require_safe
def plan_selector(request: HttpRequest) -> HttpResponse:
    form = PlanSelectorForm(request.GET or None)
    recommendation = None
    if form.is_valid():
        tier = recommend_tier(**form.cleaned_data)
        recommendation = {"tier": QualificationTier(tier), "questionnaire": QUESTIONNAIRE_URLS[tier]}
    status = 400 if request.GET and not form.is_valid() else 200
    return render(request, "public/plan_selector.html", {"form": form, "recommendation": recommendation},
                  status=status)  # fmt: skip


class QuoteRequestForm(forms.Form):
    users = forms.IntegerField(label="People who need support", min_value=0, max_value=10_000, initial=5)
    devices = forms.IntegerField(label="Computers, servers and phones", min_value=0, max_value=10_000, initial=5)

    def __init__(self, *args: Any, tier: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_on_fields = []
        for add_on in price_book().add_ons:
            if add_on.active and tier in add_on.allowed_tiers:
                name = f"add_on_{add_on.code}"
                self.fields[name] = forms.IntegerField(
                    label=f"{add_on.name} ({add_on.unit_label or 'unit'})", min_value=0,
                    max_value=add_on.max_quantity, required=False, initial=0,
                )  # fmt: skip
                self.add_on_fields.append((name, add_on.code))

    def configuration(self) -> dict[str, Any]:
        data = self.cleaned_data
        add_ons = [{"code": code, "quantity": data[name]} for name, code in self.add_on_fields if data.get(name)]
        return {"users": data["users"], "devices": data["devices"], "add_ons": add_ons}


NEXT_STEPS = {
    "get_quote": "You are approved. Next: get your quote and start straight away.",
    "book_discovery_call": "Next: a short discovery call with our team. Pick a time that suits you.",
    "attend_discovery_call": "Your discovery call with our team is booked. We look forward to talking with you.",
    "await_review": "Our team is reviewing your answers; this page updates by itself.",
    "await_quote": "You are approved. Our team is preparing your tailored quote.",
    "contact_sales": "We may not be the right fit yet. Write to us and we will suggest the best next step.",
}


def _qualification(qualification_id: uuid.UUID) -> Qualification:
    qualification = Qualification.objects.filter(pk=qualification_id).first()
    if qualification is None:
        raise Http404("No such qualification.")
    return qualification


BOOK_LATER = "Next: a short discovery call with our team — we will contact you to book a time."


def _discovery_call(qualification: Qualification, next_step: str) -> dict[str, Any]:
    """The booked call's time once it is scheduled; the booking link (or our promise to call) while it is to book."""
    if qualification.status == QualificationStatus.DISCOVERY_CALL_SCHEDULED:
        return {"meeting": scheduled_meeting(qualification)}
    if next_step == NextStep.BOOK_DISCOVERY_CALL:
        url = booking_url(qualification)
        return {"booking_url": url} if url else {"next_step_text": BOOK_LATER}
    return {}


def _render_status(
    request: HttpRequest,
    qualification: Qualification,
    *,
    quote_form: QuoteRequestForm | None,
    quote_error: str = "",
    status: int = 200,
) -> HttpResponse:
    next_step = qualification.next_step
    context = {"q": qualification, "next_step_text": NEXT_STEPS[next_step], "quote_form": quote_form,
               "quote_error": quote_error, **_discovery_call(qualification, next_step)}  # fmt: skip
    template = "public/_qualification_status.html" if request.htmx else "public/qualification_status.html"  # type: ignore[attr-defined]
    return render(request, template, context, status=status)


@access(PUBLIC)
@require_safe
def qualification_status(request: HttpRequest, qualification_id: uuid.UUID) -> HttpResponse:
    """No personal data: the id is the only key, and the page shows tier, score, status and the next step, with a
    quote form once the prospect is approved for a self-serve plan, the Calendly booking link while a discovery call
    is to book, and the call's time once it is booked."""
    qualification = _qualification(qualification_id)
    approved = qualification.next_step == NextStep.GET_QUOTE
    return _render_status(
        request, qualification, quote_form=QuoteRequestForm(tier=qualification.tier) if approved else None
    )


@access(PUBLIC)
@require_POST
def qualification_quote(request: HttpRequest, qualification_id: uuid.UUID) -> HttpResponse:
    """The approved prospect asks for a quote; the qualification id (random, only they know it) is their key."""
    qualification = _qualification(qualification_id)
    form = QuoteRequestForm(request.POST, tier=qualification.tier)
    error = ""
    if form.is_valid():
        try:
            quote = quote_create(email=qualification.customer_email, tier=qualification.tier,
                                 configuration=form.configuration())  # fmt: skip
        except QuoteNotAllowedError as exc:
            error = str(exc)
        except ServiceValidationError as exc:
            add_service_error(form, exc)
        else:
            return HttpResponseRedirect(reverse("portal:quote", args=[quote.quote_key]))
    return _render_status(request, qualification, quote_form=form, quote_error=error,
                          status=400 if error or form.errors else 200)  # fmt: skip


@access(PUBLIC)
@require_safe
def quote_page(request: HttpRequest, quote_key: str) -> HttpResponse:
    """A quote by its key (>= 128 random bits): lines, total, status and expiry; no personal data."""
    quote = quote_by_key(quote_key)
    if quote is None:
        raise Http404("No such quote.")
    return render(request, "public/quote.html", {"quote": quote, "status": quote.effective_status()})
