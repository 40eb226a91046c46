from django.urls import re_path

from qualification import api

urlpatterns = [
    re_path(r"^qualify/core-plus/?$", api.core_plus_submit, name="api-qualify-core-plus"),
    re_path(r"^qualify/premium/?$", api.premium_submit, name="api-qualify-premium"),
    re_path(r"^qualify/enterprise/?$", api.enterprise_submit, name="api-qualify-enterprise"),
    re_path(r"^qualify/status/(?P<pk>[^/]+)/?$", api.status_view, name="api-qualify-status"),
]
