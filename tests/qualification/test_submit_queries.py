"""A questionnaire submission's round trips, and its answer built without the serializer reading as the serializer
writes it."""

from __future__ import annotations

import pytest
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from events.models import Event
from qualification.api import QualificationResultSerializer
from qualification.models import Qualification
from tests.qualification.conftest import CORE_PLUS, ENTERPRISE, PREMIUM

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return APIClient()


@pytest.mark.parametrize(
    ("path", "answers"),
    [("core-plus", CORE_PLUS), ("core-plus", {**CORE_PLUS, "timeline": "just_exploring"}), ("premium", PREMIUM),
     ("enterprise", ENTERPRISE)],
)  # fmt: skip
def test_the_answer_is_byte_for_byte_what_the_serializer_writes(client, sales_reps, path, answers):
    response = client.post(f"/api/qualify/{path}", answers, format="json")
    assert response.status_code == 201
    qualification = Qualification.objects.get()
    assert response.content == JSONRenderer().render(QualificationResultSerializer(qualification).data)


def test_an_approved_core_plus_submission_is_two_inserts(client, django_assert_num_queries):
    # savepoint (the test's transaction stands for the real one), the qualification, its event, release
    with django_assert_num_queries(4):
        response = client.post("/api/qualify/core-plus", CORE_PLUS, format="json")
    assert response.status_code == 201
    assert Event.objects.filter(type="qualification.submitted").count() == 1


def test_a_submission_for_review_adds_the_sales_assignment(client, sales_reps, django_assert_num_queries):
    # savepoint, the Sales rep with the fewest open assignments, the qualification already assigned to them, the
    # notification to the rep (2 savepoints, its notice and its email, 2 releases), the event, release
    with django_assert_num_queries(11):
        response = client.post("/api/qualify/core-plus", {**CORE_PLUS, "timeline": "just_exploring",
                                                          "business_type": "soho"}, format="json")  # fmt: skip
    assert response.status_code == 201
    assert response.json()["qualification_status"] == "MANUAL_REVIEW"
    assert Qualification.objects.get().assigned_to in sales_reps


def test_a_refused_submission_writes_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.post("/api/qualify/core-plus", {**CORE_PLUS, "pain_point": "aliens"}, format="json")
    assert response.status_code == 400
    assert "pain_point" in response.json()
