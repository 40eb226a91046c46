"""Paying for a quote, arriving after checkout, and the organization's Billing page (plan, status, next billing
date, add-ons, Stripe's billing portal, plan changes and cancellation; the contracts Keel invoices, the latest
invoices with what is outstanding, and the saved card: see ``portal.views.invoices``)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from billing import services
from billing.api import checkout_urls
from billing.models import Subscription, SubscriptionStatus
from billing.selectors import billing_contacts, checkout_provisioned, current_subscription, sms_credit_balance
from portal import nav
from portal.access import PUBLIC, MemberRequest, access, can_manage, require_manager
from portal.forms import InvoiceEmailsForm, add_service_error, service_error_messages
from portal.views.invoices import contract_rows, invoice_summary, saved_card
from quotes.models import Plan
from quotes.selectors import quote_by_key
from tenancy.audit import client_ip
from tenancy.errors import ConflictError
from tenancy.services import invoice_emails_update

SERVICE_ERRORS = (ValidationError, ConflictError, services.PaymentProviderError)
SIGN_IN_BACKEND = "django.contrib.auth.backends.ModelBackend"

nav.register("Billing", "portal:billing", order=20, visible=can_manage)


@access(PUBLIC)
@require_POST
def quote_checkout(request: HttpRequest, quote_key: str) -> HttpResponse:
    """Accept and pay: start the provider's checkout for the quote and go there."""
    quote = quote_by_key(quote_key)
    if quote is None:
        raise Http404("No such quote.")
    success_url, cancel_url = checkout_urls(request, quote_key)
    try:
        url = services.checkout_start(quote_key=quote_key, success_url=success_url, cancel_url=cancel_url)
    except (ConflictError, services.PaymentProviderError) as refused:
        status = 409 if isinstance(refused, ConflictError) else 502
        context = {"quote": quote, "status": quote.effective_status(), "error": refused.message}
        return render(request, "public/quote.html", context, status=status)
    return HttpResponseRedirect(url)


@access(PUBLIC)
@require_safe
def checkout_complete(request: HttpRequest) -> HttpResponse:
    """Where checkout returns. Until the payment's webhook is processed, a page that refreshes itself; then the
    new owner is signed in (once, see ``checkout_sign_in_claim``) and taken to the portal. Anyone else is asked
    to sign in."""
    session_id = request.GET.get("session_id", "")[:200]
    if "\x00" in session_id:  # no provider's id holds a NUL, and PostgreSQL cannot compare text that does
        session_id = ""
    user = services.checkout_sign_in_claim(session_id=session_id)
    if user is not None:
        login(request, user, backend=SIGN_IN_BACKEND)
        messages.success(request, "Welcome aboard. Your subscription is active and your portal is ready.")
        return HttpResponseRedirect(reverse("portal:dashboard"))
    ready = checkout_provisioned(session_id)
    response = render(request, "public/checkout_complete.html", {"ready": ready, "session_id": session_id})
    add_never_cache_headers(response)
    return response


