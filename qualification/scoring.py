"""Qualification scoring: the Core+ and Premium tables, exactly. Pure: plain values in, plain values out.

``clean_core_plus`` / ``clean_premium`` check the scored answers against their vocabularies and raise
:class:`AnswerError` naming every bad field at once; ``score_core_plus`` / ``score_premium`` turn clean answers into a
score and a status. The API and the questionnaire forms both go through these, so they accept exactly the same input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# -- statuses ---------------------------------------------------------------------------------------------------------

AUTO_APPROVED = "AUTO_APPROVED"
MANUAL_REVIEW = "MANUAL_REVIEW"
APPROVED = "APPROVED"
CONDITIONAL_APPROVAL = "CONDITIONAL_APPROVAL"
DISCOVERY_CALL = "DISCOVERY_CALL"
DISCOVERY_CALL_SCHEDULED = "DISCOVERY_CALL_SCHEDULED"  # the prospect booked the call (Calendly); not a score outcome
NOT_QUALIFIED = "NOT_QUALIFIED"
QUALIFIED = "QUALIFIED"
SUBMITTED = "SUBMITTED"

CORE_PLUS_APPROVAL_SCORE = 70
PREMIUM_APPROVED_SCORE = 85
PREMIUM_CONDITIONAL_SCORE = 70
PREMIUM_DISCOVERY_SCORE = 50

# -- vocabularies and points ------------------------------------------------------------------------------------------

BUSINESS_TYPE_POINTS = {"small_business": 30, "medium": 25, "soho": 10}
IT_SUPPORT_POINTS = {"another_msp": 15, "part_time": 10, "none": 5}
SPECIFIC_PAIN_POINTS = ("security", "downtime", "slow_support", "compliance", "backups", "growth")
PAIN_POINT_POINTS = {**dict.fromkeys(SPECIFIC_PAIN_POINTS, 20), "other": 10}
TIMELINES = ("immediately", "within_3_months", "within_6_months", "just_exploring")
CORE_PLUS_TIMELINE_POINTS = {"immediately": 0, "within_3_months": 0, "within_6_months": 0, "just_exploring": -10}

IT_INFRASTRUCTURE = (
    "servers", "workstations", "laptops", "network", "firewall", "wifi", "cloud", "email", "backup", "voip",
    "printers", "mobile_devices",
)  # fmt: skip
COMPLIANCE_NEEDS = ("hipaa", "pci_dss", "soc2", "iso27001", "gdpr", "essential_eight", "nist")
BUDGET_POINTS = {"under_1000": 0, "1000_2499": 7, "2500_4999": 10, "5000_plus": 10}

EIN_PATTERN = re.compile(r"^\d{2}-\d{7}$")


class AnswerError(ValueError):
    """Bad answers, by field: ``{"business_type": ["..."]}``."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Score:
    score: int
    status: str


# -- value checks -----------------------------------------------------------------------------------------------------


def _one_of(errors: dict[str, list[str]], answers: Mapping[str, Any], field: str, choices: Any) -> str | None:
    value = answers.get(field)
    if value is None or value == "":
        errors[field] = ["This field is required."]
        return None
    if not isinstance(value, str) or value not in choices:
        errors[field] = [f"{value!r} is not one of: {', '.join(choices)}."]
        return None
    return value


def _integer(
    errors: dict[str, list[str]], answers: Mapping[str, Any], field: str, low: int, high: int | None = None
) -> int | None:
    value = answers.get(field)
    if value is None or value == "":
        errors[field] = ["This field is required."]
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        if len(value.strip()) > 18:  # int() refuses text of over 4300 digits; no answer here comes near 18
            errors[field] = ["Enter a smaller number."]
            return None
        number = int(value.strip())
    if number is None:
        errors[field] = ["Enter a whole number."]
        return None
    if number < low or (high is not None and number > high):
        errors[field] = [f"Enter a number from {low} to {high}." if high is not None else f"Enter {low} or more."]
        return None
    return number


def _choices(
    errors: dict[str, list[str]], answers: Mapping[str, Any], field: str, vocabulary: Any, *, allow_empty: bool
) -> list[str] | None:
    value = answers.get(field, [] if allow_empty else None)
    if value is None:
        errors[field] = ["This field is required."]
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        errors[field] = ["Give a list of choices."]
        return None
    unknown = [item for item in value if item not in vocabulary]
    if unknown:
        errors[field] = [f"{', '.join(map(repr, unknown))} not in: {', '.join(vocabulary)}."]
        return None
    if len(set(value)) != len(value):
        errors[field] = ["Each choice may appear only once."]
        return None
    if not value and not allow_empty:
        errors[field] = ["Choose at least one."]
        return None
    return list(value)


def _boolean(errors: dict[str, list[str]], answers: Mapping[str, Any], field: str) -> bool | None:
    value = answers.get(field)
    if isinstance(value, bool):
        return value
    errors[field] = ["Answer true or false." if value is not None else "This field is required."]
    return None


# -- Core+ ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorePlusAnswers:
    business_type: str
    current_it_support: tuple[str, ...]
    tech_comfort_level: int
    pain_point: str
    timeline: str
    pain_point_detail: str = ""


