"""Bulk actions of the staff ticket list: assign, change status or priority, add or take off a tag.

Every action goes through ``tickets.bulk.tickets_bulk_update``: at most ``BULK_MAX`` tickets, one transaction,
audited. One ticket that cannot take the change (merged away, too many tags) leaves every selected ticket as it was,
and the reason is shown as a message.
Actions that need a value (priority, assignee, tag) ask for it on an intermediate page first.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import User
from tickets.admin_forms import BulkAssigneeForm, BulkPriorityForm, BulkTagForm
from tickets.bulk import BULK_MAX, tickets_bulk_update
from tickets.models import Priority, Ticket, TicketStatus


def actor_of(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def _merged_note(tickets: list[Ticket]) -> str:
    merged = [ticket.reference for ticket in tickets if ticket.merged_into_id is not None]
    return f" Merged tickets cannot change: {', '.join(merged)}." if merged else ""


class TicketBulkActions(admin.ModelAdmin):
    """The actions of ``TicketAdmin``; every one needs the permission to change tickets."""

    actions = [
        "assign_to_me",
        "assign_to",
        "set_resolved",
        "set_closed",
        "set_on_hold",
        "set_pending_customer",
        "set_open",
        "set_priority",
        "add_tag",
        "remove_tag",
    ]

    def _selected(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> list[Ticket] | None:
        tickets = list(queryset.select_related("organization").order_by()[: BULK_MAX + 1])
        if len(tickets) > BULK_MAX:
            self.message_user(request, f"At most {BULK_MAX} tickets at a time; nothing was changed.", messages.ERROR)
            return None
        return tickets

    def _bulk(self, request: HttpRequest, queryset: QuerySet[Ticket], done: str, **change: Any) -> None:
        tickets = self._selected(request, queryset)
        if tickets is None:
            return
        try:
            count = tickets_bulk_update(tickets=tickets, actor=actor_of(request), **change)
        except ServiceValidationError as exc:
            reasons = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            self.message_user(request, f"Nothing was changed. {reasons}", messages.ERROR)
        except ConflictError as exc:
            self.message_user(request, f"Nothing was changed: {exc.message}{_merged_note(tickets)}", messages.ERROR)
        else:
            self.message_user(request, f"{count} ticket{'s' if count != 1 else ''} {done}.", messages.SUCCESS)

    def _ask(
        self,
        request: HttpRequest,
        queryset: QuerySet[Ticket],
        form: forms.Form,
        title: str,
        button: str,
    ) -> TemplateResponse:
        tickets = list(queryset.select_related("organization")[:50])
        count = queryset.count()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "form": form,
            "button": button,
            "tickets": tickets,
            "count": count,
            "more": count - len(tickets),
            "action": request.POST.get("action", ""),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/tickets/ticket/bulk_form.html", context)

    # -- assignment ------------------------------------------------------------------------------------------------

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._bulk(request, queryset, "assigned to you", assignee=actor_of(request))

    @admin.action(description="Assign to a technician…", permissions=["change"])
    def assign_to(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = BulkAssigneeForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            assignee = form.cleaned_data["assignee"]
            self._bulk(request, queryset, f"assigned to {assignee.email}", assignee=assignee)
            return None
        return self._ask(request, queryset, form, "Assign the selected tickets", "Assign")

    # -- status ----------------------------------------------------------------------------------------------------

    @admin.action(description="Resolve", permissions=["change"])
    def set_resolved(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._bulk(request, queryset, "resolved", status=TicketStatus.RESOLVED)

    @admin.action(description="Close", permissions=["change"])
    def set_closed(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._bulk(request, queryset, "closed", status=TicketStatus.CLOSED)

    @admin.action(description="Put on hold", permissions=["change"])
    def set_on_hold(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._bulk(request, queryset, "put on hold", status=TicketStatus.ON_HOLD)

    @admin.action(description="Set to waiting on customer", permissions=["change"])
    def set_pending_customer(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._bulk(request, queryset, "set to waiting on customer", status=TicketStatus.PENDING_CUSTOMER)

    @admin.action(description="Open (or reopen)", permissions=["change"])
    def set_open(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._bulk(request, queryset, "opened", status=TicketStatus.OPEN)

    # -- priority and tags -----------------------------------------------------------------------------------------

    @admin.action(description="Set priority…", permissions=["change"])
    def set_priority(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = BulkPriorityForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            priority = form.cleaned_data["priority"]
            self._bulk(request, queryset, f"set to {Priority(priority).label}", priority=priority)
            return None
        return self._ask(request, queryset, form, "Set the priority of the selected tickets", "Set priority")

    @admin.action(description="Add a tag…", permissions=["change"])
    def add_tag(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = BulkTagForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            tag = form.cleaned_data["tag"]
            self._bulk(request, queryset, f"tagged {tag}", add_tags=[tag])
            return None
        return self._ask(request, queryset, form, "Add a tag to the selected tickets", "Add tag")

    @admin.action(description="Remove a tag…", permissions=["change"])
    def remove_tag(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = BulkTagForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            tag = form.cleaned_data["tag"]
            self._bulk(request, queryset, f"no longer tagged {tag}", remove_tags=[tag])
            return None
        return self._ask(request, queryset, form, "Remove a tag from the selected tickets", "Remove tag")
