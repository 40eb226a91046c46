"""The integrations' routes: provider webhooks under /webhooks/, staff connections under /admin/integrations/."""

from django.urls import include, path

urlpatterns = [
    path("", include("integrations.ninjaone.urls")),
    path("", include("integrations.calendly.urls")),
    path("", include("integrations.quickbooks.urls")),
]
