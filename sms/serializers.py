"""How messaging data looks in the API, and what the API accepts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from sms.models import Contact, DncReason, DoNotContact


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
