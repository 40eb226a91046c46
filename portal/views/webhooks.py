"""Settings, Webhooks: the organization's webhook endpoints, their signing secrets, test pings and delivery logs.

For the people the webhooks API lets manage an organization's endpoints: its owners and admins, and its partner's
admins (others get 404, like every settings page they may not use). Every endpoint and delivery id in a URL is looked
up within the current organization, so another organization's is 404.

- The signing secret is shown in the response to creating the endpoint or rotating its secret, and nowhere else:
  it is not kept in the session, the page is not cached, and later pages show only its prefix.
- Writes go through ``events.webhooks`` (``endpoint_create``, ``endpoint_update``, ``endpoint_rotate``,
  ``endpoint_ping``, ``delivery_redeliver``); what they refuse (an address inside the network, an unknown event type,
  too many endpoints) lands on the form field it names (400), never a 500.
- The list and the delivery log run a fixed number of queries however many rows they show.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from events.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookState
from events.webhooks import (
    MAX_ENDPOINTS,
    TIMEOUT,
    body_of,
    delivery_redeliver,
    endpoint_create,
    endpoint_delete,
    endpoint_ping,
    endpoint_rotate,
    endpoint_update,
)
from portal import nav
from portal.access import MemberRequest, can_manage, require_manager
from portal.forms import add_service_error
from portal.webhook_forms import DeliveryFilterForm, EndpointForm, event_types_summary
from tenancy.audit import client_ip

PAGE_SIZE = 25
PING_POLL_FOR = timedelta(seconds=TIMEOUT * 6)  # a queued ping's page asks for its answer this long, then stops

nav.register_setting("Webhooks", "portal:settings_webhooks", order=72, visible=can_manage)


def _no_store(response: HttpResponse) -> HttpResponse:
    # A page showing a signing secret must not be kept by the browser or a proxy.
    add_never_cache_headers(response)
    response["Cache-Control"] += ", no-store"
    return response


def _partial(request: MemberRequest) -> bool:
    """Whether htmx asked for a part of the page (not a whole page to restore its history)."""
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def _render(request: MemberRequest, page: str, partial: str, context: dict[str, Any]) -> HttpResponse:
    """The whole page, or only its ``partial`` template when htmx asks for it."""
    response = render(request, partial if _partial(request) else page, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _endpoints(request: MemberRequest) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(organization=request.organization)


def _endpoint(request: MemberRequest, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    return get_object_or_404(_endpoints(request), pk=endpoint_id)


def _delivery(endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery:
    return get_object_or_404(WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event"), pk=delivery_id)


# -- the list -------------------------------------------------------------------------------------------------------


@require_safe
def webhooks(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    latest = WebhookDelivery.objects.filter(endpoint=OuterRef("pk")).order_by("-created_at", "-id")
    # One query: the endpoints, each with its newest delivery's state, status code and time.
    endpoints = list(
        _endpoints(request)
        .annotate(
            last_state=Subquery(latest.values("state")[:1]),
            last_status_code=Subquery(latest.values("last_status_code")[:1]),
            last_delivery_at=Subquery(latest.values("created_at")[:1]),
        )
        .order_by("created_at", "pk")
    )
    rows = [
        {
            "endpoint": endpoint,
            "events": event_types_summary(endpoint.event_types),
            "last_state": WebhookState(endpoint.last_state) if endpoint.last_state else None,
        }
        for endpoint in endpoints
    ]
    context = {"rows": rows, "max_endpoints": MAX_ENDPOINTS}
    return render(request, "portal/webhooks/list.html", context)


# -- create, change, delete -----------------------------------------------------------------------------------------


def _secret_page(request: MemberRequest, endpoint: WebhookEndpoint, secret: str, *, rotated: bool) -> HttpResponse:
    context = {"endpoint": endpoint, "secret": secret, "rotated": rotated}
    return _no_store(render(request, "portal/webhooks/secret.html", context))


@sensitive_variables("secret")
@require_http_methods(["GET", "POST"])
def webhook_new(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    if request.method == "GET":
        return render(request, "portal/webhooks/form.html", {"form": EndpointForm(), "endpoint": None})
    form = EndpointForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                endpoint, secret = endpoint_create(
                    url=data["url"],
                    event_types=data["chosen_event_types"],
                    description=data["description"],
                    organization=request.organization,
                    actor=request.user,
                    ip=client_ip(request),
                )
                if not data["active"]:
                    endpoint_update(endpoint=endpoint, active=False, actor=request.user, ip=client_ip(request))
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            # The secret is in this response only: Keel stores it encrypted and never shows it again.
            return _secret_page(request, endpoint, secret, rotated=False)
    return render(request, "portal/webhooks/form.html", {"form": form, "endpoint": None}, status=400)


def _saved_message(was_active: bool, endpoint: WebhookEndpoint) -> str:
    if endpoint.active and not was_active:
        return "The endpoint is saved and switched back on; its count of failures starts again from zero."
    if was_active and not endpoint.active:
        return "The endpoint is saved and switched off: no events are sent to it until it is switched back on."
    return "The endpoint is saved."


@require_http_methods(["GET", "POST"])
def webhook(request: MemberRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    """The endpoint: its state and its settings (URL, description, event types, active), with its actions."""
    require_manager(request)
    endpoint = _endpoint(request, endpoint_id)
    if request.method == "GET":
        initial = EndpointForm.initial_for(
            url=endpoint.url, description=endpoint.description, event_types=endpoint.event_types, active=endpoint.active
        )
        return render(
            request, "portal/webhooks/form.html", {"form": EndpointForm(initial=initial), "endpoint": endpoint}
        )
    form = EndpointForm(request.POST)
    if form.is_valid():
        data, was_active = form.cleaned_data, endpoint.active
        try:
            endpoint_update(
                endpoint=endpoint,
                url=data["url"],
                event_types=data["chosen_event_types"],
                description=data["description"],
                active=data["active"],
                actor=request.user,
                ip=client_ip(request),
            )
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _saved_message(was_active, endpoint))
            return HttpResponseRedirect(reverse("portal:settings_webhook", args=[endpoint.pk]))
    return render(request, "portal/webhooks/form.html", {"form": form, "endpoint": endpoint}, status=400)


@require_http_methods(["GET", "POST"])
def webhook_delete(request: MemberRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    """GET asks for confirmation; POST deletes the endpoint with its delivery log."""
    require_manager(request)
    endpoint = _endpoint(request, endpoint_id)
    if request.method == "GET":
        return render(request, "portal/webhooks/delete.html", {"endpoint": endpoint})
    url = endpoint.url
    endpoint_delete(endpoint=endpoint, actor=request.user, ip=client_ip(request))
    messages.success(request, f"The endpoint {url} is deleted: no more events are sent to it.")
    return HttpResponseRedirect(reverse("portal:settings_webhooks"))


# -- the secret and the test ping ----------------------------------------------------------------------------------


@sensitive_variables("secret")
@require_POST
def webhook_rotate(request: MemberRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    require_manager(request)
    endpoint = _endpoint(request, endpoint_id)
    secret = endpoint_rotate(endpoint=endpoint, actor=request.user, ip=client_ip(request))
    return _secret_page(request, endpoint, secret, rotated=True)


@require_POST
def webhook_test(request: MemberRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    """Queue a ``webhook.ping`` and show it being sent; the result asks for itself until the attempt is logged
    (``webhook_delivery`` with ``?ping=1``; htmx gets the result alone)."""
    require_manager(request)
    endpoint = _endpoint(request, endpoint_id)
    delivery = endpoint_ping(endpoint=endpoint)
    return _ping_result(request, endpoint, delivery, None)


def _ping_result(
    request: MemberRequest, endpoint: WebhookEndpoint, delivery: WebhookDelivery, attempt: WebhookAttempt | None
) -> HttpResponse:
    # It asks again every second until the attempt is logged, for as long as a worker could take to send it.
    polling = attempt is None and timezone.now() - delivery.created_at < PING_POLL_FOR
    context = {"endpoint": endpoint, "delivery": delivery, "attempt": attempt, "polling": polling,
               "timeout": int(TIMEOUT)}  # fmt: skip
    response = _render(request, "portal/webhooks/ping.html", "portal/webhooks/_ping_result.html", context)
    add_never_cache_headers(response)
    return response


# -- deliveries -----------------------------------------------------------------------------------------------------


def _deliveries_url(endpoint: WebhookEndpoint, state: str = "", page: str = "") -> str:
    query = urlencode({name: value for name, value in (("state", state), ("page", page)) if value})
    return reverse("portal:settings_webhook_deliveries", args=[endpoint.pk]) + (f"?{query}" if query else "")


@require_safe
def webhook_deliveries(request: MemberRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    """The endpoint's deliveries, newest first, filtered by state; htmx gets the results alone."""
    require_manager(request)
    endpoint = _endpoint(request, endpoint_id)  # query 1
    filter_form = DeliveryFilterForm(request.GET)
    state = filter_form.chosen_state()
    logged = (
        WebhookAttempt.objects.filter(delivery=OuterRef("pk"))
        .order_by()
        .values("delivery")
        .annotate(count=Count("pk"))
        .values("count")
    )
    deliveries = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .defer("event__payload")
        .annotate(logged=Coalesce(Subquery(logged, output_field=IntegerField()), Value(0)))
        .order_by("-created_at", "-id")
    )
    if state:
        deliveries = deliveries.filter(state=state)
    # Queries 2 and 3: the count and the page of deliveries, each with its event and its number of attempts logged.
    page = Paginator(deliveries, PAGE_SIZE).get_page(request.GET.get("page"))
    context: dict[str, Any] = {
        "endpoint": endpoint,
        "page": page,
        "deliveries": list(page.object_list),
        "filter_form": filter_form,
        "state": state,
        "states": WebhookState,
    }
    return _render(request, "portal/webhooks/deliveries.html", "portal/webhooks/_deliveries.html", context)


