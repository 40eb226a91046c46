"""Public quote routes, included under /api/ by msp.api_urls; served with and without a trailing slash."""

from django.urls import re_path

from quotes import api

urlpatterns = [
    re_path(r"^quotes/?$", api.quote_create_view, name="api-quote-create"),
    re_path(r"^quotes/(?P<quote_key>[^/]+)/?$", api.quote_detail_view, name="api-quote-detail"),
]
