"""The public landing page and organization logos."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_safe

from portal.access import ASSET, PUBLIC, access
from tenancy.models import Organization

LOGO_MAX_AGE = 24 * 3600


@access(PUBLIC)
@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "public/landing.html")


def _etag_matches(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    candidates = {candidate.strip().removeprefix("W/") for candidate in header.split(",")}
    return etag in candidates or "*" in candidates


@access(ASSET)
@require_GET
def brand_logo(request: HttpRequest, org_id: uuid.UUID) -> HttpResponse:
    """An organization's logo. Logos are not secret: public and cacheable, revalidated by their version (ETag)."""
    head = (
        Organization.objects.filter(pk=org_id)
        .exclude(brand_logo_version="")
        .values("brand_logo_version", "brand_logo_type")
        .first()
    )
    if head is None or head["brand_logo_type"] not in ("image/png", "image/jpeg"):
        raise Http404("No logo.")
    etag = f'"{head["brand_logo_version"]}"'
    if _etag_matches(request, etag):
        response: HttpResponse = HttpResponseNotModified()
    else:
        content = Organization.objects.filter(pk=org_id).values_list("brand_logo", flat=True).first()
        if not content:
            raise Http404("No logo.")
        response = HttpResponse(bytes(content), content_type=head["brand_logo_type"])
        response["Content-Security-Policy"] = "default-src 'none'"
        response["Content-Disposition"] = "inline"
    response["ETag"] = etag
    patch_cache_control(response, public=True, max_age=LOGO_MAX_AGE)
    return response
