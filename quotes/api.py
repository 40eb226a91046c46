"""Public quote API: create a self-serve quote, read one by its key. Throttled per IP; no personal data out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qualification.models import QualificationTier
from quotes.models import Quote, QuoteLine
from quotes.pricing import CENT
from quotes.selectors import QUOTE_KEY, quote_by_key
from quotes.services import QuoteNotAllowedError, quote_create
from tenancy.api_auth import PublicRateThrottle
from tenancy.parsers import JSONParser


def unit_price_text(value: Decimal) -> str:
    """Two decimals, or more when the price book uses them (a per-device price of 2.4750 reads 2.475)."""
    if value == value.quantize(CENT):
        return str(value.quantize(CENT))
    return str(value.normalize())


class QuoteLineSerializer(serializers.Serializer[QuoteLine]):
    code = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.SerializerMethodField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    def get_unit_price(self, line: QuoteLine) -> str:
        return unit_price_text(line.unit_price)


class QuoteSerializer(serializers.Serializer[Quote]):
    """A quote as the prospect sees it. Deliberately without the email, the organization or staff names."""

    quote_key = serializers.CharField()
    tier = serializers.CharField()
    configuration = serializers.JSONField()
    lines = QuoteLineSerializer(many=True)
    price_monthly = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()
    status = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField()
    url = serializers.CharField()

    def get_status(self, quote: Quote) -> str:
        return quote.effective_status(self.context.get("now"))


class QuoteCreateSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=254)
    tier = serializers.ChoiceField(choices=QualificationTier.values)
    configuration = serializers.DictField(
        help_text='{"users": int, "devices": int, "add_ons": [{"code": str, "quantity": int}] or [code, …]}'
    )


class PublicView(APIView):
    authentication_classes: list[type] = []
    parser_classes = [JSONParser]
    permission_classes = [AllowAny]
    throttle_classes = [PublicRateThrottle]


NOT_ALLOWED = inline_serializer(
    "QuoteRefused", {"detail": serializers.CharField(), "next_step": serializers.CharField()}
)


class QuoteCreateView(PublicView):
    """Quote a plan from the price book. Only prospects whose qualification for the tier is approved may
    self-serve; others get a 403 with the reason and their next step. Enterprise quotes are written by staff."""

    @extend_schema(
        request=QuoteCreateSerializer,
        responses={
            201: QuoteSerializer,
            400: OpenApiResponse(description="Bad input, by field (e.g. configuration.users)."),
            403: NOT_ALLOWED,
        },
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"detail": ["Send a JSON object."]})
        incoming = QuoteCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            quote = quote_create(email=data["email"], tier=data["tier"], configuration=data["configuration"])
        except QuoteNotAllowedError as refused:
            return Response(
                {"detail": refused.message, "next_step": refused.next_step}, status=status.HTTP_403_FORBIDDEN
            )
        return Response(QuoteSerializer(quote).data, status=status.HTTP_201_CREATED)


class QuoteDetailView(PublicView):
    """A quote, by its full key. Any other key is a 404: keys are not listed, searched or guessed."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "quote_key", {"type": "string", "pattern": f"^{QUOTE_KEY.pattern}$"}, OpenApiParameter.PATH
            )
        ],
        responses={200: QuoteSerializer, 404: OpenApiResponse(description="No quote has this key.")},
    )
    def get(self, request: Request, quote_key: str) -> Response:
        quote = quote_by_key(quote_key)
        if quote is None:
            raise exceptions.NotFound()
        return Response(QuoteSerializer(quote, context={"now": timezone.now()}).data)


quote_create_view = QuoteCreateView.as_view()
quote_detail_view = QuoteDetailView.as_view()
