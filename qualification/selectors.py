"""Read-only questions other apps ask about qualifications."""

from __future__ import annotations

from dataclasses import dataclass

from qualification.models import APPROVED_STATUSES, NextStep, Qualification, QualificationTier


@dataclass(frozen=True)
class SelfServeDecision:
    allowed: bool
    message: str
    next_step: str
    qualification: Qualification | None


def self_serve_quote_decision(*, email: str, tier: str) -> SelfServeDecision:
    """May the prospect with ``email`` get a self-serve quote for ``tier`` (``core_plus`` or ``premium``)?"""
    if tier == QualificationTier.ENTERPRISE:
        return SelfServeDecision(False, "Enterprise quotes are prepared by our team after a discovery call.",
                                 NextStep.BOOK_DISCOVERY_CALL, None)  # fmt: skip
    qualification = Qualification.objects.filter(customer_email__iexact=email.strip(), tier=tier).first()
    if qualification is None:
        return SelfServeDecision(False, "Complete the questionnaire for this plan first.", "complete_questionnaire",
                                 None)  # fmt: skip
    if qualification.status in APPROVED_STATUSES:
        return SelfServeDecision(True, "", NextStep.GET_QUOTE, qualification)
    state = qualification.get_status_display().lower()
    return SelfServeDecision(
        False,
        f"Your questionnaire is {state}: next, {qualification.next_step.replace('_', ' ')}.",
        qualification.next_step,
        qualification,
    )
