"""Sales follow-up: assignment, review, reassignment, conversion, and the admin queue."""

from __future__ import annotations

import pytest

from qualification.models import Qualification, QualificationStatus
from qualification.reports import conversion_by_rep, conversion_by_tier
from qualification.services import (
    qualification_mark_converted,
    qualification_reassign,
    qualification_review,
    qualification_submit,
)
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import AuditEvent
from tests.factories import UserFactory
from tests.helpers import admin_client
from tests.qualification.conftest import CORE_PLUS, ENTERPRISE

pytestmark = pytest.mark.django_db

MANUAL = {**CORE_PLUS, "business_type": "soho", "current_it_support": ["part_time"]}  # 65: manual review


def test_assignment_goes_to_the_rep_with_fewest_open(sales_reps):
    first = qualification_submit(tier="core_plus", data={**MANUAL, "customer_email": "a@p.test"})
    second = qualification_submit(tier="core_plus", data={**MANUAL, "customer_email": "b@p.test"})
    third = qualification_submit(tier="core_plus", data={**MANUAL, "customer_email": "c@p.test"})
    assert first.status == QualificationStatus.MANUAL_REVIEW
    assert {first.assigned_to, second.assigned_to} == set(sales_reps)
    assert third.assigned_to == first.assigned_to  # ties go to the longest-standing account again
    qualification_review(qualification=first, status="NOT_QUALIFIED", reason="Out of area", actor=None)
    fourth = qualification_submit(tier="core_plus", data={**MANUAL, "customer_email": "d@p.test"})
    # first's rep now has 1 open (third) and second's rep has 1: tie → first by date joined
    assert fourth.assigned_to == sales_reps[0]


def test_without_sales_staff_the_qualification_is_kept_unassigned(db):
    qualification = qualification_submit(tier="enterprise", data=ENTERPRISE)
    assert qualification.assigned_to is None


def test_review_rules(sales_reps):
    qualification = qualification_submit(tier="core_plus", data=MANUAL)
    with pytest.raises(ServiceValidationError):
        qualification_review(qualification=qualification, status="NOT_QUALIFIED", reason=" ", actor=None)
    with pytest.raises(ServiceValidationError):
        qualification_review(qualification=qualification, status="APPROVED", actor=None)
    reviewed = qualification_review(qualification=qualification, status="QUALIFIED", actor=sales_reps[0])
    assert (reviewed.status, reviewed.next_step, reviewed.reviewed_by) == ("QUALIFIED", "get_quote", sales_reps[0])
    assert AuditEvent.objects.filter(action="qualification.reviewed").count() == 1


def test_reassign_only_to_sales_staff(sales_reps, alice):
    qualification = qualification_submit(tier="enterprise", data=ENTERPRISE)
    with pytest.raises(ServiceValidationError):
        qualification_reassign(qualification=qualification, rep=alice, actor=None)
    target = next(rep for rep in sales_reps if rep != qualification.assigned_to)
    assert qualification_reassign(qualification=qualification, rep=target, actor=None).assigned_to == target


def test_conversion_is_idempotent_and_reported(sales_reps, acme):
    qualification = qualification_submit(tier="core_plus", data=MANUAL)
    qualification_review(qualification=qualification, status="QUALIFIED", actor=None)
    qualification_submit(tier="enterprise", data=ENTERPRISE)
    assert qualification_mark_converted(email="PROSPECT@example.test", tier="core_plus", organization=acme) == 1
    assert qualification_mark_converted(email="prospect@example.test", tier="core_plus", organization=acme) == 0
    with pytest.raises(ConflictError):
        qualification_review(qualification=qualification, status="NOT_QUALIFIED", reason="x", actor=None)
    by_tier = {
        row.label: (row.total, row.converted, row.rate) for row in conversion_by_tier(Qualification.objects.all())
    }
    assert by_tier == {"Core+": (1, 1, 100.0), "Premium": (0, 0, 0.0), "Enterprise": (1, 0, 0.0)}
    by_rep = {row.label: row.converted for row in conversion_by_rep(Qualification.objects.all())}
    assert sum(by_rep.values()) == 1


@pytest.fixture
def sales_client(sales_reps):
    return admin_client(sales_reps[0])


def test_admin_queue_lists_filters_and_disqualifies_with_reason(sales_client, sales_reps):
    qualification = qualification_submit(tier="core_plus", data=MANUAL)
    page = sales_client.get("/admin/qualification/qualification/?queue=open&score=50-69&tier__exact=core_plus")
    assert page.status_code == 200
    assert "prospect@example.test" in page.content.decode()
    assert "Conversion by tier" in page.content.decode()
    sales_client.post("/admin/qualification/qualification/",
                      {"action": "disqualify", "_selected_action": [str(qualification.pk)], "reason": ""})  # fmt: skip
    qualification.refresh_from_db()
    assert qualification.status == QualificationStatus.MANUAL_REVIEW  # refused: no reason
    action = {"action": "disqualify", "_selected_action": [str(qualification.pk)], "reason": "Too small"}
    sales_client.post("/admin/qualification/qualification/", action)
    qualification.refresh_from_db()
    assert (qualification.status, qualification.status_reason) == ("NOT_QUALIFIED", "Too small")


def test_technician_cannot_see_the_sales_queue(db):
    from django.contrib.auth.models import Group

    tech = UserFactory(email="tech@keel.test", is_staff=True)
    tech.groups.add(Group.objects.get(name="Technician"))
    client = admin_client(tech)
    assert client.get("/admin/qualification/qualification/").status_code == 403