class PlanChangeForm(forms.Form):
    tier = forms.ChoiceField(label="New plan")

    def __init__(self, *args: object, subscription: Subscription, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        plans = Plan.objects.filter(active=True, custom_quote=False, currency=subscription.currency).exclude(
            tier=subscription.tier.lower()
        )
        choices = [(plan.tier, f"{plan.name} (from {plan.currency} {plan.base_monthly} a month)") for plan in plans]
        self.fields["tier"].choices = choices  # type: ignore[attr-defined]


def _subscription_or_404(request: MemberRequest) -> Subscription:
    subscription = current_subscription(request.organization)
    if subscription is None:
        raise Http404("This organization has no subscription.")
    return subscription


@require_safe
def billing(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    organization = request.organization
    subscription = current_subscription(organization)
    # Queries: the subscription, its items, the SMS credit balance and the plans on offer; then the contracts and
    # their lines, the latest and the open invoices and their credit notes, and the billing settings (saved card).
    context = {
        "subscription": subscription,
        "items": list(subscription.items.all()) if subscription else [],
        "sms_credits": sms_credit_balance(organization),
        "plan_form": PlanChangeForm(subscription=subscription) if subscription and subscription.configuration else None,
        "live": subscription is not None and subscription.status != SubscriptionStatus.CANCELED,
        "contracts": contract_rows(organization),
        "invoices": invoice_summary(organization),
        "card": saved_card(organization),
        "invoice_recipients": billing_contacts(organization),
    }
    return render(request, "portal/billing.html", context)


@require_http_methods(["GET", "POST"])
def billing_recipients(request: MemberRequest) -> HttpResponse:
    """Where invoices, payment reminders and contract notices are emailed: addresses of the organization's choosing
    (its accounts department), or, when it names none, its owners and admins."""
    require_manager(request)
    organization = request.organization
    if request.method != "POST":
        form = InvoiceEmailsForm(initial={"invoice_emails": "\n".join(organization.invoice_emails)})
        return render(request, "portal/billing/recipients.html", {"form": form})
    form = InvoiceEmailsForm(request.POST)
    if form.is_valid():
        try:
            invoice_emails_update(organization=organization, emails=form.cleaned_data["invoice_emails"],
                                  actor=request.user, ip=client_ip(request))  # fmt: skip
        except SERVICE_ERRORS as refused:
            add_service_error(form, refused)
        else:
            recipients = ", ".join(billing_contacts(organization))
            return _done(request, f"Invoices will be emailed to {recipients}.")
    return render(request, "portal/billing/recipients.html", {"form": form}, status=400)


def _done(request: MemberRequest, message: str) -> HttpResponseRedirect:
    messages.success(request, message)
    return HttpResponseRedirect(reverse("portal:billing"))


def _refused(request: MemberRequest, refused: Exception) -> HttpResponseRedirect:
    for message in (
        [refused.message] if isinstance(refused, services.PaymentProviderError) else service_error_messages(refused)
    ):
        messages.error(request, message)
    return HttpResponseRedirect(reverse("portal:billing"))


@require_POST
def billing_portal(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    try:
        url = services.billing_portal_url(
            organization=request.organization, return_url=request.build_absolute_uri(reverse("portal:billing"))
        )
    except SERVICE_ERRORS as refused:
        return _refused(request, refused)
    return HttpResponseRedirect(url)


@require_POST
def billing_change_plan(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    subscription = _subscription_or_404(request)
    form = PlanChangeForm(request.POST, subscription=subscription)
    # A plan sold by sales has no self-serve choices: let the service say so rather than the form.
    if subscription.configuration and not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"New plan: {error}")
        return HttpResponseRedirect(reverse("portal:billing"))
    try:
        changed = services.subscription_change_plan(
            subscription=subscription,
            tier=form.cleaned_data["tier"] if subscription.configuration else request.POST.get("tier", ""),
            actor=request.user,
            ip=client_ip(request),
        )
    except SERVICE_ERRORS as refused:
        return _refused(request, refused)
    return _done(request, f"Your plan is now {changed.plan_name}. The difference is prorated on your next invoice.")


@require_POST
def billing_cancel(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    subscription = _subscription_or_404(request)
    when = request.POST.get("when")
    if when not in {"period_end", "now"}:
        messages.error(request, "Choose when to cancel: at the end of the billing period, or now.")
        return HttpResponseRedirect(reverse("portal:billing"))
    try:
        services.subscription_cancel(
            subscription=subscription, at_period_end=when == "period_end", actor=request.user, ip=client_ip(request)
        )
    except SERVICE_ERRORS as refused:
        return _refused(request, refused)
    if when == "now":
        return _done(request, "Your subscription has been canceled.")
    return _done(request, "Your subscription will end at the close of the current billing period.")


@require_POST
def billing_resume(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    subscription = _subscription_or_404(request)
    try:
        services.subscription_resume(subscription=subscription, actor=request.user, ip=client_ip(request))
    except SERVICE_ERRORS as refused:
        return _refused(request, refused)
    return _done(request, "The cancellation is withdrawn; your subscription continues.")
