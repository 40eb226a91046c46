"""The answer to a request Django refuses before any view sees it (``handler400``): a body past
``DATA_UPLOAD_MAX_MEMORY_SIZE`` is ``413 Content Too Large``; too many fields or files, a forbidden host and other
malformed requests are ``400``. Each says why, as ``{"detail": ...}`` on the API and the webhooks and as a short page
elsewhere, instead of Django's bare "Bad Request (400)".
"""

from __future__ import annotations

from html import escape

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from msp.middleware import JSON_PREFIXES

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2933}}</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p>{message}</p>
</main>
</body>
</html>
"""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def refusal(exception: BaseException | None) -> tuple[int, str, str]:
    """Status, title and message for a request Django refused with ``exception``."""
    if isinstance(exception, RequestDataTooBig):
        limit = _megabytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        return 413, "Request too large", f"The request body is larger than the {limit} this server accepts."
    if isinstance(exception, TooManyFieldsSent):
        most = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return 400, "Bad request", f"The request has more than the {most} form fields this server accepts."
    if isinstance(exception, TooManyFilesSent):
        most = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return 400, "Bad request", f"The request has more than the {most} files this server accepts."
    if isinstance(exception, DisallowedHost):
        return 400, "Bad request", "This server does not answer for the host the request names."
    return 400, "Bad request", "The request is malformed and was not processed."


def bad_request(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    status, title, message = refusal(exception)
    response: HttpResponse
    if request.path.startswith(JSON_PREFIXES):
        response = JsonResponse({"detail": message}, status=status)
    else:
        page = PAGE.format(title=escape(title), message=escape(message))
        response = HttpResponse(page, status=status, content_type="text/html; charset=utf-8")
    add_never_cache_headers(response)
    return response
