"""Twilio's webhooks: message status callbacks and incoming messages. Thin: check the signature, hand the form to a
service, answer.

Twilio signs the URL it called. Behind a proxy that is the public address (``SITE_URL``), not the one this server
sees, so a signature is accepted for either: ``SITE_URL`` with the request's path and query string, or the request's
own absolute URL (a server reached directly). A missing or wrong signature is 403 and nothing changes. A form that
repeats a parameter name is never one of Twilio's messaging callbacks, and is refused the same way.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sms.services.callbacks import status_apply
from sms.services.inbound import inbound_receive
from sms.signatures import signature_valid
from tenancy.errors import ServiceValidationError

logger = logging.getLogger(__name__)

TWIML_TYPE = "text/xml; charset=utf-8"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _form(request: HttpRequest) -> dict[str, str] | None:
    """The form's parameters, one value per name, or None when a name repeats. Twilio posts a URL-encoded form,
    which is read here as Django reads ``request.POST`` (the same limits on size and number of fields, the same
    decoding) but straight into a dict; any other body goes through ``request.POST``."""
    if request.content_type != "application/x-www-form-urlencoded":
        params: dict[str, str] = {}
        for name, values in request.POST.lists():
            if len(values) > 1:
                return None
            params[name] = values[0]
        return params
    encoding = request.encoding or settings.DEFAULT_CHARSET
    body = request.body  # past DATA_UPLOAD_MAX_MEMORY_SIZE: RequestDataTooBig, a 413 (msp.errors)
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError:
        text = body.decode("iso-8859-1")  # as Django does for a misbehaving client
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, encoding=encoding, max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        )
    except ValueError as exc:
        raise TooManyFieldsSent("The number of POST parameters exceeded DATA_UPLOAD_MAX_NUMBER_FIELDS.") from exc
    params = dict(pairs)
    return params if len(params) == len(pairs) else None


def signed_params(request: HttpRequest) -> dict[str, str] | None:
    """The request's form parameters when Twilio signed them, else None."""
    params = _form(request)
    if params is None:
        return None
    signature = request.headers.get("X-Twilio-Signature")
    token = settings.TWILIO_AUTH_TOKEN
    public = settings.SITE_URL.rstrip("/") + request.get_full_path()
    if signature_valid(public, params, signature, token):
        return params
    direct = request.build_absolute_uri()  # only when needed: most callbacks come through the public address
    if direct != public and signature_valid(direct, params, signature, token):
        return params
    logger.warning("twilio webhook %s: bad or missing signature", request.path)
    return None


def _unstorable(params: dict[str, str]) -> JsonResponse | None:
    """A 400 naming the parameters that hold a NUL: Twilio never sends one, and PostgreSQL can neither store nor
    compare text that does."""
    bad = sorted(name for name, value in params.items() if "\x00" in name + value)
    if not bad:
        return None
    return JsonResponse({name.replace("\x00", "") or "parameter": ["Contains a NUL character."] for name in bad},
                        status=400)  # fmt: skip


def _forbidden() -> HttpResponse:
    return HttpResponse("Invalid Twilio signature.", status=403, content_type="text/plain; charset=utf-8")


def twiml(message: str | None) -> HttpResponse:
    """A TwiML answer: the message to send back, or none."""
    body = f"<Response><Message>{escape(message)}</Message></Response>" if message else "<Response/>"
    return HttpResponse(XML_DECLARATION + body, content_type=TWIML_TYPE)


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    """A message's status changed. 200 with an empty body once handled, for a repeat and an unknown message too
    (Twilio must not retry those); 400 naming the parameter Twilio sent that cannot be used."""
    params = signed_params(request)
    if params is None:
        return _forbidden()
    if refused := _unstorable(params):
        return refused
    try:
        status_apply(params)
    except ServiceValidationError as bad:
        return JsonResponse(bad.message_dict, status=400)
    return HttpResponse(b"", content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """A message to one of the sending numbers; the answer is TwiML with the reply to send back, if any."""
    params = signed_params(request)
    if params is None:
        return _forbidden()
    if refused := _unstorable(params):
        return refused
    try:
        reply = inbound_receive(
            sid=params.get("MessageSid") or params.get("SmsSid", ""),
            from_=params.get("From", ""),
            to=params.get("To", ""),
            body=params.get("Body", ""),
        )
    except ServiceValidationError as bad:
        return JsonResponse(bad.message_dict, status=400)
    return twiml(reply)
