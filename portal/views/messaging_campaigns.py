"""Messaging's content and sends: templates (with the live segment count of the message as it goes out) and
campaigns (create, launch, pause, resume, cancel, analytics and their CSV export).

A template's preview is the message a contact receives: the body with sample values, the sender named at the start
and the opt-out line at the end, exactly as ``sms.messages.compose`` builds it; its encoding and billed parts come
from ``sms.segments``. The page counts them on load and, with htmx, again as the body is typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings as django_settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal.access import MemberRequest
from portal.messaging_forms import CampaignForm, TemplateForm, split_tags
from portal.views.messaging import (
    PAGE_SIZE,
    SERVICE_ERRORS,
    form_refused,
    messaging_page,
    org_of,
    read_settings,
    refusal_status,
    refuse,
    sender_name,
)
from sms import segments
from sms.messages import compose, placeholders_of
from sms.models import Campaign, CampaignStatus, JobState, SendingNumber, Template
from sms.selectors import campaign_csv, campaign_stats
from sms.services.campaigns import (
    campaign_cancel,
    campaign_create,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    template_create,
    template_update,
)
from tenancy.errors import ServiceValidationError
from tenancy.models import Organization

PREVIEW_MAX = 2000  # characters of a body the live preview reads


# -- the message as it goes out -------------------------------------------------------------------------------------


def sample_values() -> dict[str, str]:
    """What the preview puts in the placeholders: a typical name and a short link of the real length."""
    return {
        "first_name": "Sam",
        "last_name": "Citizen",
        "link": f"https://{django_settings.SMS_SHORT_DOMAIN}/s/AbCdEfGhIj",
    }


@dataclass(frozen=True)
class Preview:
    """A body composed as a contact receives it, with its encoding and billed parts; ``error`` when the body's
    placeholders cannot be filled."""

    text: str
    error: str
    count: segments.Segments | None

    @property
    def is_unicode(self) -> bool:
        return self.count is not None and self.count.encoding == segments.Encoding.UCS2


def preview(body: str, sender: str) -> Preview:
    body = body.strip()
    if not body:
        return Preview("", "", None)
    try:
        placeholders_of(body)
    except ValueError as bad:
        return Preview("", str(bad), None)
    text = compose(body, sample_values(), sender)
    return Preview(text, "", segments.count(text))


def _sender(organization: Organization) -> str:
    return sender_name(organization, read_settings(organization))


# -- templates ------------------------------------------------------------------------------------------------------


def _template_or_404(request: MemberRequest, template_id: Any) -> Template:
    template = Template.objects.for_org(org_of(request)).filter(pk=template_id).first()
    if template is None:
        raise Http404("No such template.")
    return template


@require_safe
@messaging_page
def messaging_templates(request: MemberRequest) -> HttpResponse:
    org = org_of(request)
    sender = _sender(org)
    # Queries: the settings (the sender's name), the count, one page of templates.
    page = Paginator(Template.objects.for_org(org).order_by("name", "id"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(template, preview(template.body, sender)) for template in page.object_list]
    return render(request, "portal/messaging/templates.html", {"page": page, "rows": rows, "sender": sender})


def _template_page(
    request: MemberRequest, form: TemplateForm, template: Template | None, status: int = 200
) -> HttpResponse:
    sender = _sender(org_of(request))
    body = form.data.get("body", "") if form.is_bound else form.initial.get("body", "")
    context = {"form": form, "template": template, "preview": preview(str(body), sender), "sender": sender}
    return render(request, "portal/messaging/template_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@messaging_page
def messaging_template_new(request: MemberRequest) -> HttpResponse:
    if request.method == "GET":
        return _template_page(request, TemplateForm(), None)
    form = TemplateForm(request.POST)
    if not form.is_valid():
        return _template_page(request, form, None, status=400)
    try:
        template = template_create(
            organization=org_of(request), name=form.cleaned_data["name"], body=form.cleaned_data["body"]
        )
    except SERVICE_ERRORS as exc:
        form_refused(form, exc)
        return _template_page(request, form, None, status=refusal_status(exc))
    messages.success(request, f"Template {template.name} was created.")
    return HttpResponseRedirect(reverse("portal:messaging_templates"))


@require_http_methods(["GET", "POST"])
@messaging_page
def messaging_template_edit(request: MemberRequest, template_id: Any) -> HttpResponse:
    template = _template_or_404(request, template_id)
    if request.method == "GET":
        form = TemplateForm(initial={"name": template.name, "body": template.body})
        return _template_page(request, form, template)
    form = TemplateForm(request.POST)
    if not form.is_valid():
        return _template_page(request, form, template, status=400)
    try:
        template_update(template=template, name=form.cleaned_data["name"], body=form.cleaned_data["body"])
    except SERVICE_ERRORS as exc:
        form_refused(form, exc)
        return _template_page(request, form, template, status=refusal_status(exc))
    messages.success(request, f"Template {template.name} was saved.")
    return HttpResponseRedirect(reverse("portal:messaging_templates"))


@require_safe
@messaging_page
def messaging_template_preview(request: MemberRequest) -> HttpResponse:
    """The segment block of the template form for ``?body=``: htmx asks for it as the body is typed."""
    sender = _sender(org_of(request))
    body = request.GET.get("body", "")[:PREVIEW_MAX]
    return render(request, "portal/messaging/_segments.html", {"preview": preview(body, sender), "sender": sender})


# -- campaigns ------------------------------------------------------------------------------------------------------


def campaign_or_404(request: MemberRequest, campaign_id: Any) -> Campaign:
    """The organization's campaign ``campaign_id`` (a UUID), or 404."""
    campaign = Campaign.objects.for_org(org_of(request)).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404("No such campaign.")
    campaign.organization = org_of(request)
    return campaign


