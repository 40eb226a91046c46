"""Billing API: start a checkout for a quote (public), read an organization's subscription, open Stripe's
billing portal (partners and the portal's own calls)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import services
from billing.models import Subscription, SubscriptionItem
from billing.selectors import current_subscription, sms_credit_balance
from quotes.api import PublicView
from quotes.selectors import QUOTE_KEY
from tenancy.api_base import TenantAPIView


class ProviderUnavailable(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The payment provider could not be reached; try again shortly."
    default_code = "provider_unavailable"


class CheckoutRequestSerializer(serializers.Serializer[Any]):
    quote_key = serializers.CharField(max_length=64)


CHECKOUT_URL = inline_serializer("CheckoutStarted", {"checkout_url": serializers.CharField()})


def checkout_urls(request: Any, quote_key: str) -> tuple[str, str]:
    """Where the provider sends the customer back to: after paying, and after giving up."""
    success = request.build_absolute_uri(reverse("portal:checkout_complete")) + "?session_id={CHECKOUT_SESSION_ID}"
    cancel = request.build_absolute_uri(reverse("portal:quote", args=[quote_key]))
    return success, cancel


class CheckoutView(PublicView):
    """Start paying for a quote: a Stripe Checkout session (subscription mode) for its lines, the email
    prefilled. Unknown quote: 404. A quote that has expired, or was accepted or rejected: 409."""

    @extend_schema(
        request=CheckoutRequestSerializer,
        responses={
            200: CHECKOUT_URL,
            404: OpenApiResponse(description="No quote has this key."),
            409: OpenApiResponse(description="The quote is expired, accepted or rejected."),
        },
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"detail": ["Send a JSON object."]})
        incoming = CheckoutRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        quote_key = incoming.validated_data["quote_key"]
        if not QUOTE_KEY.fullmatch(quote_key):  # no quote has it, and the return addresses could not be built from it
            raise exceptions.NotFound("No quote has this key.")
        success_url, cancel_url = checkout_urls(request, quote_key)
        try:
            url = services.checkout_start(quote_key=quote_key, success_url=success_url, cancel_url=cancel_url)
        except services.QuoteNotFoundError:
            raise exceptions.NotFound("No quote has this key.") from None
        except services.PaymentProviderError as failure:
            raise ProviderUnavailable(failure.message) from None
        return Response({"checkout_url": request.build_absolute_uri(url)})


class SubscriptionItemSerializer(serializers.Serializer[SubscriptionItem]):
    code = serializers.CharField()
    kind = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_amount = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)


class SubscriptionSerializer(serializers.Serializer[Subscription]):
    id = serializers.UUIDField()
    status = serializers.CharField()
    tier = serializers.CharField()
    plan = serializers.CharField(source="plan_name")
    price_monthly = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()
    next_billing_date = serializers.DateTimeField(source="current_period_end", allow_null=True)
    trial_end = serializers.DateTimeField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    canceled_at = serializers.DateTimeField(allow_null=True)
    items = SubscriptionItemSerializer(many=True)


STATUS_RESPONSE = inline_serializer(
    "BillingStatus",
    {
        "organization": serializers.CharField(),
        "subscription": SubscriptionSerializer(allow_null=True),
        "sms_credits": serializers.IntegerField(),
    },
)


class BillingStatusView(TenantAPIView):
    """The organization's subscription (null when it has none) and SMS credit balance. A partner key names the
    organization with ``X-Organization``. Owners, admins, partner admins and API keys; other members get 403."""

    @extend_schema(responses={200: STATUS_RESPONSE})
    def get(self, request: Request) -> Response:
        organization = self.tenant.require_organization()
        if not self.tenant.can_manage:
            raise exceptions.PermissionDenied("Only owners and admins see billing.")
        subscription = current_subscription(organization)
        return Response(
            {
                "organization": organization.slug,
                "subscription": SubscriptionSerializer(subscription).data if subscription else None,
                "sms_credits": sms_credit_balance(organization),
            }
        )


class BillingPortalRequestSerializer(serializers.Serializer[Any]):
    return_url = serializers.URLField(required=False, help_text="Where Stripe's portal links back to.")


class BillingPortalView(TenantAPIView):
    """A one-off link to Stripe's billing portal (payment methods, invoices) for the organization. Owners, admins,
    partner admins and keys with the write scope. 409 when the organization has no Stripe customer."""

    @extend_schema(
        request=BillingPortalRequestSerializer,
        responses={
            200: inline_serializer("BillingPortal", {"url": serializers.CharField()}),
            409: OpenApiResponse(
                description="The organization has no billing account (it was not set up through checkout)."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        organization = self.tenant.require_organization()
        if not self.tenant.can_manage:
            raise exceptions.PermissionDenied("Only owners and admins manage billing.")
        incoming = BillingPortalRequestSerializer(data=request.data if isinstance(request.data, dict) else {})
        incoming.is_valid(raise_exception=True)
        return_url = incoming.validated_data.get("return_url") or request.build_absolute_uri(reverse("portal:billing"))
        try:
            url = services.billing_portal_url(organization=organization, return_url=return_url)
        except services.PaymentProviderError as failure:
            raise ProviderUnavailable(failure.message) from None
        return Response({"url": request.build_absolute_uri(url)})


checkout_view = CheckoutView.as_view()
billing_status_view = BillingStatusView.as_view()
billing_portal_view = BillingPortalView.as_view()
