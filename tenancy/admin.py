"""Staff screens for tenancy. Writes with business rules go through services; the audit log is read-only."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse

from tenancy import services
from tenancy.audit import audit_record, client_ip
from tenancy.errors import ConflictError
from tenancy.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    Partner,
    PartnerMembership,
    User,
)
from tenancy.services.api_keys import API_SCOPES


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class KeelUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class KeelUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user", "organization"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = KeelUserChangeForm
    add_form = KeelUserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "last_login", "date_joined"]
    list_filter = ["is_staff", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "phone")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = [MembershipInline]


class PartnerMembershipInline(admin.TabularInline):
    model = PartnerMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "organizations_count", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PartnerMembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Partner]:
        return super().get_queryset(request).annotate(_orgs=Count("organizations"))

    @admin.display(description="Organizations", ordering="_orgs")
    def organizations_count(self, obj: Partner) -> int:
        return obj._orgs  # type: ignore[attr-defined]


class SuspendForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tier", "status", "partner", "country", "currency", "members_count", "created_at"]
    list_filter = ["tier", "status", "partner", "country"]
    search_fields = ["name", "slug", "stripe_customer_id", "qbo_customer_id", "ninjaone_org_id"]
    list_select_related = ["partner"]
    readonly_fields = ["status", "suspended_reason", "invoice_emails", "created_at", "updated_at"]
    fieldsets = (
        (None, {"fields": ("name", "slug", "tier", "partner", "status", "suspended_reason")}),
        ("Locale", {"fields": ("timezone", "currency", "country")}),
        ("Security", {"fields": ("require_mfa",)}),
        (
            "Branding",
            {"fields": ("brand_display_name", "brand_primary_color", "brand_accent_color", "brand_support_email")},
        ),
        ("Billing", {"fields": ("invoice_emails",)}),
        ("Third-party ids", {"fields": ("stripe_customer_id", "qbo_customer_id", "ninjaone_org_id")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )
    actions = ["suspend", "reactivate", "export_json"]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return super().get_queryset(request).defer("brand_logo").annotate(_members=Count("memberships"))

    @admin.display(description="Members", ordering="_members")
    def members_count(self, obj: Organization) -> int:
        return obj._members  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Organization, form: forms.ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            audit_record(
                action="organization.updated",
                organization=obj,
                actor=_actor(request),
                target=obj,
                changes={"fields": sorted(form.changed_data)},
                ip=client_ip(request),
            )
            return
        created = services.organization_create(
            name=obj.name,
            slug=obj.slug,
            tier=obj.tier,
            timezone=obj.timezone,
            currency=obj.currency,
            country=obj.country,
            partner=obj.partner,
            actor=_actor(request),
            ip=client_ip(request),
        )
        obj.pk = created.pk
        obj._state.adding = False
        super().save_model(request, obj, form, True)

    @admin.action(description="Suspend selected organizations")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        for org in queryset:
            services.organization_suspend(
                organization=org,
                reason="Suspended by staff",
                actor=_actor(request),
                ip=client_ip(request),
            )
        self.message_user(request, f"Suspended {queryset.count()} organization(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected organizations")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        for org in queryset:
            services.organization_reactivate(organization=org, actor=_actor(request), ip=client_ip(request))
        self.message_user(request, f"Reactivated {queryset.count()} organization(s).", messages.SUCCESS)

    @admin.action(description="Export data (JSON) of the selected organization")
    def export_json(self, request: HttpRequest, queryset: QuerySet[Organization]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one organization to export.", messages.ERROR)
            return None
        org = queryset.get()
        data = services.organization_export(organization=org, actor=_actor(request), ip=client_ip(request))
        response = HttpResponse(json.dumps(data, indent=2), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{org.slug}-export.json"'
        return response


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization__partner"]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    list_select_related = ["user", "organization"]
    autocomplete_fields = ["user", "organization"]

    def save_model(self, request: HttpRequest, obj: Membership, form: forms.ModelForm, change: bool) -> None:
        if change and "role" in form.changed_data:
            try:
                services.membership_change_role(
                    membership=Membership.objects.get(pk=obj.pk),
                    role=obj.role,
                    actor=_actor(request),
                    ip=client_ip(request),
                )
            except ConflictError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            return
        super().save_model(request, obj, form, change)


@admin.register(PartnerMembership)
class PartnerMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "partner", "created_at"]
    list_filter = ["partner"]
    search_fields = ["user__email", "partner__name"]
    list_select_related = ["user", "partner"]
    autocomplete_fields = ["user", "partner"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role", "organization"]
    search_fields = ["email", "organization__name"]
    list_select_related = ["organization"]
    readonly_fields = [f.name for f in Invitation._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # invitations are sent from the portal, which emails the link

    @admin.action(description="Revoke selected invitations")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        for invitation in queryset.select_related("organization"):
            services.invitation_revoke(invitation=invitation, actor=_actor(request), ip=client_ip(request))


class ApiKeyCreateForm(forms.ModelForm):
    scope_choices = forms.MultipleChoiceField(
        choices=[], widget=forms.CheckboxSelectMultiple, label="Scopes", initial=["read"]
    )

    class Meta:
        model = ApiKey
        fields = ["name", "organization", "partner", "expires_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scope_choices"].choices = sorted(API_SCOPES.items())  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("organization")) == bool(data.get("partner")):
            raise forms.ValidationError("Choose exactly one of organization or partner.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "organization", "partner", "scopes", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["partner", "organization"]
    search_fields = ["name", "prefix", "organization__name", "partner__name"]
    list_select_related = ["organization", "partner"]
    actions = ["revoke", "rotate"]

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        if obj is None:
            return ["name", "organization", "partner", "scope_choices", "expires_at"]
        return [
            "name",
            "prefix",
            "organization",
            "partner",
            "scopes",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "created_by",
            "created_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return [] if obj is None else self.get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        key, raw = services.api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scope_choices"],
            organization=form.cleaned_data.get("organization"),
            partner=form.cleaned_data.get("partner"),
            expires_at=form.cleaned_data.get("expires_at"),
            created_by=_actor(request),
            ip=client_ip(request),
        )
        obj.pk = key.pk
        obj._state.adding = False
        self.message_user(request, f"Copy the key now; it is not shown again: {raw}", messages.WARNING)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.select_related("organization"):
            services.api_key_revoke(api_key=key, actor=_actor(request), ip=client_ip(request))
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)

    @admin.action(description="Rotate selected key (shows the new secret once)")
    def rotate(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.select_related("organization", "partner"):
            new_key, raw = services.api_key_rotate(api_key=key, actor=_actor(request), ip=client_ip(request))
            self.message_user(request, f"{new_key.name}: copy the new key now: {raw}", messages.WARNING)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor_label", "organization", "target_label", "ip_address"]
    list_filter = ["action", "organization"]
    search_fields = ["actor_label", "target_label", "action", "organization__name"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


from tenancy import admin_controls  # noqa: E402, F401  (rate-limit policies, feature flags, scheduled reports)