def _campaign_url(campaign: Campaign) -> str:
    return reverse("portal:messaging_campaign", args=[campaign.pk])


@require_safe
@messaging_page
def messaging_campaigns(request: MemberRequest) -> HttpResponse:
    org = org_of(request)
    campaigns = Campaign.objects.for_org(org).annotate(job_count=Count("jobs")).order_by("-created_at", "-id")
    # Queries: the count, one page of campaigns with their job counts.
    page = Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/messaging/campaigns.html", {"page": page})


def _campaign_form(request: MemberRequest, data: Any = None) -> CampaignForm:
    org = org_of(request)
    templates = list(Template.objects.for_org(org).order_by("name", "id"))
    numbers = list(SendingNumber.objects.filter(organization=org, active=True).order_by("phone_e164"))
    return CampaignForm(data, templates=templates, numbers=numbers, zone=org.timezone)


def _campaign_form_page(request: MemberRequest, form: CampaignForm, status: int = 200) -> HttpResponse:
    return render(request, "portal/messaging/campaign_form.html", {"form": form}, status=status)


def _on_form_fields(exc: Exception, form: CampaignForm) -> Exception:
    """The service names ``template_ids`` and ``number_ids``; the form's fields are the first slot and ``numbers``."""
    if not isinstance(exc, ServiceValidationError) or not hasattr(exc, "error_dict"):
        return exc
    renamed = {"template_ids": form.slots[0], "number_ids": "numbers"}
    return ServiceValidationError({renamed.get(field, field): errors for field, errors in exc.message_dict.items()})


@require_http_methods(["GET", "POST"])
@messaging_page
def messaging_campaign_new(request: MemberRequest) -> HttpResponse:
    if request.method == "GET":
        return _campaign_form_page(request, _campaign_form(request))
    form = _campaign_form(request, request.POST)
    if not form.is_valid():
        return _campaign_form_page(request, form, status=400)
    data = form.cleaned_data
    try:
        campaign = campaign_create(
            organization=org_of(request),
            name=data["name"],
            template_ids=form.template_ids(),
            number_ids=data["numbers"],
            audience_tags=split_tags(data["audience_tags"]),
            link_url=data["link_url"].strip(),
            start_at=data["start_at"],
            actor=request.user,
        )
    except SERVICE_ERRORS as exc:
        form_refused(form, _on_form_fields(exc, form))
        return _campaign_form_page(request, form, status=refusal_status(exc))
    messages.success(request, f"Campaign {campaign.name} is ready as a draft: launch it when you are.")
    return HttpResponseRedirect(_campaign_url(campaign))


# -- one campaign and its analytics ---------------------------------------------------------------------------------

