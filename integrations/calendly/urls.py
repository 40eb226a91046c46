"""Calendly's public route: its webhook, with or without the trailing slash."""

from django.urls import URLPattern, re_path

from integrations.calendly.views import calendly_webhook

urlpatterns: list[URLPattern] = [
    re_path(r"^webhooks/calendly/?$", calendly_webhook, name="calendly-webhook"),
]
