"""Staff screens for what happened in messaging, all read-only: consent events, send jobs, replies, short links and
their clicks. Registered when ``sms.admin`` is imported."""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from sms.error_codes import describe
from sms.models import Campaign, Click, ConsentEvent, InboundMessage, SendJob, ShortLink
from sms.phones import e164


class ReadOnlyMixin:
    """A record of what happened: staff read it; nobody adds, changes or deletes it here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PhoneSearchAdmin(admin.ModelAdmin):
    """Search also finds a number typed the way people write it (0491 570 006), not only as stored."""

    phone_lookup = "phone_e164"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> Any:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        with contextlib.suppress(ValueError):
            found = found | queryset.filter(**{self.phone_lookup: e164(search_term)})
        return found, may_have_duplicates


class RecordAdmin(ReadOnlyMixin, PhoneSearchAdmin):
    """Every field shown, nothing editable; lists skip counting the whole table."""

    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


@admin.register(ConsentEvent)
class ConsentEventAdmin(RecordAdmin):
    list_display = ["at", "kind", "phone_e164", "contact", "organization", "source"]
    list_filter = ["kind", "organization"]
    search_fields = ["phone_e164", "source"]
    list_select_related = ["contact", "organization"]


# -- templates and campaigns -------------------------------------------------------------------------------------------


@admin.register(SendJob)
class SendJobAdmin(RecordAdmin):
    phone_lookup = "contact__phone_e164"
    list_display = ["id", "campaign", "contact", "organization", "state", "reason", "number", "segments", "cost",
                    "error", "sent_at", "delivered_at"]  # fmt: skip
    list_filter = ["state", "reason", "error_code", "campaign"]
    search_fields = ["contact__phone_e164", "provider_sid", "campaign__name"]
    list_select_related = ["campaign", "contact", "organization", "number"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "error"]

    @admin.display(description="Error", ordering="error_code")
    def error(self, job: SendJob) -> str:
        """The provider's error code with what it means (``30007: the carrier filtered the message ...``)."""
        return describe(job.error_code) or "-"


@admin.register(InboundMessage)
class InboundMessageAdmin(RecordAdmin):
    phone_lookup = "from_e164"
    list_display = ["received_at", "from_e164", "to_e164", "kind", "body", "contact", "campaign", "organization"]
    list_filter = ["kind", "organization"]
    search_fields = ["from_e164", "body", "provider_sid"]
    list_select_related = ["contact", "campaign", "organization"]


class ClickInline(ReadOnlyMixin, admin.TabularInline):
    model, extra = Click, 0
    fields = readonly_fields = ("at", "is_bot", "user_agent")


@admin.register(ShortLink)
class ShortLinkAdmin(RecordAdmin):
    phone_lookup = "job__contact__phone_e164"
    list_display = ["token", "organization", "campaign", "url", "clicks", "expires_at"]
    search_fields = ["token", "url"]
    list_filter = ["organization"]
    list_select_related = ["organization", "job__campaign"]
    inlines = [ClickInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShortLink]:
        clicks = {"humans": Count("clicks", filter=Q(clicks__is_bot=False)),
                  "bots": Count("clicks", filter=Q(clicks__is_bot=True))}  # fmt: skip
        return super().get_queryset(request).annotate(**clicks)

    @admin.display(description="Campaign")
    def campaign(self, link: ShortLink) -> Campaign | None:
        return link.job.campaign if link.job else None

    @admin.display(description="Clicks", ordering="humans")
    def clicks(self, link: ShortLink) -> str:
        return f"{link.humans} by people, {link.bots} by bots or previews"  # type: ignore[attr-defined]


@admin.register(Click)
class ClickAdmin(RecordAdmin):
    phone_lookup = "link__job__contact__phone_e164"
    list_display = ["at", "link", "is_bot", "user_agent", "organization"]
    list_filter = ["is_bot"]
    search_fields = ["link__token", "user_agent"]
    list_select_related = ["link", "organization"]
