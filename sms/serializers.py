"""How messaging data looks in the API, and what the API accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from sms.messages import placeholders_of
from sms.models import Campaign, Contact, DncReason, DoNotContact, SendingNumber, SendJob, Template
from sms.selectors import NumberToday
from tenancy.api_base import refuses_unknown_fields


class ConsentSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField(required=False, help_text="When the contact agreed; now when left out.")
    source = serializers.CharField(  # type: ignore[assignment]  # the field's name, not Field.source
        max_length=120, help_text="Where: a web form, a shop counter, an import."
    )
    text = serializers.CharField(required=False, allow_blank=True, default="", help_text="The wording agreed to.")


class ContactSerializer(serializers.ModelSerializer[Contact]):
    phone = serializers.CharField(source="phone_e164", read_only=True)
    tags = serializers.SerializerMethodField()
    consent = serializers.SerializerMethodField()
    on_dnc = serializers.SerializerMethodField()
    organization = serializers.CharField(source="organization.slug", read_only=True)
    email = serializers.CharField(read_only=True, help_text="The contact's email address; empty when unknown.")

    class Meta:
        model = Contact
        fields = [
            "id", "organization", "phone", "first_name", "last_name", "email", "timezone", "tags", "attributes",
            "consent", "on_dnc", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_tags(self, contact: Contact) -> list[str]:
        return contact.tag_list

    @extend_schema_field(ConsentSerializer(allow_null=True))
    def get_consent(self, contact: Contact) -> dict[str, Any] | None:
        if contact.consent_at is None:
            return None
        return {"at": contact.consent_at.isoformat(), "source": contact.consent_source, "text": contact.consent_text}

    def get_on_dnc(self, contact: Contact) -> bool:
        return bool(getattr(contact, "on_dnc", False))


@refuses_unknown_fields
class ContactUpdateSerializer(serializers.Serializer[Any]):
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=30)
    attributes = serializers.DictField(required=False)


class ContactInputSerializer(ContactUpdateSerializer):
    phone = serializers.CharField(max_length=40, help_text="Any common form; stored as E.164.")
    region = serializers.CharField(max_length=2, required=False, default="AU", help_text="Read the phone in.")
    consent = ConsentSerializer(required=False, allow_null=True)


class ImportSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(help_text="CSV, UTF-8; columns in the operation's description.")
    dry_run = serializers.BooleanField(default=True, help_text="true: report what the import would do, write nothing.")
    default_region = serializers.CharField(max_length=2, default="AU", help_text="Region of numbers without +code.")


class ImportRowErrorSerializer(serializers.Serializer[Any]):
    row = serializers.IntegerField()
    field = serializers.CharField()
    error = serializers.CharField()


class ImportReportSerializer(serializers.Serializer[Any]):
    dry_run = serializers.BooleanField()
    total_rows = serializers.IntegerField()
    valid = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    duplicates_in_file = serializers.IntegerField()
    on_dnc = serializers.IntegerField()
    invalid = ImportRowErrorSerializer(many=True)


class DncSerializer(serializers.ModelSerializer[DoNotContact]):
    phone = serializers.CharField(source="phone_e164", read_only=True)
    organization = serializers.CharField(source="organization.slug", read_only=True)

    class Meta:
        model = DoNotContact
        fields = ["id", "organization", "phone", "reason", "source", "created_at"]
        read_only_fields = fields


@refuses_unknown_fields
class DncInputSerializer(serializers.Serializer[Any]):
    phone = serializers.CharField(max_length=40)
    region = serializers.CharField(max_length=2, required=False, default="AU")
    reason = serializers.ChoiceField(choices=DncReason.choices, default=DncReason.MANUAL)
    source = serializers.CharField(  # type: ignore[assignment]  # the field's name, not Field.source
        max_length=120, required=False, allow_blank=True, default=""
    )


CONTACT_NOT_FOUND = OpenApiResponse(description="No such contact among the organizations the caller may see.")
DNC_NOT_FOUND = OpenApiResponse(description="No such entry among the organizations the caller may see.")
FORBIDDEN = OpenApiResponse(description="The key lacks the sms scope, or the person is not an owner, admin or manager.")


# -- templates, numbers, campaigns, messages ----------------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that must say its offset or zone: a bare local time is refused, not guessed."""

    def enforce_timezone(self, value: datetime) -> datetime:
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)

    default_error_messages = {"naive": "Give the time with its offset, e.g. 2026-05-01T09:00:00+10:00."}


