"""Demo qualifications in every status, for `manage.py seed_demo` (idempotent)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from qualification.models import Qualification, QualificationStatus
from qualification.services import qualification_call_scheduled, qualification_review, qualification_submit

CORE = {"business_type": "small_business", "current_it_support": ["another_msp"], "tech_comfort_level": 3,
        "pain_point": "security", "timeline": "immediately"}  # fmt: skip
PREMIUM = {"ein": "12-3456789", "industry": "Health", "employee_count": 60, "locations": 2, "years_in_business": 6,
           "it_infrastructure": ["servers", "laptops", "network", "firewall", "cloud"], "security_posture": 4,
           "compliance_needs": ["hipaa"], "budget_range": "5000_plus", "decision_maker": True,
           "timeline": "immediately"}  # fmt: skip
ENTERPRISE = {"current_it_setup": "Three sites, 700 endpoints, on-premises AD", "project_scope": "24x7 managed SOC",
              "timeline": "Next quarter", "budget_notes": "Board approved"}  # fmt: skip

# email, tier, answers, staff decision or booked call (or None)
PROSPECTS: list[tuple[str, str, dict[str, Any], tuple[str, str] | None]] = [
    ("olivia@brightdental.test", "core_plus", CORE, None),  # AUTO_APPROVED 90
    ("sam@cornerbakery.test", "core_plus", {**CORE, "business_type": "soho", "current_it_support": ["part_time"]},
     None),  # MANUAL_REVIEW 65
    ("lee@harbourlaw.test", "core_plus", {**CORE, "business_type": "soho", "current_it_support": ["part_time"]},
     ("QUALIFIED", "")),
    ("kim@tinytoys.test", "core_plus", {**CORE, "business_type": "soho", "current_it_support": ["none"],
     "tech_comfort_level": 1, "timeline": "just_exploring"}, ("DISCOVERY_CALL_SCHEDULED", "")),  # booked a call
    ("ravi@medigroup.test", "premium", PREMIUM, None),  # APPROVED 100
    ("jo@freightline.test", "premium", {**PREMIUM, "years_in_business": 3, "budget_range": "1000_2499",
     "decision_maker": False}, None),  # CONDITIONAL_APPROVAL 83
    ("ana@greenbuild.test", "premium", {**PREMIUM, "years_in_business": 1, "compliance_needs": [],
     "budget_range": "1000_2499", "decision_maker": False}, None),  # DISCOVERY_CALL 57
    ("tom@smallcafe.test", "premium", {**PREMIUM, "years_in_business": 0, "it_infrastructure": ["wifi"],
     "security_posture": 1, "compliance_needs": [], "budget_range": "under_1000", "decision_maker": False,
     "timeline": "just_exploring"}, None),  # NOT_QUALIFIED 20
    ("cio@megacorp.test", "enterprise", ENTERPRISE, None),  # SUBMITTED
]  # fmt: skip


@transaction.atomic
def seed() -> list[str]:
    lines = []
    for email, tier, answers, decision in PROSPECTS:
        qualification = Qualification.objects.filter(customer_email=email, tier=tier).first()
        if qualification is None:
            company = email.split("@")[1].split(".")[0].title()
            qualification = qualification_submit(
                tier=tier, data={"customer_email": email, "name": company, "company_name": company, **answers}
            )
            if decision and decision[0] == QualificationStatus.DISCOVERY_CALL_SCHEDULED:
                # Calendly would tell us (integrations.calendly); the demo moves the status only, without a booking.
                meeting_at = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
                qualification_call_scheduled(qualification=qualification, meeting_at=meeting_at, actor_label="Demo")
            elif decision:
                qualification = qualification_review(
                    qualification=qualification, status=decision[0], reason=decision[1], actor=None
                )
        lines.append(f"{qualification.get_tier_display():10} {qualification.status:20} {email}")
    return lines
