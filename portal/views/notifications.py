"""Notifications in the portal: the bell in the header, the notifications page, and the notification settings.

- The **bell** (``portal:notifications_bell``) is an htmx partial: the header includes it without a count (so no page
  pays a query for it) and htmx fetches it at once and then every ``BELL_POLL`` seconds.
- The **notifications page** lists the person's in-app notifications in the current organization, newest first, and
  marks them read, one (``portal:notification_read``, which may also open the page it leads to) or all.
- The **settings page** (``portal:settings_notifications``) holds the person's channels per event type and, for
  owners and admins (and partner admins), the organization's Slack webhook and which event types go to it. Only the
  event types members choose for are offered; an event type's required channels are shown ticked and disabled (a
  posted attempt to untick one is ignored, here and by the service).

Another person's notification, or one of another organization, is 404. Writes go through ``notifications.services``;
what they refuse is shown on the form (400), never a 500.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from notifications.catalogue import CHANNEL_LABELS, SMS, USER_CHANNELS, choosable, grouped
from notifications.services.inbox import inbox, notification_read, notifications_read_all, unread_count
from notifications.services.preferences import (
    preferences_table,
    preferences_update,
    slack_webhook,
    slack_webhook_remove,
    slack_webhook_set,
    sms_number,
)
from portal import nav
from portal.access import MemberRequest, can_manage, require_manager
from portal.forms import add_service_error
from tenancy.audit import client_ip

BELL_POLL = 30  # seconds between two looks at the unread count
REQUIRED_NOTE = " (always sent)"
PAGE_SIZE = 25
SHOW = ("all", "unread")

nav.register_setting("Notifications", "portal:settings_notifications", order=35)


# -- the bell and the notifications page ---------------------------------------------------------------------------


@require_safe
def notifications_bell(request: MemberRequest) -> HttpResponse:
    """The bell with the unread count (one query), for htmx to swap into the header."""
    count = unread_count(user=request.user, organization=request.organization)
    return render(request, "portal/notifications/_bell.html", {"bell_unread": count, "bell_polled": True,
                                                                "bell_poll": BELL_POLL})  # fmt: skip


@require_http_methods(["GET", "POST"])
def notifications_page(request: MemberRequest) -> HttpResponse:
    """GET: the person's notifications (``?show=unread`` for the unread ones); POST: mark them all read."""
    if request.method == "POST":
        marked = notifications_read_all(user=request.user, organizations=request.organization)
        messages.success(request, f"{marked} notification{'' if marked == 1 else 's'} marked as read.")
        return HttpResponseRedirect(reverse("portal:notifications"))
    show = request.GET.get("show", "all")
    if show not in SHOW:
        show = "all"
    notifications = inbox(user=request.user, organizations=request.organization)
    if show == "unread":
        notifications = notifications.filter(read_at__isnull=True)
    # Query 1: the count of the page's list; query 2: the page of notifications; query 3: the unread count.
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "notifications": list(page.object_list),
        "show": show,
        "unread": unread_count(user=request.user, organization=request.organization),
    }
    return render(request, "portal/notifications/list.html", context)


@require_POST
def notification_read_view(request: MemberRequest, notification_id: uuid.UUID) -> HttpResponse:
    """Mark one notification read; with ``open``, go on to the page it leads to (a path of this site)."""
    notification = get_object_or_404(inbox(user=request.user, organizations=request.organization), pk=notification_id)
    notification_read(notification=notification)
    if request.POST.get("open") and notification.url.startswith("/") and not notification.url.startswith("//"):
        return HttpResponseRedirect(notification.url)
    if getattr(request, "htmx", False):
        response = render(request, "portal/notifications/_item.html", {"notification": notification})
        response["HX-Trigger"] = "notifications-read"  # the bell counts again
        return response
    return HttpResponseRedirect(reverse("portal:notifications"))


# -- settings ------------------------------------------------------------------------------------------------------


def _field_name(event_type: str, channel: str) -> str:
    return f"{event_type}:{channel}"


