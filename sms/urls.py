"""Messaging's public routes (provider webhooks and short links), included at the site root by msp.urls."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