def clean_core_plus(answers: Mapping[str, Any]) -> CorePlusAnswers:
    errors: dict[str, list[str]] = {}
    business_type = _one_of(errors, answers, "business_type", tuple(BUSINESS_TYPE_POINTS))
    support = _choices(errors, answers, "current_it_support", tuple(IT_SUPPORT_POINTS), allow_empty=False)
    if support and "none" in support and len(support) > 1:
        errors["current_it_support"] = ["'none' cannot be combined with other answers."]
    comfort = _integer(errors, answers, "tech_comfort_level", 1, 5)
    pain_point = _one_of(errors, answers, "pain_point", tuple(PAIN_POINT_POINTS))
    detail = answers.get("pain_point_detail")
    detail = "" if detail is None else detail  # left out or null; false, [] or {} is refused below
    if not isinstance(detail, str) or len(detail) > 1000:
        errors["pain_point_detail"] = ["Describe it in at most 1000 characters."]
    elif pain_point == "other" and not detail.strip():
        errors["pain_point_detail"] = ["Tell us about the problem when you choose 'other'."]
    timeline = _one_of(errors, answers, "timeline", TIMELINES)
    if errors:
        raise AnswerError(errors)
    assert business_type and support and comfort and pain_point and timeline  # noqa: S101 - narrowed by errors
    return CorePlusAnswers(business_type, tuple(support), comfort, pain_point, timeline, detail.strip())


def comfort_points(level: int) -> int:
    return 25 if level >= 3 else 15 if level == 2 else 5


def score_core_plus(answers: CorePlusAnswers) -> Score:
    score = (
        BUSINESS_TYPE_POINTS[answers.business_type]
        + max(IT_SUPPORT_POINTS[item] for item in answers.current_it_support)
        + comfort_points(answers.tech_comfort_level)
        + PAIN_POINT_POINTS[answers.pain_point]
        + CORE_PLUS_TIMELINE_POINTS[answers.timeline]
    )
    score = max(0, min(100, score))
    return Score(score, AUTO_APPROVED if score >= CORE_PLUS_APPROVAL_SCORE else MANUAL_REVIEW)


# -- Premium ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PremiumAnswers:
    years_in_business: int
    it_infrastructure: tuple[str, ...]
    security_posture: int
    compliance_needs: tuple[str, ...]
    budget_range: str
    decision_maker: bool
    timeline: str
    ein: str
    employee_count: int
    locations: int


def clean_premium(answers: Mapping[str, Any]) -> PremiumAnswers:
    errors: dict[str, list[str]] = {}
    years = _integer(errors, answers, "years_in_business", 0)
    infrastructure = _choices(errors, answers, "it_infrastructure", IT_INFRASTRUCTURE, allow_empty=True)
    posture = _integer(errors, answers, "security_posture", 1, 5)
    compliance = _choices(errors, answers, "compliance_needs", COMPLIANCE_NEEDS, allow_empty=True)
    budget = _one_of(errors, answers, "budget_range", tuple(BUDGET_POINTS))
    decision_maker = _boolean(errors, answers, "decision_maker")
    timeline = _one_of(errors, answers, "timeline", TIMELINES)
    ein = answers.get("ein")
    if not isinstance(ein, str) or not EIN_PATTERN.fullmatch(ein.strip()):
        errors["ein"] = ["Enter the EIN as NN-NNNNNNN."]
    employees = _integer(errors, answers, "employee_count", 1)
    locations = _integer(errors, answers, "locations", 1)
    if errors:
        raise AnswerError(errors)
    assert years is not None and infrastructure is not None and posture and compliance is not None  # noqa: S101
    assert budget and decision_maker is not None and timeline and employees and locations  # noqa: S101
    return PremiumAnswers(
        years, tuple(infrastructure), posture, tuple(compliance), budget, decision_maker, timeline,
        str(ein).strip(), employees, locations,
    )  # fmt: skip


def years_points(years: int) -> int:
    return 25 if years >= 5 else 15 if years >= 3 else 5


def infrastructure_points(count: int) -> int:
    return 20 if count >= 5 else 12 if count >= 3 else 5


def posture_points(level: int) -> int:
    return 15 if level >= 4 else 10 if level == 3 else 5


def premium_status(score: int) -> str:
    if score >= PREMIUM_APPROVED_SCORE:
        return APPROVED
    if score >= PREMIUM_CONDITIONAL_SCORE:
        return CONDITIONAL_APPROVAL
    if score >= PREMIUM_DISCOVERY_SCORE:
        return DISCOVERY_CALL
    return NOT_QUALIFIED


def score_premium(answers: PremiumAnswers) -> Score:
    score = (
        years_points(answers.years_in_business)
        + infrastructure_points(len(answers.it_infrastructure))
        + posture_points(answers.security_posture)
        + (15 if answers.compliance_needs else 5)
        + BUDGET_POINTS[answers.budget_range]
        + (5 if answers.decision_maker else 0)
        + (0 if answers.timeline == "just_exploring" else 10)
    )
    score = max(0, min(100, score))
    return Score(score, premium_status(score))


# -- plan selector ----------------------------------------------------------------------------------------------------

CORE_PLUS = "core_plus"
PREMIUM = "premium"
ENTERPRISE = "enterprise"


def recommend_tier(*, people: int, regulated: bool, around_the_clock: bool) -> str:
    """The plan-selector's advice: Enterprise for round-the-clock cover or over 200 people, Premium for regulated
    businesses or over 50 people, otherwise Core+."""
    if around_the_clock or people > 200:
        return ENTERPRISE
    if regulated or people > 50:
        return PREMIUM
    return CORE_PLUS
