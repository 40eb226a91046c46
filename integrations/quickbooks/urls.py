"""QuickBooks Online has no public routes: Keel pulls what changed in QuickBooks on a schedule instead of taking its
webhooks, and staff connect it under /admin/integrations/quickbooks/ (``urls_staff``)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
