"""Keel's URLs under a prefix: a second URL configuration for tests of URL reversal."""

from django.urls import include, path

urlpatterns = [path("other/", include("msp.urls"))]
