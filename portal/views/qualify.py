"""Public questionnaires and the qualification status page. Answers go straight to the same service the public API
uses, so both accept exactly the same input; its errors are shown beside the fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from portal.access import PUBLIC, access
from portal.forms import add_service_error, service_error_status
from qualification import scoring
from qualification.models import QualificationTier
from qualification.services import qualification_submit
from tenancy.errors import ConflictError, ServiceValidationError


def _choices(values: Any, labels: dict[str, str] | None = None) -> list[tuple[str, str]]:
    return [(value, (labels or {}).get(value, value.replace("_", " ").capitalize())) for value in values]


def _radio(label: str, values: Any, labels: dict[str, str] | None = None) -> forms.Field:
    return forms.Field(label=label, required=False, widget=forms.RadioSelect(choices=_choices(values, labels)))


def _checkboxes(label: str, values: Any, labels: dict[str, str] | None = None) -> forms.Field:
    return forms.Field(label=label, required=False,
                       widget=forms.CheckboxSelectMultiple(choices=_choices(values, labels)))  # fmt: skip


def _text(label: str, *, widget: forms.Widget | None = None, help_text: str = "") -> forms.Field:
    return forms.CharField(label=label, required=False, widget=widget, help_text=help_text, strip=False)


LEVELS = [(str(n), str(n)) for n in range(1, 6)]
TIMELINE_LABELS = {"immediately": "Straight away", "within_3_months": "Within 3 months",
                   "within_6_months": "Within 6 months", "just_exploring": "Just exploring"}  # fmt: skip


class ContactForm(forms.Form):
    customer_email = _text("Work email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    name = _text("Your name", widget=forms.TextInput(attrs={"autocomplete": "name"}))
    phone = _text("Phone", widget=forms.TextInput(attrs={"autocomplete": "tel"}))
    company_name = _text("Company", widget=forms.TextInput(attrs={"autocomplete": "organization"}))


class CorePlusForm(ContactForm):
    business_type = _radio("What kind of business are you?", scoring.BUSINESS_TYPE_POINTS,
                           {"small_business": "Small business (5 to 50 people)", "medium": "Medium (50+ people)",
                            "soho": "Home or one-person office"})  # fmt: skip
    current_it_support = _checkboxes("Who looks after your IT today?", scoring.IT_SUPPORT_POINTS,
                                     {"another_msp": "Another IT provider", "part_time": "Someone part-time",
                                      "none": "Nobody"})  # fmt: skip
    tech_comfort_level = forms.CharField(label="How comfortable is your team with technology? (1 = not at all)",
                                         required=False, widget=forms.RadioSelect(choices=LEVELS))  # fmt: skip
    pain_point = _radio("What hurts most?", scoring.PAIN_POINT_POINTS)
    pain_point_detail = _text("Tell us more (needed for 'Other')", widget=forms.Textarea(attrs={"rows": 3}))
    timeline = _radio("When do you want to start?", scoring.TIMELINES, TIMELINE_LABELS)

    list_fields = ("current_it_support",)


class PremiumForm(ContactForm):
    website = _text("Website")
    ein = _text("EIN", help_text="As NN-NNNNNNN.")
    industry = _text("Industry")
    employee_count = _text("Employees", widget=forms.NumberInput(attrs={"min": 1}))
    locations = _text("Locations", widget=forms.NumberInput(attrs={"min": 1}))
    years_in_business = _text("Years in business", widget=forms.NumberInput(attrs={"min": 0}))
    it_infrastructure = _checkboxes("What IT do you run?", scoring.IT_INFRASTRUCTURE)
    security_posture = forms.CharField(label="How mature is your security? (1 = basic, 5 = audited)",
                                       required=False, widget=forms.RadioSelect(choices=LEVELS))  # fmt: skip
    compliance_needs = _checkboxes("Compliance you must meet (if any)", scoring.COMPLIANCE_NEEDS)
    budget_range = _radio("Monthly IT budget (AUD)", scoring.BUDGET_POINTS,
                          {"under_1000": "Under 1,000", "1000_2499": "1,000 to 2,499", "2500_4999": "2,500 to 4,999",
                           "5000_plus": "5,000 or more"})  # fmt: skip
    decision_maker = forms.BooleanField(label="I make the decision on IT services", required=False)
    timeline = _radio("When do you want to start?", scoring.TIMELINES, TIMELINE_LABELS)

    list_fields = ("it_infrastructure", "compliance_needs")


class EnterpriseForm(ContactForm):
    current_it_setup = _text("Your IT today", widget=forms.Textarea(attrs={"rows": 4}))
    project_scope = _text("What you need from us", widget=forms.Textarea(attrs={"rows": 4}))
    timeline = _text("Timeline")
    budget_notes = _text("Budget notes", widget=forms.Textarea(attrs={"rows": 2}))

    list_fields: tuple[str, ...] = ()


QUESTIONNAIRES: dict[str, tuple[type[ContactForm], str, str]] = {
    QualificationTier.CORE_PLUS: (CorePlusForm, "Core+ questionnaire", "Five questions, two minutes."),
    QualificationTier.PREMIUM: (PremiumForm, "Premium questionnaire", "Twelve questions about your business."),
    QualificationTier.ENTERPRISE: (EnterpriseForm, "Enterprise discovery",
                                   "Tell us about your organization; our team will be in touch."),
}  # fmt: skip


def _answers(form: ContactForm, post: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in form.fields:
        if name in getattr(form, "list_fields", ()):
            data[name] = post.getlist(name)
        elif isinstance(form.fields[name], forms.BooleanField):
            data[name] = name in post
        else:
            data[name] = post.get(name, "")
    return data


def questionnaire(request: HttpRequest, tier: str) -> HttpResponse:
    form_class, title, intro = QUESTIONNAIRES[tier]
    form = form_class(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        form.is_valid()  # every field is optional here: the service holds the rules
        try:
            qualification = qualification_submit(tier=tier, data=_answers(form, request.POST))
        except (ServiceValidationError, ConflictError) as exc:
            add_service_error(form, exc)
            status = service_error_status(exc)
        else:
            return HttpResponseRedirect(reverse("portal:qualification_status", args=[qualification.pk]))
    return render(request, "public/questionnaire.html", {"form": form, "title": title, "intro": intro}, status=status)


@access(PUBLIC)
@require_http_methods(["GET", "POST"])
def questionnaire_core_plus(request: HttpRequest) -> HttpResponse:
    return questionnaire(request, QualificationTier.CORE_PLUS)


@access(PUBLIC)
@require_http_methods(["GET", "POST"])
def questionnaire_premium(request: HttpRequest) -> HttpResponse:
    return questionnaire(request, QualificationTier.PREMIUM)


@access(PUBLIC)
@require_http_methods(["GET", "POST"])
def enterprise_discovery(request: HttpRequest) -> HttpResponse:
    return questionnaire(request, QualificationTier.ENTERPRISE)