class TemplateSerializer(serializers.ModelSerializer[Template]):
    organization = serializers.CharField(source="organization.slug", read_only=True)
    placeholders = serializers.SerializerMethodField()

    class Meta:
        model = Template
        fields = ["id", "organization", "name", "body", "placeholders", "created_at", "updated_at"]
        read_only_fields = fields

    def get_placeholders(self, template: Template) -> list[str]:
        try:
            return placeholders_of(template.body)
        except ValueError:
            return []


@refuses_unknown_fields
class TemplateInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=120)
    body = serializers.CharField(
        max_length=1600, help_text="The text, with {first_name}, {last_name} and {link} placeholders if wanted."
    )


class SendingNumberSerializer(serializers.ModelSerializer[SendingNumber]):
    """A sending number with its day so far (the organization's day): ``context["today"]`` maps ids to
    ``sms.selectors.NumberToday``."""

    organization = serializers.CharField(source="organization.slug", read_only=True)
    phone = serializers.CharField(source="phone_e164", read_only=True)
    warmup_day = serializers.SerializerMethodField(help_text="1 on its warm-up start date; 0 or less before it.")
    daily_cap = serializers.SerializerMethodField(help_text="The most it may send today (its warm-up curve).")
    sent_today = serializers.SerializerMethodField()

    class Meta:
        model = SendingNumber
        fields = [
            "id", "organization", "phone", "active", "per_second", "warmup_start", "warmup_curve", "warmup_day",
            "daily_cap", "sent_today",
        ]  # fmt: skip
        read_only_fields = fields

    def _today(self, number: SendingNumber) -> NumberToday:
        today: NumberToday = self.context["today"][number.pk]
        return today

    def get_warmup_day(self, number: SendingNumber) -> int:
        return self._today(number).warmup_day

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_daily_cap(self, number: SendingNumber) -> int | None:
        return self._today(number).daily_cap

    def get_sent_today(self, number: SendingNumber) -> int:
        return self._today(number).sent_today


class CampaignSerializer(serializers.ModelSerializer[Campaign]):
    organization = serializers.CharField(source="organization.slug", read_only=True)
    template_ids = serializers.SerializerMethodField(help_text="Its templates, in the order they take turns.")
    number_ids = serializers.SerializerMethodField()
    audience_tags = serializers.SerializerMethodField(help_text="Contacts with any of these tags; all when empty.")

    class Meta:
        model = Campaign
        fields = [
            "id", "organization", "name", "status", "template_ids", "number_ids", "audience_tags", "link_url",
            "start_at", "launched_at", "completed_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_template_ids(self, campaign: Campaign) -> list[str]:
        return [str(link.template_id) for link in campaign.template_links.all()]

    def get_number_ids(self, campaign: Campaign) -> list[str]:
        return [str(link.number_id) for link in campaign.number_links.all()]

    def get_audience_tags(self, campaign: Campaign) -> list[str]:
        return [tag for tag in campaign.audience_tags.split(",") if tag]


class CampaignLaunchSerializer(serializers.Serializer[Any]):
    jobs_created = serializers.IntegerField(help_text="Send jobs this launch created: 0 when launched again.")
    campaign = CampaignSerializer()


@refuses_unknown_fields
class CampaignInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=120)
    template_ids = serializers.ListField(
        child=serializers.CharField(max_length=64),
        min_length=1,
        max_length=50,
        help_text="Used in turn, in this order.",
        error_messages={"min_length": "Choose at least one template."},
    )
    number_ids = serializers.ListField(
        child=serializers.CharField(max_length=64),
        min_length=1,
        max_length=50,
        error_messages={"min_length": "Choose at least one sending number."},
    )
    audience_tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, default=list, max_length=30
    )
    link_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
    start_at = AwareDateTimeField(required=False, allow_null=True, default=None, help_text="Now when left out.")


