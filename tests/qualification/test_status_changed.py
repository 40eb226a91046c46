"""qualification.status_changed: published through the outbox by every service that moves a qualification, and the
DISCOVERY_CALL_SCHEDULED status's place among the others."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from events.models import Event
from qualification.models import (
    CALL_SCHEDULABLE_STATUSES,
    FINAL_STATUSES,
    NEEDS_HUMAN_STATUSES,
    NextStep,
    Qualification,
    QualificationStatus,
    next_step,
)
from qualification.selectors import self_serve_quote_decision
from qualification.services import (
    qualification_call_canceled,
    qualification_call_scheduled,
    qualification_mark_converted,
    qualification_review,
    qualification_submit,
)
from tests.qualification.conftest import CORE_PLUS

pytestmark = pytest.mark.django_db

SCHEDULED = QualificationStatus.DISCOVERY_CALL_SCHEDULED
MEETING = datetime(2030, 12, 1, 23, tzinfo=UTC)


def changes() -> list[dict]:
    return [event.payload for event in Event.objects.filter(type="qualification.status_changed").order_by("created_at")]


def make(status: str, tier: str = "premium", **extra) -> Qualification:
    return Qualification.objects.create(tier=tier, customer_email="p@prospect.test", status=status, **extra)


def test_the_new_status_waits_for_a_person_and_its_next_step_is_the_call():
    assert SCHEDULED == "DISCOVERY_CALL_SCHEDULED" and len(SCHEDULED) <= 24
    assert SCHEDULED in NEEDS_HUMAN_STATUSES and SCHEDULED not in FINAL_STATUSES
    assert SCHEDULED not in CALL_SCHEDULABLE_STATUSES and not (CALL_SCHEDULABLE_STATUSES & FINAL_STATUSES)
    for tier in ("core_plus", "premium", "enterprise"):
        assert next_step(tier, SCHEDULED) == NextStep.ATTEND_DISCOVERY_CALL
    make(SCHEDULED)
    decision = self_serve_quote_decision(email="p@prospect.test", tier="premium")
    assert not decision.allowed
    assert decision.next_step == "attend_discovery_call"


def test_submitting_publishes_submitted_not_status_changed():
    qualification_submit(tier="core_plus", data=CORE_PLUS)
    assert Event.objects.filter(type="qualification.submitted").count() == 1
    assert changes() == []


def test_a_review_publishes_the_change_with_the_previous_status(sales_reps):
    qualification = qualification_submit(
        tier="core_plus", data={**CORE_PLUS, "business_type": "soho", "current_it_support": ["part_time"]}
    )
    assert qualification.status == "MANUAL_REVIEW"
    qualification_review(qualification=qualification, status="QUALIFIED", actor=sales_reps[0])
    assert changes() == [{"id": str(qualification.id), "tier": "core_plus", "status": "QUALIFIED",
                          "previous_status": "MANUAL_REVIEW"}]  # fmt: skip
    assert Event.objects.filter(type="qualification.reviewed").count() == 1  # still published as before
    # Reviewing again with the same outcome changes no status: reviewed again, but no status_changed.
    qualification_review(qualification=qualification, status="QUALIFIED", actor=sales_reps[0])
    assert Event.objects.filter(type="qualification.reviewed").count() == 2
    assert len(changes()) == 1


def test_staff_can_still_review_a_scheduled_qualification():
    qualification = make(SCHEDULED)
    reviewed = qualification_review(qualification=qualification, status="NOT_QUALIFIED", reason="No fit", actor=None)
    assert reviewed.status == "NOT_QUALIFIED"
    assert changes()[-1]["previous_status"] == SCHEDULED


@pytest.mark.parametrize("status", sorted(CALL_SCHEDULABLE_STATUSES))
def test_booking_and_canceling_a_call_move_there_and_back(status):
    qualification = make(status)
    assert qualification_call_scheduled(qualification=qualification, meeting_at=MEETING) == status
    assert Qualification.objects.get().status == SCHEDULED
    assert qualification_call_canceled(qualification=qualification, restore_status=status) is True
    assert Qualification.objects.get().status == status
    assert [(c["previous_status"], c["status"]) for c in changes()] == [(status, SCHEDULED), (SCHEDULED, status)]


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
def test_a_final_status_is_never_scheduled(status):
    qualification = make(status)
    assert qualification_call_scheduled(qualification=qualification, meeting_at=MEETING) is None
    assert Qualification.objects.get().status == status
    assert changes() == []


def test_nothing_moves_a_customer_or_a_qualification_already_scheduled():
    converted = make("DISCOVERY_CALL", converted=True)
    assert qualification_call_scheduled(qualification=converted, meeting_at=MEETING) is None
    scheduled = make(SCHEDULED, tier="enterprise")
    assert qualification_call_scheduled(qualification=scheduled, meeting_at=MEETING) is None
    assert changes() == []


def test_a_cancellation_restores_only_a_scheduled_qualification_and_only_to_a_waiting_status():
    scheduled = make(SCHEDULED)
    assert qualification_call_canceled(qualification=scheduled, restore_status="APPROVED") is False
    assert qualification_call_canceled(qualification=scheduled, restore_status="") is False
    moved_on = make("QUALIFIED", tier="core_plus")
    assert qualification_call_canceled(qualification=moved_on, restore_status="DISCOVERY_CALL") is False
    assert changes() == []


def test_the_change_is_published_only_if_the_transaction_commits():
    qualification = make("DISCOVERY_CALL")
    with pytest.raises(RuntimeError), transaction.atomic():
        qualification_call_scheduled(qualification=qualification, meeting_at=MEETING)
        raise RuntimeError("the caller's transaction fails")
    assert Qualification.objects.get().status == "DISCOVERY_CALL"
    assert changes() == []


def test_conversion_does_not_change_the_status(acme):
    qualification = make("APPROVED")
    qualification_mark_converted(email="p@prospect.test", tier="premium", organization=acme)
    assert Qualification.objects.get(pk=qualification.pk).status == "APPROVED"
    assert changes() == []


def test_the_status_api_reports_the_next_step(client):
    qualification = make(SCHEDULED)
    body = client.get(f"/api/qualify/status/{qualification.id}").json()
    assert (body["qualification_status"], body["next_step"]) == (SCHEDULED, "attend_discovery_call")
