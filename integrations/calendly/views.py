"""Calendly's webhook. Thin: the service verifies, stores and applies; this answers."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.calendly import services, signing
from tenancy.errors import ServiceValidationError


@csrf_exempt
@require_POST
def calendly_webhook(request: HttpRequest) -> JsonResponse:
    """``invitee.created`` / ``invitee.canceled``. 401 (nothing stored) for a missing, wrong or stale signature; 400
    naming the field for a body that is not an invitee event; otherwise 200, the same for a new delivery, a repeat and
    an invitee we know nothing of, so the answer tells nothing about our prospects."""
    try:
        receipt = services.calendly_webhook_receive(body=request.body, signature=request.headers.get(signing.HEADER))
    except services.WebhookSignatureError as refused:
        return JsonResponse({"detail": str(refused)}, status=401)
    except ServiceValidationError as bad:
        return JsonResponse(bad.message_dict, status=400)
    return JsonResponse({"received": True, "duplicate": receipt.duplicate})
