"""The sales review queue."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from qualification import reports
from qualification.models import NEEDS_HUMAN_STATUSES, Qualification, QualificationStatus
from qualification.services import SALES_GROUP, qualification_reassign, qualification_review
from tenancy.audit import client_ip
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import User


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class ScoreBandFilter(admin.SimpleListFilter):
    title = "score"
    parameter_name = "score"
    BANDS = {"lt50": (0, 49), "50-69": (50, 69), "70-84": (70, 84), "85+": (85, 100)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("lt50", "under 50"), ("50-69", "50 to 69"), ("70-84", "70 to 84"), ("85+", "85 and over"),
                ("none", "no score")]  # fmt: skip

    def queryset(self, request: HttpRequest, queryset: QuerySet[Qualification]) -> QuerySet[Qualification]:
        value = self.value()
        if value == "none":
            return queryset.filter(auto_score__isnull=True)
        if value in self.BANDS:
            low, high = self.BANDS[value]
            return queryset.filter(auto_score__gte=low, auto_score__lte=high)
        return queryset


class OpenFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "needs a decision")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Qualification]) -> QuerySet[Qualification]:
        if self.value() == "open":
            return queryset.filter(status__in=NEEDS_HUMAN_STATUSES, converted=False)
        return queryset


class ReviewActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=500, label="Reason")
    rep = forms.ModelChoiceField(
        queryset=User.objects.filter(groups__name=SALES_GROUP, is_staff=True, is_active=True),
        required=False,
        label="Sales rep",
    )


@admin.register(Qualification)
class QualificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tier", "customer_email", "company_name", "auto_score", "status", "assigned_to",
                    "converted"]  # fmt: skip
    list_filter = [OpenFilter, "tier", "status", ScoreBandFilter, "assigned_to", "converted"]
    search_fields = ["customer_email", "company_name", "name"]
    list_select_related = ["assigned_to"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "tier", "customer_email", "name", "phone", "company_name", "answers", "auto_score",
                       "status", "status_reason", "assigned_to", "assigned_at", "reviewed_by", "reviewed_at",
                       "converted", "converted_at", "organization", "created_at", "updated_at"]  # fmt: skip
    action_form = ReviewActionForm
    actions = ["qualify", "disqualify", "reassign"]
    change_list_template = "admin/qualification/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # prospects submit questionnaires; staff review them

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        everything = Qualification.objects.all()
        extra = {
            "conversion_by_tier": reports.conversion_by_tier(everything),
            "conversion_by_rep": reports.conversion_by_rep(everything),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    def _review(self, request: HttpRequest, queryset: QuerySet[Qualification], status: str) -> None:
        reason = request.POST.get("reason", "")
        done = 0
        for qualification in queryset:
            try:
                qualification_review(
                    qualification=qualification, status=status, reason=reason, actor=_actor(request),
                    ip=client_ip(request),
                )  # fmt: skip
                done += 1
            except (ServiceValidationError, ConflictError) as exc:
                message = exc.message if isinstance(exc, ConflictError) else "; ".join(exc.messages)
                self.message_user(request, f"{qualification.customer_email}: {message}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} qualification(s) set to {QualificationStatus(status).label}.")

    @admin.action(description="Qualify selected prospects")
    def qualify(self, request: HttpRequest, queryset: QuerySet[Qualification]) -> None:
        self._review(request, queryset, QualificationStatus.QUALIFIED)

    @admin.action(description="Disqualify selected prospects (give a reason)")
    def disqualify(self, request: HttpRequest, queryset: QuerySet[Qualification]) -> None:
        self._review(request, queryset, QualificationStatus.NOT_QUALIFIED)

    @admin.action(description="Reassign selected prospects to the chosen sales rep")
    def reassign(self, request: HttpRequest, queryset: QuerySet[Qualification]) -> None:
        rep_id = request.POST.get("rep")
        rep = User.objects.filter(pk=rep_id).first() if rep_id else None
        if rep is None:
            self.message_user(request, "Choose a sales rep to reassign to.", messages.ERROR)
            return
        try:
            for qualification in queryset:
                qualification_reassign(qualification=qualification, rep=rep, actor=_actor(request),
                                       ip=client_ip(request))  # fmt: skip
        except ServiceValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        self.message_user(request, f"Reassigned {queryset.count()} to {rep.email}.")
