"""Settings, Scheduled reports: the organization's reports emailed as CSV on a schedule, listed, created and deleted.

For owners and admins of the organization and its partner's admins (others get 404, like every settings page they
may not use). Recipients are chosen among the organization's people. A report of another organization is 404;
writes go through ``tenancy.services.reports`` and a refusal is shown on the page, never a 500.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from portal import nav
from portal.access import MemberRequest, can_manage, require_manager
from portal.forms import add_service_error, service_error_status
from tenancy.audit import client_ip
from tenancy.errors import ConflictError
from tenancy.models import ReportFrequency, ReportKind, ScheduledReport
from tenancy.services.reports import report_people, report_schedule_create, report_schedule_delete

SERVICE_ERRORS = (ValidationError, ConflictError, PermissionDenied)

nav.register_setting("Scheduled reports", "portal:settings_reports", order=75, visible=can_manage)


class ScheduleForm(forms.Form):
    report = forms.ChoiceField(
        choices=ReportKind.choices,
        help_text="SLA: the tickets opened in the period and their SLA clocks. Billing: the invoices issued. SMS "
        "campaigns: each campaign running in the period, with its results to date.",
    )
    frequency = forms.ChoiceField(
        choices=ReportFrequency.choices,
        help_text="Sent at 07:00: daily for the day before, on Mondays for the week before, on the 1st for the month "
        "before.",
    )
    recipients = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=[])

    def __init__(self, *args: Any, people: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        recipients = self.fields["recipients"]
        if isinstance(recipients, forms.MultipleChoiceField):
            recipients.choices = [(email, email) for email in people]


def _page(request: MemberRequest, form: ScheduleForm, status: int = 200) -> HttpResponse:
    organization = request.organization
    context = {
        # One query: the organization's reports with who created them.
        "schedules": list(
            ScheduledReport.objects.for_org(organization).select_related("created_by").order_by("created_at", "pk")
        ),
        "form": form,
    }
    return render(request, "portal/settings/reports.html", context, status=status)


def _delete(request: MemberRequest) -> HttpResponse:
    try:
        schedule_id = uuid.UUID(str(request.POST.get("schedule", "")))
    except ValueError:
        raise Http404("No such report.") from None
    schedule = (
        ScheduledReport.objects.for_org(request.organization)
        .select_related("organization")
        .filter(pk=schedule_id)
        .first()
    )
    if schedule is None:
        raise Http404("No such report.")
    report_schedule_delete(schedule=schedule, actor=request.user, ip=client_ip(request))
    messages.success(request, f"The {str(schedule).lower()} is deleted: it will not be sent again.")
    return HttpResponseRedirect(reverse("portal:settings_reports"))


@require_http_methods(["GET", "POST"])
def settings_reports(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    organization = request.organization
    people = report_people(organization)
    if request.method == "GET":
        mine = request.user.email.lower()
        return _page(request, ScheduleForm(people=people, initial={"recipients": [mine] if mine in people else []}))
    if request.POST.get("action") == "delete":
        return _delete(request)
    form = ScheduleForm(request.POST, people=people)
    status = 400
    if form.is_valid():
        try:
            schedule = report_schedule_create(
                organization=organization,
                actor=request.user,
                report=form.cleaned_data["report"],
                frequency=form.cleaned_data["frequency"],
                recipients=list(form.cleaned_data["recipients"]),
                ip=client_ip(request),
            )
        except SERVICE_ERRORS as exc:
            if isinstance(exc, PermissionDenied):
                raise Http404("Only owners and admins schedule reports.") from exc
            add_service_error(form, exc)
            status = service_error_status(exc)
        else:
            messages.success(request, f"Scheduled: the {str(schedule).lower()}.")
            return HttpResponseRedirect(reverse("portal:settings_reports"))
    return _page(request, form, status=status)
