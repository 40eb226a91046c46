from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django_otp.admin import OTPAdminSite

from billing.views import stripe_webhook
from msp.health import health

# Staff admin requires a verified one-time-password device.
admin.site.__class__ = OTPAdminSite
admin.site.site_header = "Keel staff"
admin.site.site_title = "Keel staff"
admin.site.index_title = "Operations"

urlpatterns = [
    re_path(r"^health/?$", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/", include("msp.api_urls")),
    re_path(r"^webhooks/stripe/?$", stripe_webhook, name="stripe-webhook"),
    path("sandbox/stripe/", include("billing.urls")),
    path("", include("portal.urls")),
]

if settings.DEBUG:  # pragma: no cover - development only
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
