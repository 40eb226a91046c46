"""Notification routes of the partner API, included under /api/ by msp.api_urls."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
