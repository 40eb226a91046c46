"""Every write to qualifications: submit, assign to sales, review, reassign, convert, and the discovery call being
booked or canceled.

Every service that moves a qualification to another status publishes ``qualification.status_changed`` (``id``,
``tier``, ``status``, ``previous_status``) through the outbox in the same transaction; submission, which sets the
first status, publishes ``qualification.submitted`` instead.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from events.services import publish
from notifications.services import is_email_address, notify
from qualification import scoring
from qualification.models import (
    CALL_SCHEDULABLE_STATUSES,
    NEEDS_HUMAN_STATUSES,
    Qualification,
    QualificationStatus,
    QualificationTier,
)
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError, field_error
from tenancy.models import Organization, User
from tenancy.text import unstorable

SALES_GROUP = "Sales"
PHONE_PATTERN = re.compile(r"^\+?[0-9 ()-]{6,20}$")
ENTERPRISE_FIELDS = ("current_it_setup", "project_scope", "timeline", "budget_notes")
REVIEW_OUTCOMES = (QualificationStatus.QUALIFIED, QualificationStatus.NOT_QUALIFIED)


def _optional(data: dict[str, Any], field: str) -> Any:
    """An optional answer: left out or null is empty; anything else is checked as given (false, [] or {} is not
    text, and is refused rather than read as empty)."""
    value = data.get(field)
    return "" if value is None else value


def _clean_contact(tier: str, data: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, str]:
    email = str(data.get("customer_email") or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        errors["customer_email"] = ["Enter a valid email address." if email else "This field is required."]
    contact = {"customer_email": email}
    for field, limit in (("name", 150), ("company_name", 200)):
        value = _optional(data, field)
        if not isinstance(value, str) or len(value) > limit:
            errors[field] = [f"At most {limit} characters."]
        contact[field] = str(value).strip()
    phone = _optional(data, "phone")
    if phone != "" and (not isinstance(phone, str) or not PHONE_PATTERN.fullmatch(phone.strip())):
        errors["phone"] = ["Enter a phone number of digits, spaces, +, ( ) or -."]
    contact["phone"] = str(phone).strip()
    if tier == QualificationTier.ENTERPRISE and not contact["company_name"]:
        errors["company_name"] = ["This field is required."]
    return contact


def _clean_premium_extras(data: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, str]:
    website = _optional(data, "website")
    if not isinstance(website, str):
        errors["website"] = ["Enter a valid website address."]
        website = ""
    website = website.strip()
    if website:
        if "://" not in website:
            website = f"https://{website}"
        try:
            URLValidator(schemes=["http", "https"])(website)
        except ValidationError:
            errors["website"] = ["Enter a valid website address."]
    industry = _optional(data, "industry")
    if not isinstance(industry, str) or len(industry) > 100:
        errors["industry"] = ["At most 100 characters."]
    return {"website": website, "industry": str(industry).strip()}


def _clean_enterprise(data: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, str]:
    cleaned = {}
    for field in ENTERPRISE_FIELDS:
        value = _optional(data, field)
        if not isinstance(value, str) or len(value) > 4000:
            errors[field] = ["At most 4000 characters."]
            continue
        cleaned[field] = value.strip()
    for required in ("current_it_setup", "project_scope"):
        if required not in errors and not cleaned.get(required):
            errors[required] = ["This field is required."]
    return cleaned


def _publish_status_changed(qualification: Qualification, previous: str) -> None:
    publish(
        None,
        "qualification.status_changed",
        {"id": qualification.id, "tier": qualification.tier, "status": qualification.status,
         "previous_status": previous},
    )  # fmt: skip


def _pick_sales_rep() -> User | None:
    """The active Sales staff user with the fewest open assignments (ties: longest-standing account first); None
    when there is none (or no Sales group)."""
    open_filter = Q(qualifications__status__in=NEEDS_HUMAN_STATUSES, qualifications__converted=False)
    return (
        User.objects.filter(groups__name=SALES_GROUP, is_active=True, is_staff=True)
        .annotate(open_count=Count("qualifications", filter=open_filter))
        .order_by("open_count", "date_joined", "email")
        .first()
    )


def _notify_assigned(qualification: Qualification, rep: User) -> None:
    if is_email_address(rep.email):
        # The rep is MSP staff (no member of any customer) and the prospect has usually no organization yet: a
        # platform notice to the rep's address.
        notify(
            organization=None,
            event_type="sales.qualification_assigned",
            addresses=[rep.email],
            template="qualification_assigned",
            context={
                "rep_name": rep.get_short_name(),
                "tier": qualification.get_tier_display(),
                "status": qualification.get_status_display(),
                "score": qualification.auto_score,
                "company": qualification.company_name or qualification.customer_email,
                "path": f"/admin/qualification/qualification/{qualification.pk}/change/",
            },
        )


def _assign(qualification: Qualification, rep: User | None) -> None:
    qualification.assigned_to = rep
    qualification.assigned_at = timezone.now() if rep else None
    qualification.save(update_fields=["assigned_to", "assigned_at", "updated_at"])
    if rep is not None:
        _notify_assigned(qualification, rep)


def qualification_submit(*, tier: str, data: dict[str, Any]) -> Qualification:
    """Validate, score and store a questionnaire. Bad input raises ServiceValidationError naming every field; a
    second submission of the same email for the same tier raises ConflictError and changes nothing."""
    if tier not in QualificationTier.values:
        raise field_error("tier", f"Tier must be one of {', '.join(QualificationTier.values)}.")
    errors: dict[str, list[str]] = {
        field: ["Contains a NUL or an unpaired surrogate character; send plain text."]
        for field, value in data.items()
        if isinstance(field, str) and field and not unstorable(field) and unstorable(value)
    }
    contact = _clean_contact(tier, data, errors)
    answers: dict[str, Any] = {}
    score: scoring.Score | None = None
    try:
        if tier == QualificationTier.CORE_PLUS:
            core = scoring.clean_core_plus(data)
            score = scoring.score_core_plus(core)
            answers = {**core.__dict__, "current_it_support": list(core.current_it_support)}
        elif tier == QualificationTier.PREMIUM:
            extras = _clean_premium_extras(data, errors)
            premium = scoring.clean_premium(data)
            score = scoring.score_premium(premium)
            answers = {
                **premium.__dict__,
                **extras,
                "it_infrastructure": list(premium.it_infrastructure),
                "compliance_needs": list(premium.compliance_needs),
            }
        else:
            answers = _clean_enterprise(data, errors)
    except scoring.AnswerError as exc:
        errors.update(exc.errors)
    if errors:
        raise ServiceValidationError(errors)
    status = score.status if score else QualificationStatus.SUBMITTED
    try:
        with transaction.atomic():
            # One waiting for a person is written already assigned to the rep chosen for it.
            rep = _pick_sales_rep() if status in NEEDS_HUMAN_STATUSES else None
            qualification = Qualification.objects.create(
                tier=tier,
                answers=answers,
                auto_score=score.score if score else None,
                status=status,
                assigned_to=rep,
                assigned_at=timezone.now() if rep else None,
                **contact,
            )
            if rep is not None:
                _notify_assigned(qualification, rep)
            publish(
                None,
                "qualification.submitted",
                {"id": qualification.id, "tier": tier, "status": status, "auto_score": qualification.auto_score},
            )
    except IntegrityError as exc:
        raise ConflictError(
            f"A {QualificationTier(tier).label} questionnaire for this email was already submitted.",
            field="customer_email",
        ) from exc
    return qualification


def qualification_review(
    *, qualification: Qualification, status: str, reason: str = "", actor: User | None, ip: str | None = None
) -> Qualification:
    """Staff decide: QUALIFIED or NOT_QUALIFIED (a reason is required to disqualify)."""
    if status not in REVIEW_OUTCOMES:
        raise field_error("status", "Choose QUALIFIED or NOT_QUALIFIED.")
    if status == QualificationStatus.NOT_QUALIFIED and not reason.strip():
        raise field_error("reason", "Give a reason when disqualifying.")
    with transaction.atomic():
        locked = Qualification.objects.select_for_update().get(pk=qualification.pk)
        if locked.converted:
            raise ConflictError("This prospect is already a customer.")
        previous = locked.status
        locked.status = status
        locked.status_reason = reason.strip()[:500]
        locked.reviewed_by = actor
        locked.reviewed_at = timezone.now()
        locked.save(update_fields=["status", "status_reason", "reviewed_by", "reviewed_at", "updated_at"])
        audit_record(
            action="qualification.reviewed",
            actor=actor,
            target=locked,
            changes={"status": [previous, status], "reason": locked.status_reason},
            ip=ip,
        )
        publish(None, "qualification.reviewed", {"id": locked.id, "tier": locked.tier, "status": status})
        if previous != status:
            _publish_status_changed(locked, previous)
    return locked


def qualification_call_scheduled(
    *, qualification: Qualification, meeting_at: datetime, actor_label: str = "Calendly"
) -> str | None:
    """The prospect booked their discovery call for ``meeting_at``: move to DISCOVERY_CALL_SCHEDULED from a status
    where a call makes sense (``CALL_SCHEDULABLE_STATUSES``). Returns the status it had before, or None when nothing
    changed (already scheduled, a final status, or already a customer)."""
    with transaction.atomic():
        locked = Qualification.objects.select_for_update().get(pk=qualification.pk)
        if locked.converted or locked.status not in CALL_SCHEDULABLE_STATUSES:
            return None
        previous = locked.status
        locked.status = QualificationStatus.DISCOVERY_CALL_SCHEDULED
        locked.save(update_fields=["status", "updated_at"])
        audit_record(
            action="qualification.call_scheduled",
            actor_label=actor_label,
            target=locked,
            changes={"status": [previous, locked.status], "meeting_at": meeting_at.isoformat()},
        )
        _publish_status_changed(locked, previous)
    qualification.status = locked.status
    return previous


def qualification_call_canceled(
    *, qualification: Qualification, restore_status: str, actor_label: str = "Calendly"
) -> bool:
    """The prospect's discovery call was canceled and no other is booked: move back from DISCOVERY_CALL_SCHEDULED to
    ``restore_status``, the status it had before. Nothing changes (False) when staff have moved it on since, when it
    is already a customer, or when ``restore_status`` is not one a call can be booked from."""
    if restore_status not in CALL_SCHEDULABLE_STATUSES:
        return False
    with transaction.atomic():
        locked = Qualification.objects.select_for_update().get(pk=qualification.pk)
        if locked.converted or locked.status != QualificationStatus.DISCOVERY_CALL_SCHEDULED:
            return False
        previous = locked.status
        locked.status = restore_status
        locked.save(update_fields=["status", "updated_at"])
        audit_record(
            action="qualification.call_canceled",
            actor_label=actor_label,
            target=locked,
            changes={"status": [previous, restore_status]},
        )
        _publish_status_changed(locked, previous)
    qualification.status = locked.status
    return True


def qualification_reassign(
    *, qualification: Qualification, rep: User, actor: User | None, ip: str | None = None
) -> Qualification:
    if not (rep.is_staff and rep.is_active and rep.groups.filter(name=SALES_GROUP).exists()):
        raise field_error("assigned_to", "Assign to an active staff user in the Sales group.")
    with transaction.atomic():
        locked = Qualification.objects.select_for_update().get(pk=qualification.pk)
        previous = locked.assigned_to.email if locked.assigned_to else None
        _assign(locked, rep)
        audit_record(
            action="qualification.reassigned",
            actor=actor,
            target=locked,
            changes={"assigned_to": [previous, rep.email]},
            ip=ip,
        )
    return locked


def qualification_mark_converted(*, email: str, tier: str, organization: Organization) -> int:
    """The prospect completed checkout: their qualification for ``tier`` becomes converted (idempotent)."""
    return Qualification.objects.filter(customer_email__iexact=email, tier=tier, converted=False).update(
        converted=True, converted_at=timezone.now(), organization=organization, updated_at=timezone.now()
    )
