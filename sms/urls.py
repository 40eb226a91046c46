"""Messaging's public routes (provider webhooks and short links), included at the site root by msp.urls."""

from django.urls import URLPattern, URLResolver, re_path

from sms import links, webhooks

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^webhooks/twilio/status/?$", webhooks.twilio_status, name="sms-twilio-status"),
    re_path(r"^webhooks/twilio/inbound/?$", webhooks.twilio_inbound, name="sms-twilio-inbound"),
    re_path(r"^s/(?P<token>[^/]+)/?$", links.short_link, name="sms-short-link"),
]
