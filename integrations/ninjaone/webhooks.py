"""NinjaOne's webhook: ``POST /webhooks/ninjaone/`` (also without the trailing slash).

NinjaOne does not sign its webhook deliveries; it sends the custom HTTP headers its webhook configuration lists.
Configure one that carries ``NINJAONE_WEBHOOK_SECRET``, either of:

    Authorization: Bearer <NINJAONE_WEBHOOK_SECRET>
    X-Keel-Webhook-Secret: <NINJAONE_WEBHOOK_SECRET>

The secret is compared in constant time. Answers:

- 401: no secret header; 403: a wrong secret; 503: this server has no NINJAONE_WEBHOOK_SECRET. Nothing is stored.
- 400 (or 413 for a body over the limit) naming the field, for a body that is not a NinjaOne activity; nothing stored.
- 202: received and deliberately ignored (not a condition activity, a NinjaOne organization no Keel organization is
  linked to, an out-of-order or unhandled status), so NinjaOne does not retry it.
- 200: applied (a ticket opened, joined, noted or resolved), or a repeat of a delivery already applied.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.ninjaone.services.alerts import MAX_BODY_BYTES, activity_receive
from tenancy.errors import ServiceValidationError

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Keel-Webhook-Secret"  # noqa: S105 - the header's name, not a secret


def presented_secret(request: HttpRequest) -> str | None:
    """The secret the request carries, from ``X-Keel-Webhook-Secret`` or ``Authorization: Bearer``."""
    header = request.headers.get(SECRET_HEADER)
    if header:
        return header.strip()
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


@csrf_exempt
@require_POST
def ninjaone_webhook(request: HttpRequest) -> JsonResponse:
    expected = settings.NINJAONE_WEBHOOK_SECRET
    if not expected:
        logger.error("ninjaone webhook refused: NINJAONE_WEBHOOK_SECRET is not set")
        return JsonResponse({"detail": "NinjaOne webhooks are not configured on this server."}, status=503)
    secret = presented_secret(request)
    if secret is None:
        response = JsonResponse({"detail": f"The {SECRET_HEADER} header (or a bearer token) is required."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="ninjaone-webhook"'
        return response
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        logger.warning("ninjaone webhook refused: wrong secret from %s", request.META.get("REMOTE_ADDR", "?"))
        return JsonResponse({"detail": "The webhook secret is wrong."}, status=403)
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return JsonResponse({"body": [f"Larger than {MAX_BODY_BYTES // 1024} KB."]}, status=413)
    try:
        receipt = activity_receive(body=request.body)
    except ServiceValidationError as bad:
        return JsonResponse(bad.message_dict, status=400)
    answer = {
        "received": True,
        "id": receipt.activity_id,
        "outcome": receipt.outcome,
        "detail": receipt.detail,
        "duplicate": receipt.duplicate,
    }
    if receipt.ticket:
        answer["ticket"] = receipt.ticket
    return JsonResponse(answer, status=202 if receipt.ignored else 200)
