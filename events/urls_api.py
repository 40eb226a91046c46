"""Partner webhook routes of the API, included under /api/ by msp.api_urls."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
