"""Staff routes of QuickBooks Online, mounted at /admin/integrations/quickbooks/ (before the admin's catch-all)."""

from django.urls import path

from integrations.quickbooks.staff_views import callback_page, connect_page, disconnect_page

urlpatterns = [
    path("connect/", connect_page, name="staff-quickbooks-connect"),
    path("callback/", callback_page, name="staff-quickbooks-callback"),
    path("disconnect/", disconnect_page, name="staff-quickbooks-disconnect"),
]
