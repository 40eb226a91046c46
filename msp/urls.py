from django.contrib import admin
from django.urls import include, path, re_path
from django_otp.admin import OTPAdminSite

from billing.staff_views import revenue_page
from billing.views import stripe_webhook
from msp.health import health
from tickets.inbound import SendGridInboundView  # importing it also connects the inbound-mail receiver
from tickets.staff_views import sla_report_page

# A request Django refuses before any view (too large, too many fields, a forbidden host) is answered with the reason.
handler400 = "msp.errors.bad_request"

# Staff admin requires a verified one-time-password device.
admin.site.__class__ = OTPAdminSite
admin.site.site_header = "Keel staff"
admin.site.site_title = "Keel staff"
admin.site.index_title = "Operations"

# anymail's webhooks, under its URL names, limited to the one Keel uses: the rest of anymail.urls would expose two
# dozen providers' endpoints, most of which answer 500 without their own configuration.
anymail_urls = ([path("sendgrid/inbound/", SendGridInboundView.as_view(), name="sendgrid_inbound_webhook")], "anymail")

# The busiest routes come first (Twilio's callbacks, short links, the API): URLs resolve in this order.
urlpatterns = [
    re_path(r"^health/?$", health, name="health"),
    path("", include("sms.urls")),
    path("api/", include("msp.api_urls")),
    path("admin/tickets/sla-report/", sla_report_page, name="staff-sla-report"),  # before the admin's catch-all
    path("admin/billing/revenue/", revenue_page, name="staff-billing-revenue"),
    path("admin/integrations/", include("integrations.urls_staff")),  # before the admin's catch-all
    path("admin/", admin.site.urls),
    re_path(r"^webhooks/stripe/?$", stripe_webhook, name="stripe-webhook"),
    path("sandbox/stripe/", include("billing.urls")),
    path("anymail/", include(anymail_urls)),
    path("", include("integrations.urls")),
    path("", include("portal.urls")),
]
