"""The partner API under /api/. Paths are served with and without a trailing slash."""

from django.urls import include, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from billing import api as billing_api
from tenancy.api import MeView, OrganizationViewSet

org_list = OrganizationViewSet.as_view({"get": "list"})
org_detail = OrganizationViewSet.as_view({"get": "retrieve"})
org_current = OrganizationViewSet.as_view({"get": "current"})
org_branding = OrganizationViewSet.as_view({"get": "branding", "put": "branding", "patch": "branding"})

# The busiest lists and the questionnaires first: URLs resolve in this order, and each route tried costs.
urlpatterns = [
    re_path(r"", include("tickets.urls_api")),
    re_path(r"", include("billing.urls_api")),
    re_path(r"", include("qualification.urls_api")),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="api-schema"),
    re_path(r"^docs/?$", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^auth/me/?$", MeView.as_view(), name="api-me"),
    re_path(r"^organizations/?$", org_list, name="api-organization-list"),
    re_path(r"^organizations/current/?$", org_current, name="api-organization-current"),
    re_path(r"^organizations/(?P<pk>[^/]+)/branding/?$", org_branding, name="api-organization-branding"),
    re_path(r"^organizations/(?P<pk>[^/]+)/?$", org_detail, name="api-organization-detail"),
    re_path(r"", include("quotes.urls_api")),
    re_path(r"", include("sms.urls_api")),
    re_path(r"", include("events.urls_api")),
    re_path(r"", include("notifications.urls_api")),
    re_path(r"", include("tenancy.api_usage")),
    re_path(r"^checkout/?$", billing_api.checkout_view, name="api-checkout"),
    re_path(r"", include("billing.urls_reports")),
    re_path(r"^billing/status/?$", billing_api.billing_status_view, name="api-billing-status"),
    re_path(r"^billing/portal/?$", billing_api.billing_portal_view, name="api-billing-portal"),
]
