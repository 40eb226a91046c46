"""Forms of the customer's Messaging area (portal/views/messaging*.py). They check shape only: phone numbers, tags,
consent and budgets are judged by the sms services, whose errors land on the fields named here (the field names are
the services' own, so ``portal.forms.add_service_error`` puts each message beside its field)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from sms.models import SendingNumber, Template
from sms.phones import DEFAULT_REGION, region_valid
from sms.services.campaigns import MAX_TEMPLATES
from sms.services.imports import MAX_BYTES

REGION_HELP = "Two-letter code of the country numbers without a +code are read in, e.g. AU or NZ."
TAGS_HELP = "Words separated by commas, e.g. vip, perth."
ORDINALS = ("First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth")


def _region(value: str) -> str:
    region = (value or "").strip().upper()
    if not region_valid(region):
        raise ValidationError(f"{region or 'An empty code'} is not a two-letter region code like AU.")
    return region


def split_tags(text: str) -> list[str]:
    """``"vip, Perth;staff"`` as a list of words; the service lower-cases and de-duplicates them."""
    return [tag.strip() for part in (text or "").split(";") for tag in part.split(",") if tag.strip()]


class RegionField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Default region")
        kwargs.setdefault("help_text", REGION_HELP)
        super().__init__(max_length=2, initial=DEFAULT_REGION, **kwargs)

    def clean(self, value: Any) -> str:
        return _region(super().clean(value))


# -- contacts -----------------------------------------------------------------------------------------------------


class ContactForm(forms.Form):
    """A contact's details. ``phone`` and ``region`` exist only when creating: a contact's number never changes."""

    phone = forms.CharField(
        max_length=40,
        help_text="Any common form, e.g. 0412 345 678 or +61 412 345 678.",
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    region = RegionField()
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    email = forms.CharField(max_length=254, required=False, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    timezone = forms.CharField(
        label="Time zone",
        max_length=64,
        required=False,
        help_text="Optional, e.g. Australia/Perth; your organization's zone when empty. Quiet hours use it.",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    tags = forms.CharField(max_length=500, required=False, help_text=TAGS_HELP)
    consent = forms.BooleanField(
        required=False,
        label="This person agreed to receive messages from us",
        help_text="Campaigns skip contacts without consent.",
    )
    consent_source = forms.CharField(
        label="Where they agreed", max_length=120, required=False, help_text="e.g. web form, shop counter."
    )
    consent_text = forms.CharField(
        label="What they agreed to", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            for name in ("phone", "region", "consent", "consent_source", "consent_text"):
                del self.fields[name]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("consent") and not (data.get("consent_source") or "").strip():
            self.add_error("consent_source", "Say where the consent was given.")
        return data

    def contact_data(self) -> dict[str, Any]:
        """The values the contact services take (``data``)."""
        data = self.cleaned_data
        values = {name: data[name] for name in ("first_name", "last_name", "email", "timezone")}
        values["tags"] = split_tags(data["tags"])
        return values

    def consent_data(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not data.get("consent"):
            return None
        return {"source": data["consent_source"], "text": data["consent_text"]}


class ConsentForm(forms.Form):
    consent_source = forms.CharField(
        label="Where they agreed", max_length=120, help_text="e.g. phone call, web form, shop counter."
    )
    consent_text = forms.CharField(
        label="What they agreed to", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=f"UTF-8 CSV with a header row, at most {MAX_BYTES // (1024 * 1024)} MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    default_region = RegionField()

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        # Refuse before reading a large upload into memory.
        if upload.size > MAX_BYTES:
            raise ValidationError(f"The file is over {MAX_BYTES // (1024 * 1024)} MB.")
        content: bytes = upload.read()
        if not content:
            raise ValidationError("The file is empty.")
        return content


class DncForm(forms.Form):
    phone = forms.CharField(max_length=40, widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}))
    region = RegionField()
    source = forms.CharField(
        label="Note", max_length=120, required=False, help_text="Optional: why, e.g. asked by phone on 3 March."
    )


# -- templates and campaigns ----------------------------------------------------------------------------------------


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=120)
    body = forms.CharField(
        label="Message",
        max_length=1600,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Placeholders: {first_name}, {last_name}, {link}. Your business name and the opt-out line are "
        "added when the text does not have them.",
    )


class CampaignForm(forms.Form):
    """A draft campaign. Templates are chosen in numbered slots, so their order is the person's, not the page's."""

    name = forms.CharField(max_length=120)
    numbers = forms.MultipleChoiceField(
        label="Sending numbers", widget=forms.CheckboxSelectMultiple, help_text="Messages go out from these numbers."
    )
    audience_tags = forms.CharField(
        label="Audience tags",
        max_length=500,
        required=False,
        help_text="Contacts with any of these tags (comma-separated); every contact with consent when empty.",
    )
    link_url = forms.CharField(
        label="Link",
        max_length=500,
        required=False,
        help_text="Where {link} leads, e.g. https://example.com/sale. Each contact gets a short link of their own.",
        widget=forms.URLInput,
    )
    start_at = forms.DateTimeField(
        label="Start",
        required=False,
        help_text="Optional: when sending may begin, in your organization's time zone; at launch when empty.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )

    def __init__(
        self, *args: Any, templates: list[Template], numbers: list[SendingNumber], zone: str, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone
        choices = [("", "(none)"), *((str(template.pk), template.name) for template in templates)]
        self.slots: list[str] = []
        for index in range(max(1, min(MAX_TEMPLATES, len(templates)))):
            name = f"template_{index + 1}"
            self.fields[name] = forms.ChoiceField(
                label=f"{ORDINALS[index]} template", choices=choices, required=index == 0
            )
            self.slots.append(name)
        cast(forms.MultipleChoiceField, self.fields["numbers"]).choices = [
            (str(number.pk), number.phone_e164) for number in numbers
        ]
        # Slots first, then the rest, in the order the page shows them.
        order = ["name", *self.slots, "numbers", "audience_tags", "link_url", "start_at"]
        self.order_fields(order)

    def slot_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.slots]

    def clean_start_at(self) -> dt.datetime | None:
        moment: dt.datetime | None = self.cleaned_data.get("start_at")
        if moment is None:
            return None
        # The input has no zone: it is the organization's wall clock (the form parses it in the active zone).
        naive = moment.replace(tzinfo=None) if moment.tzinfo else moment
        try:
            zone = zoneinfo.ZoneInfo(self.zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("UTC")
        return naive.replace(tzinfo=zone)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = [data.get(name) for name in self.slots if data.get(name)]
        if len(chosen) != len(set(chosen)):
            self.add_error(self.slots[0], "Choose each template once.")
        return data

    def template_ids(self) -> list[str]:
        return [self.cleaned_data[name] for name in self.slots if self.cleaned_data.get(name)]


# -- controls -------------------------------------------------------------------------------------------------------


class KillSwitchForm(forms.Form):
    enabled = forms.TypedChoiceField(choices=[("on", "on"), ("off", "off")], coerce=lambda value: value == "on")
    confirm = forms.BooleanField(required=False, label="Yes, stop every message of this organization now")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("enabled") is True and not data.get("confirm"):
            self.add_error("confirm", "Tick the box to confirm that all sending stops.")
        return data


class SettingsForm(forms.Form):
    business_name = forms.CharField(
        max_length=60,
        required=False,
        help_text="Names you at the start of every message; your organization's name when empty.",
    )
    reply_contact = forms.CharField(
        max_length=120, required=False, help_text="How people reach you when they reply HELP: a phone or an email."
    )
    daily_budget = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False, help_text="Empty: no daily cap."
    )
    monthly_budget = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False, help_text="Empty: no monthly cap."
    )
    messages_per_minute = forms.IntegerField(min_value=1, max_value=100_000)
    suppression_days = forms.IntegerField(
        min_value=0,
        max_value=3650,
        help_text="A contact messaged by a campaign gets no other campaign message for this many days (0: off).",
    )
    opt_out_keywords = forms.CharField(
        label="Opt-out keywords", max_length=300, help_text="Comma-separated; a reply with one of them opts out."
    )
    opt_in_keywords = forms.CharField(label="Opt-in keywords", max_length=300)
    help_keywords = forms.CharField(label="Help keywords", max_length=300)
