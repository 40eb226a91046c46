"""The customer's devices: what the MSP's monitoring (NinjaOne) manages for the organization, as of the last sync,
with its operating system, whether it is online and when it last reported in.

Every member of the organization may see the page; it lists the current organization's devices only (there is no
device id in the URL to try). The menu shows it once the organization is linked to NinjaOne; before that the page
says so. Times are in the organization's time zone (the middleware activates it).
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from integrations.ninjaone.selectors import is_linked, present_devices, sync_state
from portal import nav
from portal.access import MemberRequest

PAGE_SIZE = 50
FILTERS = {"all": "All", "online": "Online", "offline": "Offline"}


def linked(request: HttpRequest) -> bool:
    organization = getattr(request, "organization", None)
    return organization is not None and is_linked(organization)


nav.register("Devices", "portal:devices", order=35, visible=linked)


@require_safe
def devices(request: MemberRequest) -> HttpResponse:
    organization = request.organization
    if not is_linked(organization):
        return render(request, "portal/devices.html", {"linked": False})
    show = request.GET.get("status", "all")
    if show not in FILTERS:
        show = "all"
    present = present_devices(organization)
    # Queries: the totals, the sync state, the page's count and the page of devices.
    totals = present.aggregate(total=Count("pk"), offline=Count("pk", filter=Q(offline=True)))
    shown = present if show == "all" else present.filter(offline=show == "offline")
    page = Paginator(shown, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "linked": True,
        "page": page,
        "rows": list(page.object_list),
        "show": show,
        "filters": list(FILTERS.items()),
        "total": totals["total"],
        "offline": totals["offline"],
        "state": sync_state(organization),
    }
    return render(request, "portal/devices.html", context)
