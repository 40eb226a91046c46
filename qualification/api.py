"""Public qualification API: submit a questionnaire, follow its status. Throttled per IP; no personal data out."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qualification import scoring
from qualification.models import Qualification, QualificationTier
from qualification.services import PHONE_PATTERN, qualification_submit
from tenancy.api_auth import PublicRateThrottle
from tenancy.parsers import JSONParser


class QualificationResultSerializer(serializers.Serializer[Qualification]):
    id = serializers.UUIDField()
    tier = serializers.CharField()
    auto_score = serializers.IntegerField(allow_null=True)
    qualification_status = serializers.CharField(source="status")
    status_url = serializers.SerializerMethodField()

    def get_status_url(self, obj: Qualification) -> str:
        return status_url(obj)


def status_url(qualification: Qualification) -> str:
    return f"/qualification-status/{qualification.id}"


def submission_result(qualification: Qualification) -> dict[str, Any]:
    """What ``QualificationResultSerializer`` writes, built without a serializer: every public submission answers
    with it. The serializer stays as the schema's description of the answer."""
    return {
        "id": str(qualification.id),
        "tier": str(qualification.tier),
        "auto_score": qualification.auto_score,
        "qualification_status": str(qualification.status),
        "status_url": status_url(qualification),
    }


class QualificationStatusSerializer(serializers.Serializer[Qualification]):
    id = serializers.UUIDField()
    tier = serializers.CharField()
    auto_score = serializers.IntegerField(allow_null=True)
    qualification_status = serializers.CharField(source="status")
    next_step = serializers.CharField()
    updated_at = serializers.DateTimeField()


# -- the questionnaires, as the schema describes them (qualification.services and .scoring check them) -------------
# Optional text may be left out, empty or null.


def _text(limit: int, description: str = "") -> dict[str, Any]:
    return {
        "type": "string",
        "nullable": True,
        "maxLength": limit,
        **({"description": description} if description else {}),
    }


# A character Python's str.strip() keeps: what is left of an answer that is more than blanks.
_NOT_BLANK = "[^\t\n\v\f\r \u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def _filled(limit: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": limit, "pattern": _NOT_BLANK, "description": "Not blank."}


def _one_of(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _some_of(values: Any, *, at_least: int) -> dict[str, Any]:
    return {"type": "array", "items": _one_of(values), "uniqueItems": True, "minItems": at_least}


def _questionnaire(required: list[str], **fields: dict[str, Any]) -> dict[str, Any]:
    contact = {
        "customer_email": {"type": "string", "format": "email", "description": "The prospect's email address."},
        "name": _text(150),
        "company_name": _text(200),
        "phone": {
            "type": "string",
            "nullable": True,
            "pattern": rf"^(|{PHONE_PATTERN.pattern.strip('^$')})$",
            "description": "Digits, spaces, +, ( ) or -.",
        },
    }
    return {
        "application/json": {
            "type": "object",
            "properties": {**contact, **fields},
            "required": ["customer_email", *required],
        }
    }


QUESTIONNAIRES = {
    QualificationTier.CORE_PLUS: _questionnaire(
        ["business_type", "current_it_support", "tech_comfort_level", "pain_point", "timeline"],
        business_type=_one_of(scoring.BUSINESS_TYPE_POINTS),
        current_it_support={**_some_of(scoring.IT_SUPPORT_POINTS, at_least=1), "description": "'none' stands alone."},
        tech_comfort_level={"type": "integer", "minimum": 1, "maximum": 5},
        pain_point=_one_of(scoring.PAIN_POINT_POINTS),
        pain_point_detail=_text(1000, "Required when pain_point is 'other'."),
        timeline=_one_of(scoring.TIMELINES),
    ),
    QualificationTier.PREMIUM: _questionnaire(
        [
            "years_in_business",
            "security_posture",
            "budget_range",
            "decision_maker",
            "timeline",
            "ein",
            "employee_count",
            "locations",
        ],
        website=_text(2000, "A web address (http or https); https:// is assumed without a scheme."),
        industry=_text(100),
        years_in_business={"type": "integer", "minimum": 0},
        it_infrastructure=_some_of(scoring.IT_INFRASTRUCTURE, at_least=0),
        security_posture={"type": "integer", "minimum": 1, "maximum": 5},
        compliance_needs=_some_of(scoring.COMPLIANCE_NEEDS, at_least=0),
        budget_range=_one_of(scoring.BUDGET_POINTS),
        decision_maker={"type": "boolean"},
        timeline=_one_of(scoring.TIMELINES),
        ein={"type": "string", "pattern": scoring.EIN_PATTERN.pattern, "description": "NN-NNNNNNN."},
        employee_count={"type": "integer", "minimum": 1},
        locations={"type": "integer", "minimum": 1},
    ),
    QualificationTier.ENTERPRISE: _questionnaire(
        ["company_name", "current_it_setup", "project_scope"],
        company_name=_filled(200),
        current_it_setup=_filled(4000),
        project_scope=_filled(4000),
        timeline=_text(4000),
        budget_notes=_text(4000),
    ),
}


class PublicView(APIView):
    authentication_classes: list[type] = []
    parser_classes = [JSONParser]
    permission_classes = [AllowAny]
    throttle_classes = [PublicRateThrottle]


class SubmitView(PublicView):
    """Submit a questionnaire. Unknown vocabulary values are a 400 naming the field; a repeat email is a 409."""

    tier: str = ""

    @extend_schema(
        responses={
            201: QualificationResultSerializer,
            409: OpenApiResponse(description="A questionnaire of this tier was already submitted for the email."),
        }
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"detail": ["Send a JSON object."]})
        data: dict[str, Any] = dict(request.data)
        qualification = qualification_submit(tier=self.tier, data=data)
        return Response(submission_result(qualification), status=status.HTTP_201_CREATED)


class StatusView(PublicView):
    @extend_schema(responses=QualificationStatusSerializer)
    def get(self, request: Request, pk: str) -> Response:
        try:
            key = uuid.UUID(pk)
        except ValueError as exc:
            raise exceptions.NotFound() from exc
        qualification = Qualification.objects.filter(pk=key).first()
        if qualification is None:
            raise exceptions.NotFound()
        return Response(QualificationStatusSerializer(qualification).data)


def _submit_view(tier: QualificationTier) -> type[SubmitView]:
    """SubmitView for one tier, its questionnaire documented as the request body."""
    view = type(f"{tier.title().replace('_', '')}SubmitView", (SubmitView,), {"tier": tier})
    return extend_schema_view(post=extend_schema(request=QUESTIONNAIRES[tier]))(view)


core_plus_submit = _submit_view(QualificationTier.CORE_PLUS).as_view()
premium_submit = _submit_view(QualificationTier.PREMIUM).as_view()
enterprise_submit = _submit_view(QualificationTier.ENTERPRISE).as_view()
status_view = StatusView.as_view()
