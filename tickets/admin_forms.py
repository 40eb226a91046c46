"""Forms of the staff ticket screens (``tickets.admin_tickets``): the ticket's own fields, a reply or internal note,
a time entry, and the values the bulk actions ask for. They check what a person can get wrong, with the services'
own limits, so a refusal is shown beside the field; the services still have the last word."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from tenancy.models import Organization, User
from tickets.attachments import ATTACHMENT_MAX_BYTES, ATTACHMENT_TYPES
from tickets.models import CannedResponse, Priority, Ticket, TicketStatus
from tickets.services import MAX_BODY, MAX_TAGS

TAG_MAX_LENGTH = 40
# What a reply can do to the ticket at the same time (empty: leave the status as it is).
STATUS_AFTER_REPLY = [
    ("", "Keep the status"),
    (TicketStatus.PENDING_CUSTOMER, "Set to waiting on customer"),
    (TicketStatus.ON_HOLD, "Put on hold"),
    (TicketStatus.RESOLVED, "Resolve"),
]


def staff_users() -> QuerySet[User]:
    """The people tickets can be assigned to (the services refuse anyone else)."""
    return User.objects.filter(is_staff=True, is_active=True).order_by("full_name", "email")


def canned_responses(organization: Organization) -> QuerySet[CannedResponse]:
    """Platform-wide canned responses and the organization's own."""
    return CannedResponse.objects.filter(Q(organization=None) | Q(organization=organization)).order_by("title", "pk")


def tags_parse(text: str) -> list[str]:
    """``"vpn, Printer ,vpn"`` -> ``["printer", "vpn"]``, with the services' limits."""
    tags = sorted({item.strip().lower() for item in (text or "").split(",") if item.strip()})
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.")
    long = [tag for tag in tags if len(tag) > TAG_MAX_LENGTH]
    if long:
        raise ValidationError(f"Tags are at most {TAG_MAX_LENGTH} characters: {', '.join(long)}.")
    return tags


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.full_name} ({obj.email})" if obj.full_name else obj.email


class TicketWorkForm(forms.Form):
    """The fields staff change on a ticket; each change is applied by its service."""

    status = forms.ChoiceField(choices=TicketStatus.choices)
    priority = forms.ChoiceField(choices=Priority.choices)
    assignee = StaffChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="Nobody (the routing rules pick again)",
    )
    category = forms.CharField(max_length=60, required=False)
    tags = forms.CharField(required=False, max_length=1000, help_text="Separated by commas.")

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "status": ticket.status,
                "priority": ticket.priority,
                "assignee": ticket.assignee_id,
                "category": ticket.category,
                "tags": ", ".join(ticket.tags),
            },
        )
        super().__init__(*args, **kwargs)
        self.ticket = ticket
        cast(forms.ModelChoiceField, self.fields["assignee"]).queryset = staff_users()

    def clean_tags(self) -> list[str]:
        return tags_parse(self.cleaned_data.get("tags", ""))

    def clean_category(self) -> str:
        return str(self.cleaned_data.get("category", "")).strip()

    def changes(self) -> dict[str, Any]:
        """The cleaned values that differ from the ticket's."""
        data = self.cleaned_data
        ticket = self.ticket
        current = {
            "status": ticket.status,
            "priority": ticket.priority,
            "assignee": ticket.assignee_id,
            "category": ticket.category,
            "tags": sorted(ticket.tags),
        }
        wanted = {**data, "assignee": data["assignee"].pk if data.get("assignee") else None}
        return {name: data[name] for name in current if wanted[name] != current[name]}


class ReplyForm(forms.Form):
    """A reply to the requester (emailed to them) or an internal note, with an optional file. A chosen canned response
    is the text when the body is left empty; "Insert" puts it into the body to edit first."""

    canned = forms.ModelChoiceField(
        queryset=CannedResponse.objects.none(), required=False, label="Canned response", empty_label="None"
    )
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "cols": 80}), required=False, label="Message")
    internal = forms.BooleanField(required=False, label="Internal note (never shown to the customer)")
    attachment = forms.FileField(required=False)
    then_status = forms.ChoiceField(choices=STATUS_AFTER_REPLY, required=False, label="Then")

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        cast(forms.ModelChoiceField, self.fields["canned"]).queryset = canned_responses(organization)

    def clean_attachment(self) -> Any:
        upload = self.cleaned_data.get("attachment")
        if upload is None:
            return None
        content_type = (getattr(upload, "content_type", "") or "").split(";")[0].strip().lower()
        if upload.size > ATTACHMENT_MAX_BYTES:
            raise ValidationError(f"{upload.name}: larger than {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB.")
        if content_type not in ATTACHMENT_TYPES:
            raise ValidationError(f"{upload.name}: files of type {content_type or 'unknown'} are not accepted.")
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        body = str(data.get("body") or "").strip()
        canned = data.get("canned")
        if not body and canned is not None:
            body = canned.body.strip()
        if not body:
            self.add_error("body", "Write a message or choose a canned response.")
        elif len(body) > MAX_BODY:
            self.add_error("body", f"At most {MAX_BODY} characters.")
        data["body"] = body
        if data.get("internal") and data.get("then_status"):
            self.add_error("then_status", "An internal note does not change the status; save it on its own.")
        return data

    def with_canned_inserted(self) -> dict[str, Any]:
        """The posted values again, the chosen canned response added to the body: the initial values of the form
        shown back to the person to edit (nothing is sent)."""
        data = self.data
        body = str(data.get("body") or "").rstrip()
        pk = str(data.get("canned") or "")
        canned = canned_responses(self.organization).filter(pk=int(pk)).first() if pk.isdigit() else None
        if canned is not None:
            body = f"{body}\n\n{canned.body}" if body else canned.body
        return {
            "body": body,
            "canned": canned.pk if canned is not None else None,
            "internal": data.get("internal") in ("on", "true", "1"),
            "then_status": data.get("then_status", ""),
        }


class TimeEntryForm(forms.Form):
    minutes = forms.IntegerField(min_value=1, max_value=24 * 60, help_text="Whole minutes, 1 to 1440.")
    billable = forms.BooleanField(required=False, initial=True)
    note = forms.CharField(max_length=300, required=False)
    worked_on = forms.DateField(required=False, help_text="Empty: today in the organization's time zone.")


# -- the values bulk actions ask for ---------------------------------------------------------------------------------


class BulkPriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=Priority.choices, widget=forms.RadioSelect)


class BulkAssigneeForm(forms.Form):
    assignee = StaffChoiceField(queryset=User.objects.none(), empty_label=None, label="Assign to")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["assignee"]).queryset = staff_users()


class BulkTagForm(forms.Form):
    tag = forms.CharField(max_length=TAG_MAX_LENGTH)

    def clean_tag(self) -> str:
        tag = str(self.cleaned_data.get("tag", "")).strip().lower()
        if not tag or "," in tag:
            raise ValidationError("One tag, without commas.")
        return tag
