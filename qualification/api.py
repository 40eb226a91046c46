"""Public qualification API: submit a questionnaire, follow its status. Throttled per IP; no personal data out."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qualification.models import Qualification, QualificationTier
from qualification.services import qualification_submit
from tenancy.api_auth import PublicRateThrottle


class QualificationResultSerializer(serializers.Serializer[Qualification]):
    id = serializers.UUIDField()
    tier = serializers.CharField()
    auto_score = serializers.IntegerField(allow_null=True)
    qualification_status = serializers.CharField(source="status")
    status_url = serializers.SerializerMethodField()

    def get_status_url(self, obj: Qualification) -> str:
        return f"/qualification-status/{obj.id}"


class QualificationStatusSerializer(serializers.Serializer[Qualification]):
    id = serializers.UUIDField()
    tier = serializers.CharField()
    auto_score = serializers.IntegerField(allow_null=True)
    qualification_status = serializers.CharField(source="status")
    next_step = serializers.CharField()
    updated_at = serializers.DateTimeField()


class PublicView(APIView):
    authentication_classes: list[type] = []
    parser_classes = [JSONParser]
    permission_classes = [AllowAny]
    throttle_classes = [PublicRateThrottle]


class SubmitView(PublicView):
    """Submit a questionnaire. Unknown vocabulary values are a 400 naming the field; a repeat email is a 409."""

    tier: str = ""

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: QualificationResultSerializer})
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"detail": ["Send a JSON object."]})
        data: dict[str, Any] = dict(request.data)
        qualification = qualification_submit(tier=self.tier, data=data)
        return Response(QualificationResultSerializer(qualification).data, status=status.HTTP_201_CREATED)


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


core_plus_submit = SubmitView.as_view(tier=QualificationTier.CORE_PLUS)
premium_submit = SubmitView.as_view(tier=QualificationTier.PREMIUM)
enterprise_submit = SubmitView.as_view(tier=QualificationTier.ENTERPRISE)
status_view = StatusView.as_view()
