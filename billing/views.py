"""The Stripe webhook endpoint, and the sandbox provider's local checkout and billing-portal pages."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from billing import services
from billing.models import Subscription
from billing.providers import sandbox
from tenancy.models import Organization


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Stripe's deliveries. 400 (and nothing stored) for a bad signature or body; 200 for a new event and for a
    replay alike. Processing happens after the response, in the worker."""
    try:
        event, stored = services.stripe_event_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
    except services.WebhookSignatureError as refused:
        return JsonResponse({"detail": str(refused)}, status=400)
    except ValidationError as bad:
        return JsonResponse(bad.message_dict, status=400)
    return JsonResponse({"received": True, "id": event.event_id, "duplicate": not stored})


def _sandbox_only() -> None:
    # The sandbox signs events with the webhook secret: with the real provider, these pages must not exist.
    if settings.STRIPE_PROVIDER != "sandbox":
        raise Http404("The sandbox payment provider is not in use.")


@never_cache
@require_http_methods(["GET", "POST"])
def sandbox_checkout(request: HttpRequest, token: str) -> HttpResponse:
    """The sandbox's stand-in for Stripe Checkout. Paying posts the events Stripe would send, signed, through the
    webhook's receive function, then returns to the success URL as Stripe does."""
    _sandbox_only()
    try:
        session = sandbox.checkout_session_read(token)
    except signing.BadSignature:
        raise Http404("This checkout link is invalid or has expired.") from None
    if request.method == "POST":
        for event in sandbox.checkout_completion_events(session):
            body, signature = sandbox.signed(event)
            services.stripe_event_receive(payload=body, signature=signature)
        return HttpResponseRedirect(session["success_url"])
    total = sum(line["unit_amount"] * line["quantity"] for line in session["lines"]) / 100
    lines = [{**line, "amount": line["unit_amount"] * line["quantity"] / 100} for line in session["lines"]]
    context = {"session": session, "lines": lines, "total": total}
    return render(request, "billing/sandbox_checkout.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def sandbox_invoice_checkout(request: HttpRequest, token: str) -> HttpResponse:
    """The sandbox's stand-in for Stripe Checkout in payment mode (an invoice). The card number decides the outcome,
    as Stripe's test cards do (4000 0000 0000 0002 is declined); the events go through the webhook's receive
    function, then the page returns to the invoice."""
    _sandbox_only()
    try:
        session = sandbox.invoice_checkout_read(token)
    except signing.BadSignature:
        raise Http404("This payment link is invalid or has expired.") from None
    declined = None
    if request.method == "POST":
        card = str(request.POST.get("card", ""))
        events = sandbox.invoice_checkout_events(session, card=card)
        for event in events:
            body, signature = sandbox.signed(event)
            services.stripe_event_receive(payload=body, signature=signature)
        if events[-1]["type"] == "checkout.session.completed":
            return HttpResponseRedirect(session["success_url"])
        declined = "Your card was declined. Try another card."
    context = {"session": session, "amount": session["amount"] / 100, "declined": declined}
    return render(request, "billing/sandbox_invoice_checkout.html", context, status=402 if declined else 200)


@never_cache
@require_http_methods(["GET"])
def sandbox_portal(request: HttpRequest, token: str) -> HttpResponse:
    """The sandbox's stand-in for Stripe's billing portal: what Stripe holds for the customer, and the way back."""
    _sandbox_only()
    try:
        data = signing.loads(token, salt=sandbox.PORTAL_SALT, max_age=3600)
    except signing.BadSignature:
        raise Http404("This billing portal link is invalid or has expired.") from None
    return_url = data["return_url"]
    if not url_has_allowed_host_and_scheme(return_url, allowed_hosts={request.get_host()}):
        return_url = "/"
    organization = Organization.objects.filter(stripe_customer_id=data["customer"]).first()
    if organization is None:
        raise Http404("No customer has this billing account.")
    subscriptions = Subscription.objects.for_org(organization).prefetch_related("items")
    context = {"customer": data["customer"], "subscriptions": subscriptions, "return_url": return_url}
    return render(request, "billing/sandbox_portal.html", context)
