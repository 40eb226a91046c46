"""Partner API: who am I, organizations, branding."""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.mixins import ListModelMixin, RetrieveModelMixin
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from tenancy.api_base import ORG_HEADER, TenantAPIView, get_tenant_object
from tenancy.api_policy import OrganizationSuspended
from tenancy.audit import client_ip
from tenancy.models import ApiKey, Organization, OrgStatus, User
from tenancy.services import branding_update


class BrandingSerializer(serializers.Serializer[Organization]):
    display_name = serializers.CharField(source="brand_display_name", max_length=200, allow_blank=True, required=False)
    primary_color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", source="brand_primary_color", required=False)
    accent_color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", source="brand_accent_color", required=False)
    support_email = serializers.EmailField(source="brand_support_email", allow_blank=True, required=False)
    logo_url = serializers.SerializerMethodField()
    logo = serializers.CharField(
        write_only=True, required=False, help_text="A PNG or JPEG of at most 256 KB, base64-encoded."
    )
    remove_logo = serializers.BooleanField(write_only=True, required=False, default=False)

    def get_logo_url(self, org: Organization) -> str | None:
        if not org.brand_logo_version:
            return None
        return f"/branding/{org.id}/logo?v={org.brand_logo_version}"

    def validate_logo(self, value: str) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise serializers.ValidationError("The logo must be base64-encoded.") from exc


class OrganizationSerializer(serializers.ModelSerializer[Organization]):
    partner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    branding = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "slug",
            "tier",
            "status",
            "timezone",
            "currency",
            "country",
            "partner",
            "require_mfa",
            "invoice_emails",
            "created_at",
            "branding",
        ]
        read_only_fields = fields

    def get_branding(self, org: Organization) -> dict[str, Any]:
        return dict(BrandingSerializer(org).data)


class MeSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["api_key", "user"])
    user = serializers.DictField(allow_null=True)
    api_key = serializers.DictField(allow_null=True)
    organization = OrganizationSerializer(allow_null=True)
    organizations_count = serializers.IntegerField()


def _active(org: Organization) -> Organization:
    if org.status == OrgStatus.SUSPENDED:
        raise OrganizationSuspended(org)
    return org


class MeView(TenantAPIView):
    """The caller: the API key (its scopes, owner, expiry) or the signed-in person, and the organization acted for."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        user = request.user if isinstance(request.user, User) else None
        data = {
            "kind": "api_key" if key else "user",
            "user": {"id": str(user.id), "email": user.email, "name": user.full_name} if user else None,
            "api_key": {
                "id": str(key.id),
                "name": key.name,
                "prefix": key.prefix,
                "scopes": key.scopes,
                "expires_at": key.expires_at.isoformat() if key.expires_at else None,
                "organization": key.organization.slug if key.organization else None,
                "partner": key.partner.slug if key.partner else None,
            }
            if key
            else None,
            "organization": OrganizationSerializer(self.tenant.organization).data if self.tenant.organization else None,
            "organizations_count": self.tenant.organizations.count(),
        }
        return Response(data)


class OrganizationViewSet(TenantAPIView, ListModelMixin, RetrieveModelMixin, GenericViewSet):
    """Organizations the caller may act for: a partner key sees its partner's, an organization key its own."""

    serializer_class = OrganizationSerializer
    writes_need_organization = False  # branding names its organization in the path
    filterset_fields = ["tier", "status"]
    lookup_value_regex = "[^/]+"

    queryset = Organization.objects.none()  # the real queryset depends on the caller: see get_queryset

    def get_queryset(self) -> QuerySet[Organization]:
        if getattr(self, "swagger_fake_view", False):
            return Organization.objects.none()
        qs = self.tenant.organizations.select_related("partner").defer("brand_logo").order_by("name")
        if self.request.META.get(ORG_HEADER) and self.tenant.organization is not None:
            return qs.filter(pk=self.tenant.organization.pk)  # X-Organization narrows the list to that one
        return qs

    def get_object(self) -> Organization:
        ident = str(self.kwargs["pk"])
        lookup: dict[str, Any] = {"slug": ident}
        with contextlib.suppress(ValueError):
            lookup = {"pk": uuid.UUID(ident)}
        return get_tenant_object(self.tenant.organizations.select_related("partner"), **lookup)  # type: ignore[return-value]

    @extend_schema(responses=OrganizationSerializer)
    def current(self, request: Request) -> Response:
        org = _active(self.tenant.require_organization())
        return Response(OrganizationSerializer(org).data)

    @extend_schema(request=BrandingSerializer, responses=BrandingSerializer)
    def branding(self, request: Request, pk: str) -> Response:
        org = _active(self.get_object())
        if request.method == "GET":
            return Response(BrandingSerializer(org).data)
        if not self.tenant.can_manage:
            raise exceptions.PermissionDenied("Only owners and admins can change branding.")
        serializer = BrandingSerializer(org, data=request.data, partial=request.method == "PATCH")
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        org = branding_update(
            organization=org,
            actor=request.user if isinstance(request.user, User) else None,
            ip=client_ip(request._request),
            display_name=values.get("brand_display_name"),
            primary_color=values.get("brand_primary_color"),
            accent_color=values.get("brand_accent_color"),
            support_email=values.get("brand_support_email"),
            logo=values.get("logo"),
            remove_logo=values.get("remove_logo", False),
        )
        return Response(BrandingSerializer(org).data)
