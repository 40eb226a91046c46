"""The scoring tables of the Sell issue, row by row, with every threshold boundary and every invalid value."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qualification import scoring as s

# A Core+ baseline scoring 30 + 15 + 25 + 20 + 0 = 90; each test changes one answer.
CORE = {
    "business_type": "small_business",
    "current_it_support": ["another_msp"],
    "tech_comfort_level": 3,
    "pain_point": "security",
    "timeline": "immediately",
}


def core(**changes: Any) -> s.Score:
    return s.score_core_plus(s.clean_core_plus({**CORE, **changes}))


@pytest.mark.parametrize(("value", "points"), [("small_business", 30), ("medium", 25), ("soho", 10)])
def test_core_business_type(value, points):
    assert core(business_type=value).score == 90 - 30 + points


@pytest.mark.parametrize(
    ("value", "points"),
    [
        (["another_msp"], 15),
        (["part_time"], 10),
        (["none"], 5),
        (["part_time", "another_msp"], 15),  # the highest counts
        (["another_msp", "part_time"], 15),
    ],
)
def test_core_current_it_support_takes_the_highest(value, points):
    assert core(current_it_support=value).score == 90 - 15 + points


@pytest.mark.parametrize(("level", "points"), [(5, 25), (4, 25), (3, 25), (2, 15), (1, 5), ("2", 15)])
def test_core_tech_comfort_level(level, points):
    assert core(tech_comfort_level=level).score == 90 - 25 + points


@pytest.mark.parametrize("pain", ["security", "downtime", "slow_support", "compliance", "backups", "growth"])
def test_core_specific_pain_point_scores_20(pain):
    assert core(pain_point=pain).score == 90


def test_core_other_pain_point_scores_10_and_needs_detail():
    assert core(pain_point="other", pain_point_detail="Printers jam").score == 80
    with pytest.raises(s.AnswerError) as exc:
        core(pain_point="other")
    assert list(exc.value.errors) == ["pain_point_detail"]


@pytest.mark.parametrize(
    ("timeline", "points"),
    [("immediately", 0), ("within_3_months", 0), ("within_6_months", 0), ("just_exploring", -10)],
)
def test_core_timeline(timeline, points):
    assert core(timeline=timeline).score == 90 + points


def test_core_minimum_and_maximum():
    assert core().score == 90
    lowest = core(business_type="soho", current_it_support=["none"], tech_comfort_level=1, pain_point="other",
                  pain_point_detail="x", timeline="just_exploring")  # fmt: skip
    assert lowest == s.Score(10 + 5 + 5 + 10 - 10, s.MANUAL_REVIEW)


@pytest.mark.parametrize(
    ("changes", "score", "status"),
    [
        # 30 + 15 + 25 + 10 - 10 = 70: the lowest approved score
        ({"pain_point": "other", "pain_point_detail": "x", "timeline": "just_exploring"}, 70, s.AUTO_APPROVED),
        # 25 + 10 + 25 + 20 - 10 = 70
        (
            {"business_type": "medium", "current_it_support": ["part_time"], "timeline": "just_exploring"},
            70,
            s.AUTO_APPROVED,
        ),
        # 30 + 10 + 25 + 10 - 10 = 65 < 70
        (
            {
                "current_it_support": ["part_time"],
                "pain_point": "other",
                "pain_point_detail": "x",
                "timeline": "just_exploring",
            },
            65,
            s.MANUAL_REVIEW,
        ),
        # 25 + 15 + 15 + 10 + 0 = 65
        (
            {"business_type": "medium", "tech_comfort_level": 2, "pain_point": "other", "pain_point_detail": "x"},
            65,
            s.MANUAL_REVIEW,
        ),
        # 10 + 15 + 25 + 20 + 0 = 70
        ({"business_type": "soho"}, 70, s.AUTO_APPROVED),
        # 10 + 15 + 25 + 20 - 10 = 60
        ({"business_type": "soho", "timeline": "just_exploring"}, 60, s.MANUAL_REVIEW),
    ],
)
def test_core_threshold(changes, score, status):
    assert core(**changes) == s.Score(score, status)


def test_core_69_70_boundary_via_status_rule():
    # No combination of Core+ answers scores 69 (all points are multiples of 5), so the rule itself is checked too.
    assert s.CORE_PLUS_APPROVAL_SCORE == 70
    assert core(business_type="soho") == s.Score(70, s.AUTO_APPROVED)
    assert core(business_type="soho", current_it_support=["part_time"]) == s.Score(65, s.MANUAL_REVIEW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("business_type", "enterprise"),
        ("business_type", "SMALL_BUSINESS"),
        ("business_type", 3),
        ("business_type", None),
        ("current_it_support", []),
        ("current_it_support", ["none", "part_time"]),
        ("current_it_support", ["in_house"]),
        ("current_it_support", "part_time"),
        ("current_it_support", ["part_time", "part_time"]),
        ("tech_comfort_level", 0),
        ("tech_comfort_level", 6),
        ("tech_comfort_level", 2.5),
        ("tech_comfort_level", True),
        ("tech_comfort_level", "high"),
        ("pain_point", "printers"),
        ("pain_point", ""),
        ("timeline", "next_year"),
        ("timeline", None),
    ],
)
def test_core_invalid_value_names_the_field(field, value):
    with pytest.raises(s.AnswerError) as exc:
        s.clean_core_plus({**CORE, field: value})
    assert list(exc.value.errors) == [field]


def test_core_reports_every_bad_field_at_once():
    with pytest.raises(s.AnswerError) as exc:
        s.clean_core_plus({})
    assert set(exc.value.errors) == {"business_type", "current_it_support", "tech_comfort_level", "pain_point",
                                     "timeline"}  # fmt: skip


# A Premium baseline scoring 25 + 20 + 15 + 15 + 10 + 5 + 10 = 100.
PREMIUM = {
    "years_in_business": 5,
    "it_infrastructure": ["servers", "workstations", "laptops", "network", "firewall"],
    "security_posture": 4,
    "compliance_needs": ["hipaa"],
    "budget_range": "5000_plus",
    "decision_maker": True,
    "timeline": "immediately",
    "ein": "12-3456789",
    "employee_count": 40,
    "locations": 2,
}


def premium(**changes: Any) -> s.Score:
    return s.score_premium(s.clean_premium({**PREMIUM, **changes}))


@pytest.mark.parametrize(("years", "points"), [(0, 5), (2, 5), (3, 15), (4, 15), (5, 25), (30, 25)])
def test_premium_years_in_business(years, points):
    assert premium(years_in_business=years).score == 100 - 25 + points


@pytest.mark.parametrize(("count", "points"), [(0, 5), (1, 5), (2, 5), (3, 12), (4, 12), (5, 20), (12, 20)])
def test_premium_it_infrastructure(count, points):
    assert premium(it_infrastructure=list(s.IT_INFRASTRUCTURE[:count])).score == 100 - 20 + points


@pytest.mark.parametrize(("level", "points"), [(5, 15), (4, 15), (3, 10), (2, 5), (1, 5)])
def test_premium_security_posture(level, points):
    assert premium(security_posture=level).score == 100 - 15 + points


@pytest.mark.parametrize(("needs", "points"), [(["hipaa"], 15), (["gdpr", "essential_eight"], 15), ([], 5)])
def test_premium_compliance_needs(needs, points):
    assert premium(compliance_needs=needs).score == 100 - 15 + points


@pytest.mark.parametrize(
    ("budget", "points"), [("under_1000", 0), ("1000_2499", 7), ("2500_4999", 10), ("5000_plus", 10)]
)
def test_premium_budget_range(budget, points):
    assert premium(budget_range=budget).score == 100 - 10 + points


@pytest.mark.parametrize(("decision_maker", "points"), [(True, 5), (False, 0)])
def test_premium_decision_maker(decision_maker, points):
    assert premium(decision_maker=decision_maker).score == 100 - 5 + points


@pytest.mark.parametrize(
    ("timeline", "points"),
    [("immediately", 10), ("within_3_months", 10), ("within_6_months", 10), ("just_exploring", 0)],
)
def test_premium_timeline(timeline, points):
    assert premium(timeline=timeline).score == 100 - 10 + points


@pytest.mark.parametrize(
    ("changes", "score", "status"),
    [
        ({}, 100, s.APPROVED),
        # 85: 15 + 20 + 15 + 15 + 10 + 0 + 10
        ({"years_in_business": 3, "decision_maker": False}, 85, s.APPROVED),
        # 84: 25 + 12 + 15 + 15 + 7 + 0 + 10 = 84
        (
            {"it_infrastructure": ["servers", "wifi", "cloud"], "budget_range": "1000_2499", "decision_maker": False},
            84,
            s.CONDITIONAL_APPROVAL,
        ),
        # 70: 15 + 20 + 15 + 5 + 10 + 5 + 0 = 70
        ({"years_in_business": 3, "compliance_needs": [], "timeline": "just_exploring"}, 70, s.CONDITIONAL_APPROVAL),
        # 69: 25 + 12 + 10 + 15 + 7 + 0 + 0 = 69
        (
            {
                "it_infrastructure": ["servers", "wifi", "cloud"],
                "security_posture": 3,
                "budget_range": "1000_2499",
                "decision_maker": False,
                "timeline": "just_exploring",
            },
            69,
            s.DISCOVERY_CALL,
        ),
        # 50: 5 + 20 + 10 + 5 + 0 + 0 + 10 = 50
        (
            {
                "years_in_business": 1,
                "security_posture": 3,
                "compliance_needs": [],
                "budget_range": "under_1000",
                "decision_maker": False,
            },
            50,
            s.DISCOVERY_CALL,
        ),
        # 49: 5 + 12 + 10 + 15 + 7 + 0 + 0 = 49
        (
            {
                "years_in_business": 1,
                "it_infrastructure": ["servers", "wifi", "cloud"],
                "security_posture": 3,
                "budget_range": "1000_2499",
                "decision_maker": False,
                "timeline": "just_exploring",
            },
            49,
            s.NOT_QUALIFIED,
        ),
        # The minimum: 5 + 5 + 5 + 5 + 0 + 0 + 0 = 20
        (
            {
                "years_in_business": 0,
                "it_infrastructure": [],
                "security_posture": 1,
                "compliance_needs": [],
                "budget_range": "under_1000",
                "decision_maker": False,
                "timeline": "just_exploring",
            },
            20,
            s.NOT_QUALIFIED,
        ),
    ],
)
def test_premium_thresholds(changes, score, status):
    assert premium(**changes) == s.Score(score, status)


@pytest.mark.parametrize(
    ("score", "status"),
    [
        (100, s.APPROVED),
        (85, s.APPROVED),
        (84, s.CONDITIONAL_APPROVAL),
        (70, s.CONDITIONAL_APPROVAL),
        (69, s.DISCOVERY_CALL),
        (50, s.DISCOVERY_CALL),
        (49, s.NOT_QUALIFIED),
        (0, s.NOT_QUALIFIED),
    ],
)
def test_premium_status_rule(score, status):
    assert s.premium_status(score) == status


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("years_in_business", -1),
        ("years_in_business", "five"),
        ("it_infrastructure", ["servers", "mainframe"]),
        ("it_infrastructure", ["servers", "servers"]),
        ("it_infrastructure", "servers"),
        ("security_posture", 0),
        ("security_posture", 6),
        ("compliance_needs", ["sox"]),
        ("compliance_needs", None),
        ("budget_range", "10000_plus"),
        ("budget_range", 5000),
        ("decision_maker", "yes"),
        ("decision_maker", 1),
        ("decision_maker", None),
        ("timeline", "someday"),
        ("ein", "123456789"),
        ("ein", "12-345678"),
        ("ein", None),
        ("employee_count", 0),
        ("locations", 0),
        ("locations", "two"),
    ],
)
def test_premium_invalid_value_names_the_field(field, value):
    with pytest.raises(s.AnswerError) as exc:
        s.clean_premium({**PREMIUM, field: value})
    assert list(exc.value.errors) == [field]


core_answers = st.fixed_dictionaries(
    {
        "business_type": st.sampled_from(list(s.BUSINESS_TYPE_POINTS)),
        "current_it_support": st.one_of(
            st.just(["none"]),
            st.lists(st.sampled_from(["another_msp", "part_time"]), min_size=1, max_size=2, unique=True),
        ),
        "tech_comfort_level": st.integers(1, 5),
        "pain_point": st.sampled_from(list(s.PAIN_POINT_POINTS)),
        "pain_point_detail": st.just("detail"),
        "timeline": st.sampled_from(list(s.TIMELINES)),
    }
)


@given(core_answers)
def test_core_score_is_bounded_and_status_follows_the_threshold(answers):
    result = s.score_core_plus(s.clean_core_plus(answers))
    assert 0 <= result.score <= 100
    assert (result.status == s.AUTO_APPROVED) == (result.score >= 70)


premium_answers = st.fixed_dictionaries(
    {
        "years_in_business": st.integers(0, 60),
        "it_infrastructure": st.lists(st.sampled_from(list(s.IT_INFRASTRUCTURE)), unique=True),
        "security_posture": st.integers(1, 5),
        "compliance_needs": st.lists(st.sampled_from(list(s.COMPLIANCE_NEEDS)), unique=True),
        "budget_range": st.sampled_from(list(s.BUDGET_POINTS)),
        "decision_maker": st.booleans(),
        "timeline": st.sampled_from(list(s.TIMELINES)),
        "ein": st.just("12-3456789"),
        "employee_count": st.integers(1, 10_000),
        "locations": st.integers(1, 50),
    }
)


@given(premium_answers)
def test_premium_score_is_bounded_and_monotonic_in_years(answers):
    result = s.score_premium(s.clean_premium(answers))
    assert 20 <= result.score <= 100
    assert result.status == s.premium_status(result.score)
    more = s.score_premium(s.clean_premium({**answers, "years_in_business": answers["years_in_business"] + 5}))
    assert more.score >= result.score


@pytest.mark.parametrize(
    ("people", "regulated", "around_the_clock", "tier"),
    [(5, False, False, "core_plus"), (50, False, False, "core_plus"), (51, False, False, "premium"),
     (10, True, False, "premium"), (200, True, False, "premium"), (201, False, False, "enterprise"),
     (3, False, True, "enterprise")],
)  # fmt: skip
def test_plan_selector_recommendation(people, regulated, around_the_clock, tier):
    assert s.recommend_tier(people=people, regulated=regulated, around_the_clock=around_the_clock) == tier
