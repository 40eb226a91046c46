"""Messaging routes, included under /api/ by msp.api_urls; served with and without a trailing slash."""

from django.urls import re_path

from sms import api

urlpatterns = [
    re_path(r"^sms/contacts/?$", api.contact_list_view, name="api-sms-contact-list"),
    re_path(r"^sms/contacts/import/?$", api.contact_import_view, name="api-sms-contact-import"),
    re_path(r"^sms/contacts/(?P<pk>[^/]+)/?$", api.contact_detail_view, name="api-sms-contact-detail"),
    re_path(r"^sms/dnc/?$", api.dnc_list_view, name="api-sms-dnc-list"),
    re_path(r"^sms/dnc/(?P<pk>[^/]+)/?$", api.dnc_detail_view, name="api-sms-dnc-detail"),
]
