"""Partner webhook routes of the API, included under /api/ by msp.api_urls; served with and without a trailing slash."""

from django.urls import URLPattern, URLResolver, re_path

from events import api

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^webhooks/?$", api.endpoint_list_view, name="api-webhook-list"),
    re_path(r"^webhooks/event-types/?$", api.event_types_view, name="api-webhook-event-types"),
    re_path(r"^webhooks/(?P<pk>[^/]+)/?$", api.endpoint_detail_view, name="api-webhook-detail"),
    re_path(r"^webhooks/(?P<pk>[^/]+)/rotate-secret/?$", api.rotate_secret_view, name="api-webhook-rotate-secret"),
    re_path(r"^webhooks/(?P<pk>[^/]+)/test/?$", api.test_view, name="api-webhook-test"),
    re_path(r"^webhooks/(?P<pk>[^/]+)/deliveries/?$", api.delivery_list_view, name="api-webhook-deliveries"),
    re_path(
        r"^webhooks/(?P<pk>[^/]+)/deliveries/(?P<delivery>[^/]+)/redeliver/?$",
        api.redeliver_view,
        name="api-webhook-redeliver",
    ),
]
