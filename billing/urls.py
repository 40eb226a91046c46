"""Payment pages outside the portal: the sandbox provider's checkout and billing portal."""

from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("checkout/<str:token>", views.sandbox_checkout, name="sandbox_checkout"),
    path("pay/<str:token>", views.sandbox_invoice_checkout, name="sandbox_invoice_checkout"),
    path("billing-portal/<str:token>", views.sandbox_portal, name="sandbox_portal"),
]
