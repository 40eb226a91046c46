"""Forms of the portal. They check shape; the services check the rules and their errors land on these fields."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from tenancy.emails import email_send
from tenancy.errors import ConflictError
from tenancy.models import Membership, Role, User
from tenancy.services.api_keys import API_SCOPES
from tenancy.services.organizations import INVOICE_EMAILS_MAX, LOGO_MAX_BYTES

PHONE = re.compile(r"^\+?[0-9 ()\-.]{6,31}$")
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def add_service_error(form: forms.Form, exc: Exception) -> None:
    """Put a service's ServiceValidationError / ConflictError on the form fields it names."""
    if isinstance(exc, ConflictError):
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, exc.message)
        return
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, messages in exc.message_dict.items():
            if field in form.fields:
                for message in messages:
                    form.add_error(field, message)
            else:
                for message in messages:
                    form.add_error(None, f"{field.replace('_', ' ').capitalize()}: {message}")
        return
    if isinstance(exc, ValidationError):
        for message in exc.messages:
            form.add_error(None, message)
        return
    raise exc


def service_error_status(exc: Exception) -> int:
    """The HTTP status a page answers with after a service refused: 409 for a conflict, 400 for bad input."""
    return 409 if isinstance(exc, ConflictError) else 400


def service_error_messages(exc: Exception) -> list[str]:
    """The same errors as plain sentences, for actions without a form of their own (row buttons)."""
    if isinstance(exc, ConflictError):
        return [exc.message]
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return [message for messages in exc.message_dict.values() for message in messages]
    if isinstance(exc, ValidationError):
        return list(exc.messages)
    raise exc


class LoginForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True})
    )
    password = forms.CharField(
        strip=False, max_length=4096, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def clean_email(self) -> str:
        # Lockout counts per email: one spelling per address, so changing case does not earn new attempts.
        return self.cleaned_data["email"].strip().lower()


class VerifyForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True, "spellcheck": "false"}
        ),
    )

    def clean_code(self) -> str:
        return re.sub(r"\s+", "", self.cleaned_data["code"])


class MagicLinkForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class PortalPasswordResetForm(PasswordResetForm):
    """Django's reset form (no user enumeration: the same page whether or not the address exists), sending our
    branded ``password_reset`` email through :func:`tenancy.emails.email_send`."""

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        user: User = context["user"]
        path = reverse("portal:password_reset_confirm", kwargs={"uidb64": context["uid"], "token": context["token"]})
        organizations = [m.organization for m in Membership.objects.filter(user=user).select_related("organization")]
        email_send(
            to=to_email,
            template="password_reset",
            context={
                "user_name": user.get_short_name(),
                "path": path,
                "valid_hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600),
            },
            # Brand the message only when the person belongs to exactly one organization.
            organization=organizations[0] if len(organizations) == 1 else None,
        )


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["full_name", "phone"]
        labels = {"full_name": "Full name", "phone": "Phone"}
        widgets = {
            "full_name": forms.TextInput(attrs={"autocomplete": "name"}),
            "phone": forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
        }

    def clean_full_name(self) -> str:
        return self.cleaned_data["full_name"].strip()

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        if phone and not PHONE.match(phone):
            raise ValidationError("Enter a phone number with digits, spaces and an optional leading +.")
        return phone


class TwoFactorConfirmForm(forms.Form):
    token = forms.CharField(
        label="Code from your app",
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_token(self) -> str:
        token = re.sub(r"\s+", "", self.cleaned_data["token"])
        if not token.isdigit():
            raise ValidationError("Enter the digits shown in your authenticator app.")
        return token


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError("That is not your current password.")
        return password


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class SecurityForm(forms.Form):
    require_mfa = forms.BooleanField(
        required=False,
        label="Require two-factor sign-in",
        help_text="Everyone in the organization must set up an authenticator app before using the portal.",
    )


class ColourField(forms.CharField):
    widget = forms.TextInput(attrs={"type": "color"})

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        if not HEX.match(value or ""):
            raise ValidationError("Enter a colour as #RRGGBB.")
        return value.lower()


class BrandingForm(forms.Form):
    display_name = forms.CharField(
        max_length=200, required=False, help_text="Shown instead of the organization's legal name."
    )
    primary_color = ColourField(label="Primary colour", max_length=7)
    accent_color = ColourField(label="Accent colour", max_length=7)
    support_email = forms.EmailField(required=False, max_length=254, help_text="Where your people ask for help.")
    logo = forms.FileField(
        required=False,
        help_text=f"PNG or JPEG, at most {LOGO_MAX_BYTES // 1024} KB.",
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg"}),
    )
    remove_logo = forms.BooleanField(required=False, label="Remove the current logo")

    def clean_logo(self) -> bytes | None:
        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        # Refuse before reading a large upload into memory.
        if upload.size > LOGO_MAX_BYTES:
            raise ValidationError(f"The logo must be at most {LOGO_MAX_BYTES // 1024} KB.")
        return upload.read()


class InvoiceEmailsForm(forms.Form):
    invoice_emails = forms.CharField(
        label="Email invoices to",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text=f"One address per line (an accounts department, say), at most {INVOICE_EMAILS_MAX}. Leave it "
        "empty to email your owners and admins.",
    )


def _scope_choices() -> list[tuple[str, str]]:
    # Read at form time so scopes registered by later areas appear.
    return [(scope, label) for scope, label in sorted(API_SCOPES.items())]


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses this key, e.g. “Reseller sync”.")
    scopes = forms.MultipleChoiceField(choices=_scope_choices, widget=forms.CheckboxSelectMultiple)
    expires_at = forms.DateField(
        required=False,
        label="Expires on",
        help_text="Optional. The key stops working at the end of this day.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, tz: str = "UTC", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz

    def clean_expires_at(self) -> dt.datetime | None:
        day: dt.date | None = self.cleaned_data.get("expires_at")
        if day is None:
            return None
        try:
            zone = zoneinfo.ZoneInfo(self.tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("UTC")
        expires = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=zone)
        if expires <= timezone.now():
            raise ValidationError("The expiry must be in the future.")
        return expires


class InviteAcceptForm(forms.Form):
    full_name = forms.CharField(
        label="Your name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password = forms.CharField(
        label="Choose a password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common password.",
    )
    password_confirm = forms.CharField(
        label="Repeat the password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_full_name(self) -> str:
        return self.cleaned_data["full_name"].strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password_confirm") and data["password"] != data["password_confirm"]:
            self.add_error("password_confirm", "The two passwords differ.")
        return data
