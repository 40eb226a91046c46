"""Staff screens for messaging.

Staff manage here what the platform runs on: sending numbers (their warm-up and rate), segment prices, and each
organization's messaging settings, with an action that turns the kill switch on for the selected organizations.
Templates, contacts' details and the do-not-contact list are edited through ``sms.services``, so the same rules hold
as in the API and every consent or do-not-contact change reaches the contact's timeline.

What happened is read-only: consent events, send jobs, replies, short links and clicks. Campaigns are read-only too;
staff oversee them with the pause, resume and cancel actions, which go through ``sms.services.campaigns`` as the
staff member (so they are audited under their name). Nothing here deletes a contact, a campaign or a record.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from sms.admin_records import PhoneSearchAdmin, ReadOnlyMixin
from sms.gates import parse_curve, sending_day, warmup_cap
from sms.models import (
    Campaign,
    CampaignGateCount,
    CampaignNumber,
    CampaignTemplate,
    ConsentEvent,
    Contact,
    DoNotContact,
    JobState,
    SendingNumber,
    SmsPrice,
    SmsSettings,
    Template,
)
from sms.phones import DEFAULT_REGION, e164, region_valid
from sms.services.campaigns import campaign_cancel, campaign_pause, campaign_resume, template_create, template_update
from sms.services.contacts import contact_update, dnc_add, dnc_remove
from sms.services.controls import SETTINGS_FIELDS, kill_switch_set, settings_update
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization, User


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def _dry_run(form: forms.BaseForm, work: Callable[[], object]) -> None:
    """Run a service and roll it back, putting what it refuses on the form's fields: the form then refuses exactly
    what the service would, and the admin saves through the same service afterwards."""
    try:
        with transaction.atomic():
            work()
            transaction.set_rollback(True)
    except ServiceValidationError as bad:
        for field, reasons in bad.message_dict.items():
            form.add_error(field if field in form.fields else None, reasons)


class PhoneForm(forms.ModelForm):
    """Takes ``phone_e164`` as people write it and stores it as E.164, read in the organization's country when it
    has no country code."""

    phone_e164 = forms.CharField(max_length=30, label="Phone number", help_text="Stored as E.164 (+61491570006).")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        organization: Organization | None = data.get("organization") or getattr(self.instance, "organization", None)
        country = organization.country if organization and region_valid(organization.country) else DEFAULT_REGION
        if data.get("phone_e164"):
            try:
                data["phone_e164"] = e164(data["phone_e164"], country)
            except ValueError as bad:
                self.add_error("phone_e164", str(bad))
        return data


# -- numbers, prices, settings -----------------------------------------------------------------------------------------


class SendingNumberForm(PhoneForm):
    per_second = forms.IntegerField(
        min_value=1, max_value=1000, initial=1, help_text="Messages per second it may send."
    )

    class Meta:
        model = SendingNumber
        fields = ["organization", "phone_e164", "warmup_start", "warmup_curve", "per_second", "active"]

    def clean_warmup_curve(self) -> str:
        try:
            steps = parse_curve(self.cleaned_data.get("warmup_curve") or "")
        except ValueError as bad:
            raise forms.ValidationError(f"{str(bad)[:1].upper()}{str(bad)[1:]}.") from None
        return "/".join(str(step) for step in steps)


@admin.register(SendingNumber)
class SendingNumberAdmin(PhoneSearchAdmin):
    form = SendingNumberForm
    list_display = ["phone_e164", "organization", "active", "warmup_start", "warmup_day", "cap_today",
                    "warmup_curve", "per_second"]  # fmt: skip
    list_filter = ["active", "organization"]
    search_fields = ["phone_e164", "organization__name", "organization__slug"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]

    def get_readonly_fields(self, request: HttpRequest, obj: SendingNumber | None = None) -> list[str]:
        # A number is what its jobs were sent from: to use another, add it and make this one inactive.
        return ["created_at"] if obj is None else ["organization", "phone_e164", "created_at"]

    def _day(self, number: SendingNumber) -> int:
        today = timezone.now().astimezone(ZoneInfo(number.organization.timezone)).date()
        return sending_day(number.warmup_start, today)

    @admin.display(description="Warm-up day today")
    def warmup_day(self, number: SendingNumber) -> int | str:
        day = self._day(number)
        return day if day >= 1 else f"starts {number.warmup_start:%d %b %Y}"

    @admin.display(description="Cap today")
    def cap_today(self, number: SendingNumber) -> int | str:
        try:
            return warmup_cap(self._day(number), parse_curve(number.warmup_curve))
        except ValueError:
            return "curve not valid"


class SmsPriceForm(forms.ModelForm):
    segment_price = forms.DecimalField(min_value=0, max_digits=8, decimal_places=4)

    class Meta:
        model = SmsPrice
        fields = ["prefix", "segment_price", "currency", "description"]

    def clean_prefix(self) -> str:
        prefix = "".join((self.cleaned_data.get("prefix") or "").split())
        if not prefix.startswith("+") or not (prefix == "+" or prefix[1:].isdigit()) or len(prefix) > 8:
            raise forms.ValidationError("A + and up to 7 digits: +61 or +614, or + alone for everywhere else.")
        return prefix

    def clean_currency(self) -> str:
        currency = (self.cleaned_data.get("currency") or "").strip().upper()
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            raise forms.ValidationError("A three-letter currency code such as AUD.")
        return currency


@admin.register(SmsPrice)
class SmsPriceAdmin(admin.ModelAdmin):
    form = SmsPriceForm
    list_display = ["prefix", "segment_price", "currency", "description", "updated_at"]
    list_filter = ["currency"]
    search_fields = ["prefix", "description"]


def _settings_changes(form: forms.ModelForm, data: dict[str, Any]) -> dict[str, Any]:
    """The settings a form changes (all of them for new settings): the service names the changed ones in errors."""
    adding = form.instance._state.adding
    return {name: data.get(name) for name in SETTINGS_FIELDS if adding or name in form.changed_data}


class SmsSettingsForm(forms.ModelForm):
    class Meta:
        model = SmsSettings
        fields = ["organization", "kill_switch", *SETTINGS_FIELDS]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        organization = data.get("organization") or getattr(self.instance, "organization", None)
        if organization is not None and not self.errors:
            _dry_run(self, lambda: settings_update(organization=organization, **_settings_changes(self, data)))
        return data


@admin.register(SmsSettings)
class SmsSettingsAdmin(admin.ModelAdmin):
    """Saved through ``sms.services.controls``: the settings and the kill switch are audited there, and turning the
    switch off releases the jobs it held."""

    form = SmsSettingsForm
    list_display = ["organization", "business_name", "kill_switch", "daily_budget", "monthly_budget",
                    "messages_per_minute", "suppression_days", "updated_at"]  # fmt: skip
    list_filter = ["kill_switch"]
    search_fields = ["organization__name", "organization__slug", "business_name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    actions = ["kill_switch_on"]

    def get_readonly_fields(self, request: HttpRequest, obj: SmsSettings | None = None) -> list[str]:
        fixed = ["budget_alerted", "updated_at"]
        return fixed if obj is None else ["organization", *fixed]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the defaults would come back, with the kill switch off

    def save_model(self, request: HttpRequest, obj: SmsSettings, form: forms.ModelForm, change: bool) -> None:
        organization, actor = form.cleaned_data.get("organization") or obj.organization, _actor(request)
        saved = settings_update(organization=organization, actor=actor, **_settings_changes(form, form.cleaned_data))
        if saved.kill_switch != form.cleaned_data["kill_switch"]:
            saved = kill_switch_set(organization=organization, enabled=form.cleaned_data["kill_switch"], actor=actor)
        obj.pk, obj._state.adding = saved.pk, False

    @admin.action(description="Turn the kill switch on (stop all sending) for the selected organizations",
                  permissions=["change"])  # fmt: skip
    def kill_switch_on(self, request: HttpRequest, queryset: QuerySet[SmsSettings]) -> None:
        turned = 0
        for row in queryset.filter(kill_switch=False).select_related("organization"):
            kill_switch_set(organization=row.organization, enabled=True, actor=_actor(request))
            turned += 1
        self.message_user(request, f"Kill switch turned on for {turned} organization(s); nothing more is sent "
                                   "until it is turned off.", messages.SUCCESS)  # fmt: skip


# -- contacts, consent, do-not-contact ---------------------------------------------------------------------------------


def _on_dnc() -> Exists:
    """Whether a contact's number is on its organization's do-not-contact list."""
    return Exists(
        DoNotContact.objects.filter(organization_id=OuterRef("organization_id"), phone_e164=OuterRef("phone_e164"))
    )


class DncFilter(admin.SimpleListFilter):
    title = "do-not-contact"
    parameter_name = "on_dnc"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "On the list"), ("no", "Not on it")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> QuerySet[Contact]:
        if self.value() == "yes":
            return queryset.filter(_on_dnc())
        if self.value() == "no":
            return queryset.filter(~_on_dnc())
        return queryset


CONTACT_FIELDS = ("first_name", "last_name", "email", "timezone", "tags", "attributes")


def _contact_changes(form: forms.ModelForm, data: dict[str, Any]) -> dict[str, Any]:
    return {name: data.get(name) for name in CONTACT_FIELDS if name in form.changed_data}


class ContactForm(forms.ModelForm):
    tags = forms.CharField(required=False, max_length=500, help_text="Words separated by commas.")

    class Meta:
        model = Contact
        fields = list(CONTACT_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = ", ".join(self.instance.tag_list)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            _dry_run(self, lambda: contact_update(contact=copy.copy(self.instance), data=_contact_changes(self, data)))
        return data


class ConsentEventInline(ReadOnlyMixin, admin.TabularInline):
    model, extra, verbose_name_plural = ConsentEvent, 0, "Consent timeline"
    fields = readonly_fields = ("at", "kind", "source", "text")


@admin.register(Contact)
class ContactAdmin(PhoneSearchAdmin):
    form = ContactForm
    list_display = ["phone_e164", "name", "email", "organization", "tag_text", "consent", "on_dnc", "created_at"]
    list_filter = [("consent_at", admin.EmptyFieldListFilter), DncFilter, "organization"]
    search_fields = ["phone_e164", "first_name", "last_name", "email"]
    list_select_related = ["organization"]
    readonly_fields = ["organization", "phone_e164", "consent_at", "consent_source", "consent_text", "created_at",
                       "updated_at"]  # fmt: skip
    fieldsets = (
        (None, {"fields": ("organization", "phone_e164", *CONTACT_FIELDS)}),
        ("Consent (recorded by the contact's own actions; read-only)",
         {"fields": ("consent_at", "consent_source", "consent_text")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )  # fmt: skip
    inlines = [ConsentEventInline]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # contacts arrive through the portal, the API or an import, which record their consent

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting a contact would delete its consent timeline and the messages it was sent

    def get_queryset(self, request: HttpRequest) -> QuerySet[Contact]:
        return super().get_queryset(request).annotate(on_dnc=_on_dnc())

    def save_model(self, request: HttpRequest, obj: Contact, form: forms.ModelForm, change: bool) -> None:
        contact_update(contact=obj, data=_contact_changes(form, form.cleaned_data))

    @admin.display(description="Tags")
    def tag_text(self, contact: Contact) -> str:
        return ", ".join(contact.tag_list)

    @admin.display(description="Consent", boolean=True, ordering="consent_at")
    def consent(self, contact: Contact) -> bool:
        return contact.has_consent

    @admin.display(description="On DNC", boolean=True, ordering="on_dnc")
    def on_dnc(self, contact: Contact) -> bool:
        return bool(contact.on_dnc)  # type: ignore[attr-defined]


class DncForm(PhoneForm):
    class Meta:
        model = DoNotContact
        fields = ["organization", "phone_e164", "reason", "source"]


@admin.register(DoNotContact)
class DoNotContactAdmin(PhoneSearchAdmin):
    """Entries are added and removed through the services (each noted in the contact's timeline), never edited."""

    form = DncForm
    list_display = ["phone_e164", "organization", "reason", "source", "created_at"]
    list_filter = ["reason", "organization"]
    search_fields = ["phone_e164", "source", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    show_full_result_count = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: DoNotContact, form: forms.ModelForm, change: bool) -> None:
        who = getattr(request.user, "email", "staff")
        entry = dnc_add(organization=obj.organization, phone_e164=obj.phone_e164, reason=obj.reason,
                        source=obj.source or f"added by {who} in the staff admin")  # fmt: skip
        obj.pk, obj._state.adding = entry.pk, False

    def delete_model(self, request: HttpRequest, obj: DoNotContact) -> None:
        who = getattr(request.user, "email", "staff")
        dnc_remove(organization=obj.organization, phone_e164=obj.phone_e164,
                   source=f"removed by {who} in the staff admin")  # fmt: skip

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DoNotContact]) -> None:
        for entry in queryset.select_related("organization"):
            self.delete_model(request, entry)


class TemplateForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = ["organization", "name", "body"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        organization = data.get("organization") or getattr(self.instance, "organization", None)
        if organization is not None and not self.errors:
            _dry_run(self, lambda: template_create(organization=organization, name=data["name"], body=data["body"]))
        return data


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateForm
    list_display = ["name", "organization", "updated_at"]
    list_filter = ["organization"]
    search_fields = ["name", "body", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]

    def get_readonly_fields(self, request: HttpRequest, obj: Template | None = None) -> list[str]:
        return ["created_at", "updated_at"] if obj is None else ["organization", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Template, form: forms.ModelForm, change: bool) -> None:
        if change:
            template_update(template=obj, name=obj.name, body=obj.body)
        else:
            created = template_create(organization=obj.organization, name=obj.name, body=obj.body)
            obj.pk, obj._state.adding = created.pk, False


class RecordInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    related: tuple[str, ...] = ()  # loaded with the rows, as each row shows them

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related(*self.related)


class CampaignTemplateInline(RecordInline):
    model, related = CampaignTemplate, ("template",)
    fields = readonly_fields = ("position", "template")


class CampaignNumberInline(RecordInline):
    model, related = CampaignNumber, ("number",)
    fields = readonly_fields = ("number",)


class GateCountInline(RecordInline):
    model, verbose_name_plural = CampaignGateCount, "Jobs held or skipped, by gate"
    fields = readonly_fields = ("gate", "count")


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only: campaigns are drafted in the portal or the API, which check templates, numbers and audience."""

    list_display = ["name", "organization", "status", "launched_at", "jobs"]
    list_filter = ["status", "organization"]
    search_fields = ["name", "organization__name", "organization__slug"]
    list_select_related = ["organization"]
    fields = readonly_fields = ("name", "organization", "status", "audience_tags", "link_url", "start_at",
                                "launched_at", "completed_at", "created_by", "created_at", "updated_at")  # fmt: skip
    inlines = [CampaignTemplateInline, CampaignNumberInline, GateCountInline]
    actions = ["pause", "resume", "cancel"]

    def has_oversee_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sms.change_campaign")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        # Every state's count in the one query that lists the campaigns.
        counts = {f"jobs_{state.lower()}": Count("jobs", filter=Q(jobs__state=state)) for state in JobState.values}
        return super().get_queryset(request).annotate(**counts)

    @admin.display(description="Jobs")
    def jobs(self, campaign: Campaign) -> str:
        counts = [(getattr(campaign, f"jobs_{state.lower()}"), label.lower()) for state, label in JobState.choices]
        return ", ".join(f"{n} {label}" for n, label in counts if n) or "none"

    def _each(self, request: HttpRequest, queryset: QuerySet[Campaign], move: Any, verb: str) -> None:
        done, refused = 0, []
        for campaign in queryset.select_related("organization"):
            try:
                move(campaign=campaign, actor=_actor(request))
                done += 1
            except (ConflictError, PermissionDenied) as bad:
                refused.append(f"{campaign.name}: {bad}")
        self.message_user(request, f"{done} campaign(s) {verb}.", messages.SUCCESS if done else messages.INFO)
        if refused:
            self.message_user(request, "Not done: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Pause the selected campaigns", permissions=["oversee"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, campaign_pause, "paused")

    @admin.action(description="Resume the selected paused campaigns", permissions=["oversee"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, campaign_resume, "resumed")

    @admin.action(description="Cancel the selected campaigns (queued messages are not sent)", permissions=["oversee"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, campaign_cancel, "canceled")


# -- what was sent and received ----------------------------------------------------------------------------------------
