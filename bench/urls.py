"""Keel's URLs plus a bare view: the floor an HTTP benchmark is compared with on the same server."""

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path


def bare(request: HttpRequest) -> HttpResponse:
    """The least a Django view can do: the full middleware stack, no database, no cache, no template."""
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns: list[URLPattern | URLResolver] = [
    path("bench/bare", bare, name="bench-bare"),
    path("", include("msp.urls")),
]
