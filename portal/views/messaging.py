"""The customer's Messaging area: the overview (budget, kill switch, campaigns at a glance), the organization's
messaging settings and its sending numbers. Contacts, the import and the do-not-contact list live in
``messaging_contacts``; templates and campaigns in ``messaging_campaigns``.

Messaging is for the organization's owners, admins and managers, and its partner's admins: contacts are personal
data and campaigns spend money, so plain members get 403 and do not see the menu entry. Every object is looked up
within the current organization, so another organization's contact, template or campaign is 404. Writes go through
the sms services; a refusal (bad input, a conflict, a missing permission) is shown on the page, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import wraps
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal import nav
from portal.access import MemberRequest
from portal.forms import add_service_error, service_error_messages
from portal.messaging_forms import KillSwitchForm, SettingsForm
from sms.counters import Budget, budget, sms_settings
from sms.models import (
    Campaign,
    CampaignStatus,
    Contact,
    DoNotContact,
    InboundKind,
    InboundMessage,
    SendingNumber,
    SmsSettings,
)
from sms.selectors import numbers_today
from sms.services.campaigns import LAUNCH_ROLES
from sms.services.controls import kill_switch_set, settings_update
from tenancy.errors import ConflictError
from tenancy.models import Organization

# Refusals a service may raise; each is shown to the person rather than answered with a 500.
SERVICE_ERRORS = (ValidationError, ConflictError, PermissionDenied)
PAGE_SIZE = 25
RECENT_CAMPAIGNS = 5
RECENT_REPLIES = 3

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def may_use_messaging(request: HttpRequest) -> bool:
    """Owners, admins and managers of the current organization, and its partner's admins."""
    if getattr(request, "is_partner_admin", False):
        return True
    return getattr(request, "membership_role", None) in LAUNCH_ROLES


def require_messaging(request: HttpRequest) -> None:
    if not may_use_messaging(request):
        raise PermissionDenied("Only owners, admins and managers use messaging.")


def messaging_page(view: View) -> View:
    """Refuse (403) anyone who may not use messaging before the view runs."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        require_messaging(request)
        return view(request, *args, **kwargs)

    return cast(View, guarded)


nav.register("Messaging", "portal:messaging_overview", order=40, visible=may_use_messaging)


def org_of(request: MemberRequest) -> Organization:
    return request.organization


def refuse(request: HttpRequest, exc: Exception, to: str) -> HttpResponseRedirect:
    """A row button's action was refused: say why at the top of the page it came from."""
    if isinstance(exc, PermissionDenied):
        messages.error(request, str(exc) or "You may not do that.")
    else:
        for message in service_error_messages(exc):
            messages.error(request, message)
    return HttpResponseRedirect(to)


def form_refused(form: Any, exc: Exception) -> None:
    """Put a service's refusal on ``form``: beside the field it names, or above the form."""
    if isinstance(exc, PermissionDenied):
        form.add_error(None, str(exc) or "You may not do that.")
    else:
        add_service_error(form, exc)


def refusal_status(exc: Exception) -> int:
    if isinstance(exc, PermissionDenied):
        return 403
    return 409 if isinstance(exc, ConflictError) else 400


def money(amount: Decimal | None) -> Decimal | None:
    """An amount to the cent (counters keep four places), half up like every bill."""
    return None if amount is None else amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def read_settings(organization: Organization) -> SmsSettings:
    """The organization's messaging settings without writing: the defaults when it has none yet."""
    return SmsSettings.objects.filter(organization=organization).first() or SmsSettings(organization=organization)


def sender_name(organization: Organization, settings: SmsSettings) -> str:
    """Who a message says it is from, as the dispatcher composes it: the business name, else the organization's
    display name."""
    return settings.business_name or organization.display_name


# -- overview -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetLine:
    label: str
    spent: Decimal
    cap: Decimal | None
    percent: int | None  # of the cap used, rounded down; None without a cap
    alert: bool

    @property
    def bar(self) -> int:
        return min(100, self.percent or 0)


def budget_lines(spending: Budget) -> list[BudgetLine]:
    lines = []
    for label, spent, cap, share, key in (
        ("Today", spending.spent_today, spending.daily_cap, spending.daily_share, "day"),
        ("This month", spending.spent_this_month, spending.monthly_cap, spending.monthly_share, "month"),
    ):
        # A cap of zero is reached before anything is spent.
        percent = (100 if cap is not None else None) if share is None else int(share * 100)
        lines.append(BudgetLine(label, money(spent) or Decimal("0.00"), money(cap), percent, key in spending.alerts))
    return lines


