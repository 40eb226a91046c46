"""Messaging routes, included under /api/ by msp.api_urls; served with and without a trailing slash."""

from django.urls import re_path

from sms import api, api_campaigns, api_inbound

urlpatterns = [
    re_path(r"^sms/contacts/?$", api.contact_list_view, name="api-sms-contact-list"),
    re_path(r"^sms/contacts/import/?$", api.contact_import_view, name="api-sms-contact-import"),
    re_path(r"^sms/contacts/(?P<pk>[^/]+)/?$", api.contact_detail_view, name="api-sms-contact-detail"),
    re_path(r"^sms/dnc/?$", api.dnc_list_view, name="api-sms-dnc-list"),
    re_path(r"^sms/dnc/(?P<pk>[^/]+)/?$", api.dnc_detail_view, name="api-sms-dnc-detail"),
    re_path(r"^sms/templates/?$", api_campaigns.template_list_view, name="api-sms-template-list"),
    re_path(r"^sms/templates/(?P<pk>[^/]+)/?$", api_campaigns.template_detail_view, name="api-sms-template-detail"),
    re_path(r"^sms/numbers/?$", api_campaigns.number_list_view, name="api-sms-number-list"),
    re_path(r"^sms/numbers/(?P<pk>[^/]+)/?$", api_campaigns.number_detail_view, name="api-sms-number-detail"),
    re_path(r"^sms/campaigns/?$", api_campaigns.campaign_list_view, name="api-sms-campaign-list"),
    re_path(
        r"^sms/campaigns/(?P<pk>[^/]+)/launch/?$", api_campaigns.campaign_launch_view, name="api-sms-campaign-launch"
    ),
    re_path(r"^sms/campaigns/(?P<pk>[^/]+)/pause/?$", api_campaigns.campaign_pause_view, name="api-sms-campaign-pause"),
    re_path(
        r"^sms/campaigns/(?P<pk>[^/]+)/resume/?$", api_campaigns.campaign_resume_view, name="api-sms-campaign-resume"
    ),
    re_path(
        r"^sms/campaigns/(?P<pk>[^/]+)/cancel/?$", api_campaigns.campaign_cancel_view, name="api-sms-campaign-cancel"
    ),
    re_path(r"^sms/campaigns/(?P<pk>[^/]+)/stats/?$", api_campaigns.campaign_stats_view, name="api-sms-campaign-stats"),
    re_path(r"^sms/campaigns/(?P<pk>[^/]+)/?$", api_campaigns.campaign_detail_view, name="api-sms-campaign-detail"),
    re_path(r"^sms/messages/?$", api_campaigns.message_list_view, name="api-sms-message-list"),
    re_path(r"^sms/messages/(?P<pk>[^/]+)/?$", api_campaigns.message_detail_view, name="api-sms-message-detail"),
    re_path(r"^sms/kill-switch/?$", api_campaigns.kill_switch_view, name="api-sms-kill-switch"),
    re_path(r"^sms/inbound/?$", api_inbound.inbound_list_view, name="api-sms-inbound-list"),
    re_path(r"^sms/inbound/(?P<pk>[^/]+)/?$", api_inbound.inbound_detail_view, name="api-sms-inbound-detail"),
]