class CountsSerializer(serializers.Serializer[Any]):
    QUEUED = serializers.IntegerField()
    SENDING = serializers.IntegerField()
    SENT = serializers.IntegerField()
    DELIVERED = serializers.IntegerField()
    FAILED = serializers.IntegerField()
    SKIPPED = serializers.IntegerField()


class GateCountsSerializer(serializers.Serializer[Any]):
    kill_switch = serializers.IntegerField()
    budget_cap = serializers.IntegerField()
    dnc = serializers.IntegerField()
    no_consent = serializers.IntegerField()
    suppression = serializers.IntegerField()
    quiet_hours = serializers.IntegerField()
    rate_limit = serializers.IntegerField()
    warmup = serializers.IntegerField()


class CampaignStatsSerializer(serializers.Serializer[Any]):
    """The shape of ``sms.selectors.campaign_stats`` (its docstring says how each figure is computed)."""

    counts = CountsSerializer(help_text="Send jobs per state.")
    gates = GateCountsSerializer(help_text="Times each gate held or skipped one of its jobs.")
    cost = serializers.CharField(help_text="Exact sum of the messages' costs, rounded half-up to the cent.")
    currency = serializers.CharField()
    delivery_rate = serializers.FloatField(allow_null=True, help_text="DELIVERED / (SENT + DELIVERED + FAILED).")
    ctr_human = serializers.FloatField(allow_null=True, help_text="Jobs clicked by a person / DELIVERED.")
    ctr_all = serializers.FloatField(allow_null=True, help_text="Jobs clicked at all, bots included / DELIVERED.")
    opt_outs = serializers.IntegerField(help_text="Opt-out keywords (STOP) attributed to the campaign.")
    replies = serializers.IntegerField(help_text="Other replies attributed to the campaign (GET /api/sms/inbound/).")


class MessageSerializer(serializers.ModelSerializer[SendJob]):
    """A send job: one campaign message to one contact. ``cost`` keeps the four decimals it is priced in."""

    organization = serializers.CharField(source="organization.slug", read_only=True)
    campaign = serializers.UUIDField(source="campaign_id", read_only=True)
    contact = serializers.UUIDField(source="contact_id", read_only=True)
    phone = serializers.CharField(source="contact.phone_e164", read_only=True)
    number = serializers.CharField(source="number.phone_e164", read_only=True, allow_null=True, default=None)
    currency = serializers.CharField(source="organization.currency", read_only=True)
    clicks_human = serializers.IntegerField(read_only=True, help_text="Clicks on its short link by people.")
    clicks_all = serializers.IntegerField(read_only=True, help_text="Every click on its short link, bots included.")

    class Meta:
        model = SendJob
        fields = [
            "id", "organization", "campaign", "contact", "phone", "state", "reason", "deferred_until", "number",
            "body", "segments", "cost", "currency", "provider_sid", "error_code", "attempts", "sent_at",
            "delivered_at", "clicks_human", "clicks_all", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


@refuses_unknown_fields
class KillSwitchInputSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField(help_text="true: send nothing until it is turned off.")


class BudgetSerializer(serializers.Serializer[Any]):
    """The shape of ``sms.selectors.budget_view``."""

    currency = serializers.CharField()
    spent_today = serializers.CharField()
    spent_this_month = serializers.CharField()
    daily_cap = serializers.CharField(allow_null=True)
    monthly_cap = serializers.CharField(allow_null=True)
    credits = serializers.IntegerField(help_text="Message segments bought in packs, spent before money.")
    alerts = serializers.ListField(child=serializers.CharField(), help_text="day / month: caps at least 80 % used.")


class KillSwitchSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField()
    budget = BudgetSerializer()


TEMPLATE_NOT_FOUND = OpenApiResponse(description="No such template among the organizations the caller may see.")
NUMBER_NOT_FOUND = OpenApiResponse(description="No such sending number among the organizations the caller may see.")
CAMPAIGN_NOT_FOUND = OpenApiResponse(description="No such campaign among the organizations the caller may see.")
MESSAGE_NOT_FOUND = OpenApiResponse(description="No such message among the organizations the caller may see.")
CONFLICT = OpenApiResponse(description="The campaign's or template's state does not allow this.")
LAUNCH_FORBIDDEN = OpenApiResponse(
    description="The key lacks sms:write, or the person is not an owner, admin or manager of the organization."
)