def _render_overview(
    request: MemberRequest, kill_form: KillSwitchForm | None = None, status: int = 200
) -> HttpResponse:
    org = org_of(request)
    settings = sms_settings(org)
    spending = budget(org, timezone.now())
    # One grouped count, and the latest few campaigns.
    by_status = dict(
        Campaign.objects.for_org(org)
        .order_by()
        .values_list("status")
        .annotate(total=Count("pk"))
        .values_list("status", "total")
    )
    recent = list(Campaign.objects.for_org(org).order_by("-created_at", "-id")[:RECENT_CAMPAIGNS])
    context = {
        "settings": settings,
        "budget": spending,
        "budget_lines": budget_lines(spending),
        "campaign_counts": [(status, label, by_status.get(status, 0)) for status, label in CampaignStatus.choices],
        "recent_campaigns": recent,
        "recent_replies": list(
            InboundMessage.objects.for_org(org)
            .filter(kind=InboundKind.REPLY)
            .select_related("contact")
            .order_by("-received_at", "-id")[:RECENT_REPLIES]
        ),
        "contact_count": Contact.objects.for_org(org).count(),
        "dnc_count": DoNotContact.objects.for_org(org).count(),
        "kill_form": kill_form or KillSwitchForm(initial={"enabled": "off" if settings.kill_switch else "on"}),
    }
    return render(request, "portal/messaging/overview.html", context, status=status)


@require_safe
@messaging_page
def messaging_overview(request: MemberRequest) -> HttpResponse:
    return _render_overview(request)


@require_POST
@messaging_page
def messaging_kill_switch(request: MemberRequest) -> HttpResponse:
    """Turn all sending of the organization off (confirmed with a tick) or on again."""
    form = KillSwitchForm(request.POST)
    if not form.is_valid():
        return _render_overview(request, kill_form=form, status=400)
    enabled = bool(form.cleaned_data["enabled"])
    try:
        kill_switch_set(organization=org_of(request), enabled=enabled, actor=request.user)
    except SERVICE_ERRORS as exc:
        form_refused(form, exc)
        return _render_overview(request, kill_form=form, status=refusal_status(exc))
    if enabled:
        messages.warning(request, "Sending is stopped: no message of this organization goes out until you resume.")
    else:
        messages.success(request, "Sending is on again: campaigns pick up where they stopped.")
    return HttpResponseRedirect(reverse("portal:messaging_overview"))


# -- settings -------------------------------------------------------------------------------------------------------

SETTINGS_FIELDS = tuple(SettingsForm.base_fields)


@require_http_methods(["GET", "POST"])
@messaging_page
def messaging_settings(request: MemberRequest) -> HttpResponse:
    org = org_of(request)
    current = read_settings(org)
    if request.method == "GET":
        form = SettingsForm(initial={name: getattr(current, name) for name in SETTINGS_FIELDS})
        return render(request, "portal/messaging/settings.html", {"form": form, "settings": current})
    form = SettingsForm(request.POST)
    if not form.is_valid():
        return render(request, "portal/messaging/settings.html", {"form": form, "settings": current}, status=400)
    try:
        settings_update(organization=org, actor=request.user, **form.cleaned_data)
    except SERVICE_ERRORS as exc:
        form_refused(form, exc)
        context = {"form": form, "settings": current}
        return render(request, "portal/messaging/settings.html", context, status=refusal_status(exc))
    messages.success(request, "Messaging settings saved.")
    return HttpResponseRedirect(reverse("portal:messaging_settings"))


# -- sending numbers ------------------------------------------------------------------------------------------------


@require_safe
@messaging_page
def messaging_numbers(request: MemberRequest) -> HttpResponse:
    """The numbers staff set up for the organization, read-only: where each is in its warm-up and today's cap."""
    org = org_of(request)
    numbers = list(SendingNumber.objects.filter(organization=org).order_by("-active", "phone_e164"))
    for number in numbers:
        number.organization = org  # its zone decides what "today" is
    # Queries: the numbers, then one for every number's count of today.
    today = numbers_today(numbers, timezone.now())
    rows = [(number, today[number.pk]) for number in numbers]
    local_today = timezone.now().astimezone(ZoneInfo(org.timezone)).date()
    return render(request, "portal/messaging/numbers.html", {"rows": rows, "today": local_today})
