"""Support ticket routes, included under /api/ by msp.api_urls; served with and without a trailing slash."""

from django.urls import re_path

from tickets import api, api_reports

urlpatterns = [
    re_path(r"^tickets/?$", api.ticket_list_view, name="api-ticket-list"),
    re_path(r"^tickets/bulk/?$", api.ticket_bulk_view, name="api-ticket-bulk"),
    re_path(r"^tickets/escalations/?$", api.ticket_escalations_view, name="api-ticket-escalations"),
    re_path(r"^tickets/sla-report/?$", api_reports.ticket_sla_report_view, name="api-ticket-sla-report"),
    re_path(r"^tickets/(?P<pk>[^/]+)/comments/?$", api.ticket_comments_view, name="api-ticket-comments"),
    re_path(r"^tickets/(?P<pk>[^/]+)/time-entries/?$", api.ticket_time_entries_view, name="api-ticket-time-entries"),
    re_path(r"^tickets/(?P<pk>[^/]+)/?$", api.ticket_detail_view, name="api-ticket-detail"),
]
