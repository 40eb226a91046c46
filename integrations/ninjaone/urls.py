"""NinjaOne's public route, included at the site root by ``integrations.urls``."""

from django.urls import URLPattern, re_path

from integrations.ninjaone.webhooks import ninjaone_webhook

urlpatterns: list[URLPattern] = [
    re_path(r"^webhooks/ninjaone/?$", ninjaone_webhook, name="ninjaone-webhook"),
]
