"""The ticket API's representations and request bodies (views in ``tickets.api``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from tenancy.models import User
from tickets.bulk import BULK_MAX
from tickets.models import Attachment, Channel, ClockState, Comment, Priority, Ticket, TicketStatus, TimeEntry
from tickets.services import MAX_BODY, MAX_TAGS

STATUS_HELP = f"One of {', '.join(TicketStatus.values)}."
# A plain string rather than an enum: two fields sharing one choice set would give the schema two enum names.
CLOCK_STATE_HELP = f"One of {', '.join(ClockState.values)}."


class TicketPersonSerializer(serializers.Serializer[User]):
    id = serializers.UUIDField()
    name = serializers.CharField(source="get_full_name")


class TicketSlaSerializer(serializers.Serializer[Ticket]):
    policy = serializers.SerializerMethodField()
    first_response_due = serializers.DateTimeField(allow_null=True)
    resolution_due = serializers.DateTimeField(allow_null=True)
    first_response_state = serializers.CharField(help_text=CLOCK_STATE_HELP)
    resolution_state = serializers.CharField(help_text=CLOCK_STATE_HELP)
    remaining_seconds = serializers.IntegerField(
        source="sla_remaining_seconds",
        allow_null=True,
        help_text="Business time left on the nearest running clock; negative when overdue, null when none runs.",
    )

    def get_policy(self, ticket: Ticket) -> str | None:
        return ticket.sla_policy.name if ticket.sla_policy else None


class TicketSerializer(serializers.Serializer[Ticket]):
    id = serializers.UUIDField()
    number = serializers.CharField(source="reference", help_text="The reference customers see, e.g. T-1042.")
    subject = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=TicketStatus.choices)
    priority = serializers.ChoiceField(choices=Priority.choices)
    category = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    required_skills = serializers.ListField(child=serializers.CharField())
    channel = serializers.ChoiceField(choices=Channel.choices)
    requester = serializers.CharField(source="requester_email", help_text="The requester's email address.")
    assignee = TicketPersonSerializer(allow_null=True)
    organization = serializers.CharField(source="organization.slug")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    escalation_level = serializers.IntegerField()
    merged_into = serializers.UUIDField(source="merged_into_id", allow_null=True)
    sla = TicketSlaSerializer(source="*")


def _word_list() -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=MAX_TAGS)


def _validate_status(value: str) -> str:
    if value not in TicketStatus.values:
        raise serializers.ValidationError(STATUS_HELP)
    return value


class TicketCreateSerializer(serializers.Serializer[Any]):
    subject = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=MAX_BODY, default="")
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.P3)
    category = serializers.CharField(required=False, allow_blank=True, max_length=60, default="")
    tags = _word_list()
    required_skills = _word_list()
    requester_email = serializers.EmailField(
        required=False, help_text="API keys and staff: whom the ticket is for (default: the signed-in person)."
    )


class TicketUpdateSerializer(serializers.Serializer[Any]):
    subject = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, max_length=MAX_BODY)
    status = serializers.ChoiceField(
        choices=TicketStatus.choices,
        help_text=f"{STATUS_HELP} Customers: RESOLVED or OPEN only.",
        error_messages={"invalid_choice": STATUS_HELP},
    )
    priority = serializers.ChoiceField(choices=Priority.choices)
    assignee = serializers.UUIDField(allow_null=True, help_text="A staff member's id, or null to unassign.")
    category = serializers.CharField(allow_blank=True, max_length=60)
    tags = _word_list()
    required_skills = _word_list()

    def validate_status(self, value: str) -> str:
        return _validate_status(value)


class TicketAttachmentSerializer(serializers.Serializer[Attachment]):
    id = serializers.IntegerField()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()


class TicketCommentSerializer(serializers.Serializer[Comment]):
    id = serializers.IntegerField()
    body = serializers.CharField()
    internal = serializers.BooleanField(help_text="Internal notes are shown only to staff and partner keys.")
    by_staff = serializers.BooleanField()
    author = serializers.SerializerMethodField()
    channel = serializers.CharField()
    created_at = serializers.DateTimeField()
    attachments = TicketAttachmentSerializer(many=True)

    def get_author(self, comment: Comment) -> str:
        if comment.author is not None:
            return comment.author.get_full_name()
        return comment.author_email or ("Support" if comment.by_staff else "API")


class TicketCommentCreateSerializer(serializers.Serializer[Any]):
    body = serializers.CharField(max_length=MAX_BODY)
    internal = serializers.BooleanField(default=False, help_text="An internal note (staff and partner keys only).")


class TicketTimeEntrySerializer(serializers.Serializer[TimeEntry]):
    id = serializers.IntegerField()
    technician = TicketPersonSerializer()
    minutes = serializers.IntegerField()
    billable = serializers.BooleanField()
    note = serializers.CharField()
    worked_on = serializers.DateField()
    created_at = serializers.DateTimeField()


class TicketTimeEntryCreateSerializer(serializers.Serializer[Any]):
    minutes = serializers.IntegerField(min_value=1, max_value=24 * 60)
    billable = serializers.BooleanField(default=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")
    worked_on = serializers.DateField(required=False)
    technician = serializers.UUIDField(
        required=False, help_text="The staff member who did the work. Required for API keys; staff default to self."
    )


class TicketBulkSerializer(serializers.Serializer[Any]):
    ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=BULK_MAX)
    assignee = serializers.UUIDField(required=False, allow_null=True, help_text="A staff member's id, or null.")
    status = serializers.ChoiceField(
        choices=TicketStatus.choices,
        required=False,
        help_text=STATUS_HELP,
        error_messages={"invalid_choice": STATUS_HELP},
    )
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    add_tags = _word_list()
    remove_tags = _word_list()

    def validate_status(self, value: str) -> str:
        return _validate_status(value)


TIME_ENTRY_PAGE = inline_serializer(
    "TicketTimeEntryPage",
    {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": TicketTimeEntrySerializer(many=True),
        "total_minutes": serializers.IntegerField(help_text="All time on the ticket, every page."),
        "billable_minutes": serializers.IntegerField(help_text="Billable time on the ticket, every page."),
    },
)
BULK_RESULT = inline_serializer("TicketBulkResult", {"updated": serializers.IntegerField()})
TICKET_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The ticket's id.")
NOT_FOUND = OpenApiResponse(description="No such ticket among the organizations the caller may see.")
