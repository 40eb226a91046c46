"""Notification routes of the partner API, included under /api/ by msp.api_urls; served with and without a trailing
slash."""

from django.urls import URLPattern, URLResolver, re_path

from notifications import api

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^notifications/?$", api.notification_list_view, name="api-notification-list"),
    re_path(r"^notifications/read-all/?$", api.notification_read_all_view, name="api-notification-read-all"),
    re_path(r"^notifications/(?P<pk>[^/]+)/read/?$", api.notification_read_view, name="api-notification-read"),
]