# What each status allows, in the order the buttons show.
ACTIONS: dict[str, tuple[str, ...]] = {
    CampaignStatus.DRAFT: ("launch", "cancel"),
    CampaignStatus.SCHEDULED: ("pause", "cancel"),
    CampaignStatus.RUNNING: ("pause", "cancel"),
    CampaignStatus.PAUSED: ("resume", "cancel"),
    CampaignStatus.COMPLETED: (),
    CampaignStatus.CANCELED: (),
}
ACTION_LABELS = {"launch": "Launch", "pause": "Pause", "resume": "Resume", "cancel": "Cancel the campaign"}
GATE_LABELS = {
    "kill_switch": "Kill switch on or campaign paused",
    "budget_cap": "Budget cap reached",
    "dnc": "On the do-not-contact list",
    "no_consent": "No consent on record",
    "suppression": "Messaged recently (suppression)",
    "quiet_hours": "Quiet hours",
    "rate_limit": "Rate limit",
    "warmup": "Number warm-up cap",
}


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    percent: Decimal  # of the whole the bars are drawn against: the bar's width

    @property
    def width(self) -> str:
        return f"{self.percent:.1f}"


def bars(items: Sequence[tuple[str, int]], total: int) -> list[Bar]:
    return [Bar(label, count, (Decimal(count) * 100 / total) if total else Decimal("0")) for label, count in items]


def percent(rate: Any) -> str:
    """A share (0 to 1) as a percentage with one decimal; a dash when there is none yet."""
    if rate is None:
        return "-"
    return f"{Decimal(str(rate)) * 100:.1f} %"


def analytics(stats: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = stats.get("counts", {})
    total = sum(counts.values())
    state_bars = bars([(str(label), counts.get(state, 0)) for state, label in JobState.choices], total)
    # Every gate, in the order the pipeline asks them; bars are relative to the gate that held the most.
    gates: dict[str, int] = stats.get("gates", {})
    most = max(gates.values(), default=0)
    gate_bars = bars([(GATE_LABELS.get(gate, gate), count) for gate, count in gates.items()], most)
    return {
        "total": total,
        "state_bars": state_bars,
        "gate_bars": gate_bars,
        "held": most > 0,
        "cost": stats.get("cost"),
        "currency": stats.get("currency", ""),
        "delivery_rate": percent(stats.get("delivery_rate")),
        "ctr_human": percent(stats.get("ctr_human")),
        "ctr_all": percent(stats.get("ctr_all")),
        "opt_outs": stats.get("opt_outs", 0),
        "replies": stats.get("replies", 0),
    }


@require_safe
@messaging_page
def messaging_campaign(request: MemberRequest, campaign_id: Any) -> HttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    templates = [link.template for link in campaign.template_links.select_related("template").order_by("position")]
    numbers = [link.number for link in campaign.number_links.select_related("number").order_by("number__phone_e164")]
    sender = _sender(org_of(request))
    context = {
        "campaign": campaign,
        "templates": [(template, preview(template.body, sender)) for template in templates],
        "numbers": numbers,
        "audience_tags": [tag for tag in campaign.audience_tags.split(",") if tag],
        "actions": [(action, ACTION_LABELS[action]) for action in ACTIONS.get(campaign.status, ())],
        "stats": analytics(campaign_stats(campaign)),
    }
    return render(request, "portal/messaging/campaign.html", context)


@require_POST
@messaging_page
def messaging_campaign_action(request: MemberRequest, campaign_id: Any) -> HttpResponse:
    """Launch, pause, resume or cancel, as the buttons of the campaign page ask."""
    campaign = campaign_or_404(request, campaign_id)
    action = request.POST.get("action", "")
    url = _campaign_url(campaign)
    try:
        if action == "launch":
            created = campaign_launch(campaign=campaign, actor=request.user)
            messages.success(request, f"{campaign.name} is launched: {created} messages queued.")
        elif action == "pause":
            campaign_pause(campaign=campaign, actor=request.user)
            messages.success(request, f"{campaign.name} is paused: nothing more is sent until you resume it.")
        elif action == "resume":
            campaign = campaign_resume(campaign=campaign, actor=request.user)
            messages.success(request, f"{campaign.name} is {campaign.get_status_display().lower()} again.")
        elif action == "cancel":
            campaign_cancel(campaign=campaign, actor=request.user)
            messages.success(request, f"{campaign.name} is canceled: messages not yet sent will not be sent.")
        else:
            messages.error(request, "Launch, pause, resume or cancel the campaign.")
    except SERVICE_ERRORS as exc:
        return refuse(request, exc, url)
    return HttpResponseRedirect(url)


@require_safe
@messaging_page
def messaging_campaign_export(request: MemberRequest, campaign_id: Any) -> StreamingHttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    response = StreamingHttpResponse(campaign_csv(campaign), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}.csv"'
    return response
