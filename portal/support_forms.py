"""Forms of the customer's Support area (portal/views/support.py): a new ticket, a reply, a rating."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from tickets.attachments import ATTACHMENT_MAX_BYTES, ATTACHMENT_TYPES
from tickets.models import Priority
from tickets.services import MAX_BODY

MAX_FILES = 10

PRIORITY_CHOICES = [
    (Priority.P1, "Critical: the business is stopped, e.g. a system everyone needs is down"),
    (Priority.P2, "High: many people are affected or an important task cannot be done"),
    (Priority.P3, "Medium: one person is affected, or there is a workaround"),
    (Priority.P4, "Low: a question, a request or a minor annoyance"),
]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented recipe); cleans to a list, empty when none was chosen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": ",".join(sorted(ATTACHMENT_TYPES)), "multiple": True})
        )
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        single_clean = super().clean
        items = data if isinstance(data, list | tuple) else [data]
        files = [cleaned for cleaned in (single_clean(item, initial) for item in items) if cleaned]
        if len(files) > MAX_FILES:
            raise ValidationError(f"Attach at most {MAX_FILES} files at a time.")
        return files


ATTACHMENT_HELP = (
    f"Optional. Up to {MAX_FILES} files of at most {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB each: "
    "images, PDF, text, CSV, ZIP, Word, Excel or saved emails."
)


class TicketForm(forms.Form):
    subject = forms.CharField(max_length=200, help_text="A few words, e.g. “Cannot print from the front desk”.")
    description = forms.CharField(
        label="What is happening?",
        max_length=MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="What you expected, what happened instead, and since when.",
    )
    priority = forms.ChoiceField(
        label="How urgent is it?", choices=PRIORITY_CHOICES, initial=Priority.P3, widget=forms.RadioSelect
    )
    category = forms.CharField(
        label="Category",
        max_length=60,
        required=False,
        help_text="Optional.",
        widget=forms.TextInput(attrs={"list": "support-categories", "autocomplete": "off"}),
    )
    attachments = MultipleFileField(label="Attachments", required=False, help_text=ATTACHMENT_HELP)


class ReplyForm(forms.Form):
    body = forms.CharField(label="Your reply", max_length=MAX_BODY, widget=forms.Textarea(attrs={"rows": 5}))
    attachments = MultipleFileField(label="Attachments", required=False, help_text=ATTACHMENT_HELP)


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        label="Your rating",
        coerce=int,
        choices=[(5, "5 Excellent"), (4, "4 Good"), (3, "3 Fair"), (2, "2 Poor"), (1, "1 Very poor")],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label="Anything you would like to tell us?",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
