"""Staff pages of the integrations, under /admin/integrations/ (OTP-verified staff only, like the admin)."""

from django.urls import include, path

urlpatterns = [
    path("quickbooks/", include("integrations.quickbooks.urls_staff")),
]
