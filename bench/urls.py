"""Keel's URLs plus a bare view: the floor an HTTP benchmark is compared with on the same server."""

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, include, path

from msp.urls import handler400  # noqa: F401 - the root URLconf names the error handlers


def bare(request: HttpRequest) -> JsonResponse:
    """The least a Django JSON view can do: the full middleware stack, no database, no cache, no template."""
    return JsonResponse({"ok": True})


urlpatterns: list[URLPattern | URLResolver] = [
    path("bench/bare", bare, name="bench-bare"),
    path("", include("msp.urls")),
]