@require_safe
def webhook_delivery(request: MemberRequest, endpoint_id: uuid.UUID, delivery_id: int) -> HttpResponse:
    """One delivery: its attempts, newest first (htmx gets them alone, to expand a row of the log), and the body
    that is posted."""
    require_manager(request)
    endpoint = _endpoint(request, endpoint_id)
    delivery = _delivery(endpoint, delivery_id)
    if request.GET.get("ping") == "1":  # a test ping's result, asked for until its attempt is logged
        return _ping_result(request, endpoint, delivery, delivery.attempt_log.first())
    context: dict[str, Any] = {"endpoint": endpoint, "delivery": delivery, "attempts": list(delivery.attempt_log.all())}
    if not _partial(request):
        context["body"] = json.dumps(json.loads(body_of(delivery.event)), indent=2)
    return _render(request, "portal/webhooks/delivery.html", "portal/webhooks/_attempts.html", context)


def _redelivered_message(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int, str]:
    if delivery.state == WebhookState.RUNNING:
        return messages.WARNING, "This delivery is being sent right now; redeliver it once that attempt is logged."
    if not endpoint.active:
        return messages.WARNING, "The delivery is queued, and is sent when the endpoint is switched back on."
    return messages.SUCCESS, "The delivery is being sent again; its attempts appear in the log."


@require_POST
def webhook_redeliver(request: MemberRequest, endpoint_id: uuid.UUID, delivery_id: int) -> HttpResponse:
    require_manager(request)
    endpoint = _endpoint(request, endpoint_id)
    delivery = delivery_redeliver(delivery=_delivery(endpoint, delivery_id))
    level, message = _redelivered_message(endpoint, delivery)
    messages.add_message(request, level, message)
    if request.POST.get("return_to") == "delivery":
        return HttpResponseRedirect(reverse("portal:settings_webhook_delivery", args=[endpoint.pk, delivery.pk]))
    # Back to the log as it was shown: a known state and a page number only.
    state = request.POST.get("state", "")
    page = request.POST.get("page", "")
    return HttpResponseRedirect(
        _deliveries_url(
            endpoint, state if state in WebhookState.values else "", page if page.isdigit() and len(page) < 7 else ""
        )
    )