class PreferencesForm(forms.Form):
    """One checkbox per event type and channel (``<event type>:<channel>``)."""

    def __init__(self, *args: Any, initial_channels: dict[str, frozenset[str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for event in choosable():
            for channel in USER_CHANNELS:
                required = channel in event.required
                self.fields[_field_name(event.name, channel)] = forms.BooleanField(
                    required=False,
                    initial=required or channel in initial_channels.get(event.name, frozenset()),
                    disabled=required,  # always on: the posted value is ignored
                    label=f"{event.label}: {CHANNEL_LABELS[channel]}{REQUIRED_NOTE if required else ''}",
                    widget=forms.CheckboxInput(attrs={"title": REQUIRED_NOTE.strip(" ()")} if required else None),
                )

    def choices(self) -> dict[str, set[str]]:
        return {
            event.name: {channel for channel in USER_CHANNELS if self.cleaned_data[_field_name(event.name, channel)]}
            for event in choosable()
        }

    def rows(self) -> list[tuple[str, list[tuple[Any, list[forms.BoundField]]]]]:
        """Categories with their event types, each with its checkboxes in channel order (for the template)."""
        return [
            (
                label,
                [(event, [self[_field_name(event.name, channel)] for channel in USER_CHANNELS]) for event in events],
            )
            for label, events in grouped()
        ]


class SlackForm(forms.Form):
    url = forms.CharField(
        required=False,
        max_length=500,
        label="Incoming webhook address",
        help_text="From Slack: Apps, Incoming Webhooks, Add to Slack. Leave empty to keep the current address.",
        widget=forms.URLInput(attrs={"autocomplete": "off", "placeholder": "https://hooks.slack.com/services/..."}),
    )
    event_types = forms.MultipleChoiceField(
        required=False,
        choices=[(event.name, event.label) for event in choosable()],
        widget=forms.CheckboxSelectMultiple,
        label="Post these to Slack",
    )
    remove = forms.BooleanField(required=False, label="Stop posting to Slack (forget the address)")


def _render_settings(
    request: MemberRequest,
    *,
    preferences: PreferencesForm | None = None,
    slack: SlackForm | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = request.organization
    webhook = slack_webhook(organization) if can_manage(request) else None
    if preferences is None:
        table = preferences_table(organization=organization, user=request.user)
        preferences = PreferencesForm(initial_channels=table)
    if slack is None and can_manage(request):
        slack = SlackForm(initial={"event_types": webhook.event_types if webhook else []})
    context = {
        "form": preferences,
        "rows": preferences.rows(),
        "channels": [CHANNEL_LABELS[channel] for channel in USER_CHANNELS],
        "has_required": any(event.required for event in choosable()),
        "sms_number": sms_number(request.user, organization),
        "slack_form": slack,
        "webhook": webhook,
    }
    return render(request, "portal/settings/notifications.html", context, status=status)


@require_http_methods(["GET", "POST"])
def settings_notifications(request: MemberRequest) -> HttpResponse:
    """The person's channels per event type (``form=preferences``); the organization's Slack (``form=slack``, owners
    and admins only: 404 for others)."""
    if request.method != "POST":
        return _render_settings(request)
    if request.POST.get("form") == "slack":
        return _save_slack(request)
    table = preferences_table(organization=request.organization, user=request.user)
    form = PreferencesForm(request.POST, initial_channels=table)
    if form.is_valid():
        try:
            preferences_update(organization=request.organization, user=request.user, choices=form.choices())
        except ValidationError as exc:
            _add_preference_error(form, exc)
        else:
            messages.success(request, "Your notification settings are saved.")
            return HttpResponseRedirect(reverse("portal:settings_notifications"))
    return _render_settings(request, preferences=form, status=400)


def _add_preference_error(form: PreferencesForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict") and SMS in exc.message_dict:
        for message in exc.message_dict[SMS]:
            form.add_error(None, message)
        return
    add_service_error(form, exc)


def _save_slack(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    form = SlackForm(request.POST)
    if form.is_valid():
        organization, ip = request.organization, client_ip(request)
        try:
            if form.cleaned_data["remove"]:
                slack_webhook_remove(organization=organization, actor=request.user, ip=ip)
                messages.success(request, "Nothing more is posted to Slack.")
            else:
                slack_webhook_set(
                    organization=organization,
                    url=form.cleaned_data["url"].strip() or None,
                    event_types=form.cleaned_data["event_types"],
                    actor=request.user,
                    ip=ip,
                )
                messages.success(request, "Slack settings are saved.")
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            return HttpResponseRedirect(reverse("portal:settings_notifications"))
    return _render_settings(request, slack=form, status=400)
