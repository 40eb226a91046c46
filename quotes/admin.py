"""Staff screens: the price book (edited in place), and quotes (read-only; every change goes through a service).

Staff write custom quotes (Enterprise, or any tier by arrangement) on their own page: a contact, a tier and the lines,
priced and totalled by ``quotes.pricing``. The lines of a custom quote can be rewritten until it is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import formset_factory
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from qualification.models import QualificationTier
from quotes import services
from quotes.models import AddOn, Plan, Quote, QuoteLine, QuoteStatus
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import User

LINE_FIELDS = ("position", "code", "description", "quantity", "unit_price", "amount")
# Everything on the quote page is read-only: quotes change through the actions and the custom-quote page.
QUOTE_FIELDS = (
    "public_link", "quote_key", "email", "tier", "status", "is_custom", "price_monthly", "currency",
    "configuration", "expires_at", "qualification", "organization", "created_by", "created_at", "sent_at",
    "accepted_at", "rejected_at", "rejection_reason", "expired_at", "edit_lines",
)  # fmt: skip


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "tier",
        "base_monthly",
        "per_user",
        "per_device",
        "included_users",
        "included_devices",
        "currency",
        "custom_quote",
        "active",
    ]
    list_filter = ["active", "custom_quote"]
    ordering = ["sort_order", "tier"]
    fieldsets = (
        (None, {"fields": ("tier", "name", "description", "active", "custom_quote", "sort_order")}),
        (
            "Prices a month (changes apply to new quotes only)",
            {
                "fields": (
                    "currency",
                    "base_monthly",
                    "included_users",
                    "per_user",
                    "included_devices",
                    "per_device",
                    "trial_days",
                )
            },
        ),
    )


class AddOnForm(forms.ModelForm):
    allowed_tiers = forms.MultipleChoiceField(
        choices=QualificationTier.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = AddOn
        fields = [
            "code", "name", "description", "kind", "unit_price", "unit_label", "sms_credits", "allowed_tiers",
            "currency", "max_quantity", "active", "sort_order",
        ]  # fmt: skip


@admin.register(AddOn)
class AddOnAdmin(admin.ModelAdmin):
    form = AddOnForm
    list_display = ["name", "code", "kind", "unit_price", "unit_label", "sms_credits", "tiers", "currency", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name"]
    ordering = ["sort_order", "code"]

    @admin.display(description="Tiers")
    def tiers(self, obj: AddOn) -> str:
        labels = dict(QualificationTier.choices)
        return ", ".join(str(labels.get(tier, tier)) for tier in obj.allowed_tiers or ())


class QuoteLineInline(admin.TabularInline):
    model = QuoteLine
    fields = LINE_FIELDS
    readonly_fields = LINE_FIELDS
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CustomQuoteForm(forms.Form):
    email = forms.EmailField()
    tier = forms.ChoiceField(choices=QualificationTier.choices, initial=QualificationTier.ENTERPRISE)
    currency = forms.CharField(max_length=3, initial="AUD")
    valid_days = forms.IntegerField(min_value=1, max_value=365, initial=30, label="Valid for (days)")
    send_now = forms.BooleanField(required=False, help_text="Email the prospect the link straight away.")


class CustomLineForm(forms.Form):
    code = forms.CharField(max_length=40, required=False, help_text="Optional, e.g. base or onboarding.")
    description = forms.CharField(max_length=200)
    quantity = forms.IntegerField(min_value=1, initial=1)
    unit_price = forms.DecimalField(max_digits=12, decimal_places=4, min_value=0)


CustomLineFormSet = formset_factory(CustomLineForm, extra=4, min_num=1, validate_min=True, can_delete=True)


def _posted_lines(formset: Any) -> list[dict[str, Any]]:
    return [
        {key: form.cleaned_data[key] for key in ("code", "description", "quantity", "unit_price")}
        for form in formset.forms
        if form.cleaned_data and not form.cleaned_data.get("DELETE")
    ]


@admin.register(Quote)
class QuoteAdmin(admin.ModelAdmin):
    list_display = [
        "short_key",
        "email",
        "tier",
        "status",
        "price_monthly",
        "currency",
        "is_custom",
        "expires_at",
        "created_at",
    ]
    list_filter = ["tier", "status", "is_custom"]
    search_fields = ["email", "^quote_key"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]
    fields = QUOTE_FIELDS
    readonly_fields = QUOTE_FIELDS
    inlines = [QuoteLineInline]
    actions = ["send_quotes", "expire_quotes", "reject_quotes"]

    # Quotes change only through services: the change page is read-only, actions and the custom-quote page write.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:quotes_quote_custom"))

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path("custom/", self.admin_site.admin_view(self.custom_quote_view), name="quotes_quote_custom"),
            path("<uuid:pk>/lines/", self.admin_site.admin_view(self.custom_lines_view), name="quotes_quote_lines"),
        ]
        return custom + super().get_urls()

    @admin.display(description="Key", ordering="quote_key")
    def short_key(self, obj: Quote) -> str:
        return f"{obj.quote_key[:6]}…"

    @admin.display(description="Public page")
    def public_link(self, obj: Quote) -> str:
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', obj.url, obj.url)

    @admin.display(description="Lines")
    def edit_lines(self, obj: Quote) -> str:
        if not (obj.is_custom and obj.status == QuoteStatus.DRAFT):
            return "Fixed: only unsent custom quotes can be changed."
        return format_html('<a href="{}">Edit the lines</a>', reverse("admin:quotes_quote_lines", args=[obj.pk]))

    # -- actions ------------------------------------------------------------------------------------------------------

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[Quote], service: Callable[[Quote], bool], done: str
    ) -> None:
        changed, unchanged = 0, 0
        for quote in queryset:
            try:
                if service(quote):
                    changed += 1
                else:
                    unchanged += 1
            except ConflictError as exc:
                self.message_user(request, f"{quote}: {exc.message}", messages.WARNING)
        if changed:
            self.message_user(request, f"{changed} quote(s) {done}.", messages.SUCCESS)
        if unchanged:
            self.message_user(request, f"{unchanged} quote(s) were already {done}.", messages.INFO)

    @admin.action(description="Send the selected quotes to the prospect", permissions=["change"])
    def send_quotes(self, request: HttpRequest, queryset: QuerySet[Quote]) -> None:
        actor = _actor(request)
        self._apply(request, queryset, lambda quote: services.quote_send(quote=quote, actor=actor), "sent")

    @admin.action(description="Expire the selected quotes now", permissions=["change"])
    def expire_quotes(self, request: HttpRequest, queryset: QuerySet[Quote]) -> None:
        actor = _actor(request)
        self._apply(request, queryset, lambda quote: services.quote_expire(quote=quote, actor=actor), "expired")

    @admin.action(description="Reject (withdraw) the selected quotes", permissions=["change"])
    def reject_quotes(self, request: HttpRequest, queryset: QuerySet[Quote]) -> None:
        actor = _actor(request)
        self._apply(
            request,
            queryset,
            lambda quote: services.quote_reject(quote=quote, actor=actor, reason="Withdrawn by staff"),
            "rejected",
        )

    # -- custom quotes ------------------------------------------------------------------------------------------------

    def _render(self, request: HttpRequest, title: str, form: Any, formset: Any, quote: Quote | None) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "form": form,
            "formset": formset,
            "quote": quote,
            "media": self.media + (form.media if form else forms.Media()) + formset.media,
        }
        return TemplateResponse(request, "admin/quotes/quote/custom_quote.html", context)

    @staticmethod
    def _report(request: HttpRequest, form: forms.Form | None, exc: ServiceValidationError) -> None:
        for field, errors in exc.message_dict.items():
            if form is not None and field in form.fields:
                for error in errors:
                    form.add_error(field, error)
            else:
                for error in errors:
                    messages.error(request, error)

    def custom_quote_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        actor = _actor(request)
        form = CustomQuoteForm(request.POST or None)
        plan = Plan.objects.filter(tier=QualificationTier.ENTERPRISE).first()
        initial = (
            [
                {
                    "code": "base",
                    "description": f"{plan.name} managed service",
                    "quantity": 1,
                    "unit_price": plan.base_monthly,
                }
            ]
            if plan is not None
            else []
        )
        formset = CustomLineFormSet(request.POST or None, initial=initial, prefix="lines")
        if request.method == "POST" and actor is not None and form.is_valid() and formset.is_valid():
            try:
                quote = services.quote_create_custom(
                    email=form.cleaned_data["email"],
                    tier=form.cleaned_data["tier"],
                    currency=form.cleaned_data["currency"],
                    valid_for=timedelta(days=form.cleaned_data["valid_days"]),
                    lines=_posted_lines(formset),
                    created_by=actor,
                )
                if form.cleaned_data["send_now"]:
                    services.quote_send(quote=quote, actor=actor)
            except ServiceValidationError as exc:
                self._report(request, form, exc)
            else:
                self.log_addition(request, quote, [{"added": {}}])
                sent = " and sent" if quote.status == QuoteStatus.SENT else ""
                self.message_user(request, f"Custom quote created{sent}: {quote}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:quotes_quote_change", args=[quote.pk]))
        return self._render(request, "Write a custom quote", form, formset, None)

    def custom_lines_view(self, request: HttpRequest, pk: str) -> HttpResponse:
        if not super().has_change_permission(request):
            raise PermissionDenied
        quote = get_object_or_404(Quote, pk=pk)
        initial = [
            {
                "code": line.code,
                "description": line.description,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for line in quote.lines.all()
        ]
        formset = CustomLineFormSet(request.POST or None, initial=initial, prefix="lines")
        actor = _actor(request)
        if request.method == "POST" and actor is not None and formset.is_valid():
            try:
                services.quote_lines_replace(quote=quote, lines=_posted_lines(formset), actor=actor)
            except ServiceValidationError as exc:
                self._report(request, None, exc)
            except ConflictError as exc:
                messages.error(request, exc.message)
            else:
                self.log_change(request, quote, [{"changed": {"fields": ["lines"]}}])
                self.message_user(request, f"Lines updated: {quote}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:quotes_quote_change", args=[quote.pk]))
        return self._render(request, f"Lines of {quote}", None, formset, quote)
