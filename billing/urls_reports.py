"""Revenue report routes (the forecast and the ageing of receivables), included under /api/ by msp.api_urls; served
with and without a trailing slash."""

from django.urls import re_path

from billing import api_reports

urlpatterns = [
    re_path(r"^billing/forecast/?$", api_reports.forecast_view, name="api-billing-forecast"),
    re_path(r"^billing/ageing/?$", api_reports.ageing_view, name="api-billing-ageing"),
]
