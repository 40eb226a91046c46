"""Messaging in the partner API and the portal's own calls: contacts, their CSV import and the do-not-contact list,
and the access rules every messaging endpoint shares (``SmsAPIView``; templates, numbers, campaigns, messages and the
kill switch are in ``sms.api_campaigns``).

Who may do what:
- **API keys** need ``read`` + ``sms:read`` to read and ``write`` + ``sms:write`` to write. A partner key without
  ``X-Organization`` lists across its organizations; a write needs the header (400 without it).
- **Staff** (signed-in ``is_staff``) may do everything in the organizations they may see.
- **People** (signed-in, not staff) must be an owner, admin or manager of the organization, or its partner's admin:
  contacts are personal data, so plain members get 403.

Every object is looked up within the organizations the caller may see: another organization's contact or entry is
404 on every route, as is a malformed id. Each write is one service call, one transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, parsers, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response

from sms.models import Contact, DncReason, DoNotContact
from sms.serializers import (
    CONTACT_NOT_FOUND,
    DNC_NOT_FOUND,
    FORBIDDEN,
    ContactInputSerializer,
    ContactSerializer,
    ContactUpdateSerializer,
    DncInputSerializer,
    DncSerializer,
    ImportReportSerializer,
    ImportSerializer,
)
from sms.services.contacts import contact_create, contact_update, dnc_add, dnc_remove, phone_field
from sms.services.imports import MAX_BYTES, MAX_ROWS, contacts_import
from tenancy.api_base import (
    PAGE_PARAMETERS,
    Caller,
    TenantAPIView,
    organizations_with_role,
    refuse_unknown,
    represent_many,
    request_object,
)
from tenancy.models import Organization, Role, TenantQuerySet, User

READ_SCOPE = "sms:read"
WRITE_SCOPE = "sms:write"
MESSAGING_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MANAGER})
CONTACT_ID = OpenApiParameter("pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The contact's id.")
DNC_ID = OpenApiParameter("pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The entry's id.")


def messaging_organizations(user: User) -> QuerySet[Organization]:
    """The organizations whose messaging a person may use: as owner, admin or manager, or as its partner's admin."""
    return organizations_with_role(user, MESSAGING_ROLES)


class SmsAPIView(TenantAPIView):
    caller: Caller

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return (READ_SCOPE,) if self.request.method in permissions.SAFE_METHODS else (WRITE_SCOPE,)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.caller = Caller.of(request)
        if self.caller.is_customer and self.caller.user is not None:
            role = self.tenant.role  # None for a partner's admin
            if self.tenant.organization is not None:
                if role is not None and role not in MESSAGING_ROLES:
                    raise exceptions.PermissionDenied("Only owners, admins and managers use messaging.")
            elif not messaging_organizations(self.caller.user).exists():
                raise exceptions.PermissionDenied("Only owners, admins and managers use messaging.")
        if request.method not in permissions.SAFE_METHODS:
            self.tenant.require_organization()

    def scoped(self, queryset: TenantQuerySet) -> TenantQuerySet:
        if self.tenant.organization is not None:
            return queryset.for_org(self.tenant.organization)
        if self.caller.is_customer and self.caller.user is not None:
            return queryset.for_orgs(messaging_organizations(self.caller.user))
        return queryset.for_orgs(self.tenant.organizations)

    def visible_organizations(self) -> QuerySet[Organization]:
        """The organizations ``scoped`` confines rows to, for models that are not ``TenantModel`` (sending
        numbers): the chosen one, else those the caller may see."""
        if self.tenant.organization is not None:
            return Organization.objects.filter(pk=self.tenant.organization.pk)
        if self.caller.is_customer and self.caller.user is not None:
            return messaging_organizations(self.caller.user)
        return self.tenant.organizations


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise exceptions.NotFound(f"No such {what}.") from None


# -- contacts ----------------------------------------------------------------------------------------------------------


class ContactAPIView(SmsAPIView):
    def contacts(self) -> QuerySet[Contact]:
        on_dnc = DoNotContact.objects.filter(
            organization_id=OuterRef("organization_id"), phone_e164=OuterRef("phone_e164")
        )
        return (
            self.scoped(Contact.objects.all())
            .select_related("organization")
            .annotate(on_dnc=Exists(on_dnc))
            .order_by("last_name", "first_name", "phone_e164", "id")
        )

    def get_contact(self, pk: str) -> Contact:
        contact = self.contacts().filter(pk=parse_uuid(pk, "contact")).first()
        if contact is None:
            raise exceptions.NotFound("No such contact.")
        return contact

    def contact_data(self, pk: str) -> dict[str, Any]:
        return dict(ContactSerializer(self.get_contact(pk)).data)


CONTACT_FILTERS = [
    OpenApiParameter("tag", OpenApiTypes.STR, description="Only contacts with this tag."),
    OpenApiParameter("consent", OpenApiTypes.STR, enum=["yes", "no"], description="With or without recorded consent."),
    OpenApiParameter("on_dnc", OpenApiTypes.BOOL, description="On the do-not-contact list or not."),
    OpenApiParameter("q", OpenApiTypes.STR, description="Part of a name, phone number or email."),
]


class ContactListView(ContactAPIView, generics.GenericAPIView[Contact]):
    """Contacts (filters ``tag``, ``consent``, ``on_dnc``, ``q``); create one. A contact's phone is unique within its
    organization (409 when taken); ``consent`` records that the contact agreed to receive messages."""

    queryset = Contact.objects.none()  # the real one depends on the caller: see contacts()
    serializer_class = ContactSerializer
    filter_backends: list[Any] = []

    @extend_schema(parameters=[*CONTACT_FILTERS, *PAGE_PARAMETERS], responses=ContactSerializer(many=True))
    def get(self, request: Request) -> Response:
        contacts = self.contacts()
        params = request.query_params
        if tag := params.get("tag", "").strip().lower():
            contacts = contacts.filter(tags__contains=f",{tag},")
        consent = params.get("consent", "")
        if consent not in ("", "yes", "no"):
            raise exceptions.ValidationError({"consent": ["Must be yes or no."]})
        if consent:
            contacts = contacts.filter(consent_at__isnull=consent == "no")
        on_dnc = params.get("on_dnc", "").lower()
        if on_dnc not in ("", "true", "false"):
            raise exceptions.ValidationError({"on_dnc": ["Must be true or false."]})
        if on_dnc:
            contacts = contacts.filter(**{"on_dnc": on_dnc == "true"})  # the annotation
        if query := params.get("q", "").strip():
            contacts = contacts.filter(
                Q(first_name__icontains=query)
                | Q(last_name__icontains=query)
                | Q(email__icontains=query)
                | Q(phone_e164__contains=query.replace(" ", ""))
            )
        page = self.paginate_queryset(contacts) or []
        return self.get_paginated_response(represent_many(ContactSerializer, page))

    @extend_schema(request=ContactInputSerializer, responses={201: ContactSerializer, 403: FORBIDDEN})
    def post(self, request: Request) -> Response:
        data = request_object(request)
        refuse_unknown(data, tuple(ContactInputSerializer().fields))
        incoming = ContactInputSerializer(data=data)
        incoming.is_valid(raise_exception=True)
        values = dict(incoming.validated_data)
        phone, region, consent = values.pop("phone"), values.pop("region"), values.pop("consent", None)
        contact = contact_create(
            organization=self.tenant.require_organization(),
            phone=phone,
            region=region,
            data=values,
            consent=dict(consent) if consent else None,
        )
        return Response(self.contact_data(str(contact.pk)), status=status.HTTP_201_CREATED)


class ContactDetailView(ContactAPIView):
    """One contact: read, change (not its phone), delete (its do-not-contact entry, if any, stays)."""

    @extend_schema(parameters=[CONTACT_ID], responses={200: ContactSerializer, 404: CONTACT_NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        return Response(self.contact_data(pk))

    @extend_schema(
        parameters=[CONTACT_ID],
        request=ContactUpdateSerializer,
        responses={200: ContactSerializer, 403: FORBIDDEN, 404: CONTACT_NOT_FOUND},
    )
    def patch(self, request: Request, pk: str) -> Response:
        contact = self.get_contact(pk)
        data = request_object(request)
        refuse_unknown(data, tuple(ContactUpdateSerializer().fields))
        incoming = ContactUpdateSerializer(data=data, partial=True)
        incoming.is_valid(raise_exception=True)
        contact_update(contact=contact, data=dict(incoming.validated_data))
        return Response(self.contact_data(pk))

    @extend_schema(parameters=[CONTACT_ID], responses={204: None, 403: FORBIDDEN, 404: CONTACT_NOT_FOUND})
    def delete(self, request: Request, pk: str) -> Response:
        self.get_contact(pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ContactImportView(SmsAPIView):
    __doc__ = f"""Import contacts from a CSV file, or preview the import (``dry_run``, the default).

    Columns (a header row is required; extra columns are ignored): ``phone`` (required), ``first_name``,
    ``last_name``, ``email``, ``timezone``, ``tags`` (separated by ``;``), ``consent`` (yes/no), ``consent_source``,
    ``consented_at`` (ISO 8601). The preview writes nothing and reports exactly what the import will do; the import
    writes every valid row in one transaction, and importing the same file again creates nothing. Rows that cannot
    be used are listed in ``invalid`` by row (the header is row 1), field and reason. Files are UTF-8 (or UTF-16
    with a byte-order mark), at most {MAX_BYTES // (1024 * 1024)} MB and {MAX_ROWS:,} rows; a file that cannot be
    read is a 400 naming the problem."""

    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    @extend_schema(request={"multipart/form-data": ImportSerializer}, responses={200: ImportReportSerializer})
    def post(self, request: Request) -> Response:
        incoming = ImportSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        upload = incoming.validated_data["file"]
        if upload.size > MAX_BYTES:
            raise exceptions.ValidationError({"file": [f"The file is over {MAX_BYTES // (1024 * 1024)} MB."]})
        report = contacts_import(
            organization=self.tenant.require_organization(),
            content=upload.read(),
            dry_run=incoming.validated_data["dry_run"],
            region=incoming.validated_data["default_region"],
        )
        return Response(report.as_dict())


# -- do-not-contact ----------------------------------------------------------------------------------------------------


class DncListView(SmsAPIView, generics.GenericAPIView[DoNotContact]):
    """The do-not-contact list (filter ``reason``); add a number (it stays on the list until removed, and nothing is
    sent to it). Adding a number that is already on the list returns its entry (200)."""

    queryset = DoNotContact.objects.none()  # see get()
    serializer_class = DncSerializer
    filter_backends: list[Any] = []

    @extend_schema(
        parameters=[OpenApiParameter("reason", OpenApiTypes.STR, enum=DncReason.values), *PAGE_PARAMETERS],
        responses=DncSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        entries = self.scoped(DoNotContact.objects.all()).select_related("organization").order_by("-created_at", "-id")
        if reason := request.query_params.get("reason"):
            if reason not in DncReason.values:
                raise exceptions.ValidationError({"reason": [f"One of {', '.join(DncReason.values)}."]})
            entries = entries.filter(reason=reason)
        page = self.paginate_queryset(entries) or []
        return self.get_paginated_response(represent_many(DncSerializer, page))

    @extend_schema(request=DncInputSerializer, responses={201: DncSerializer, 200: DncSerializer, 403: FORBIDDEN})
    def post(self, request: Request) -> Response:
        data = request_object(request)
        refuse_unknown(data, tuple(DncInputSerializer().fields))
        incoming = DncInputSerializer(data=data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        organization = self.tenant.require_organization()
        phone = phone_field(values["phone"], region=values["region"])
        existed = DoNotContact.objects.for_org(organization).filter(phone_e164=phone).exists()
        source = values["source"] or (self.caller.user.email if self.caller.user else "api")
        entry = dnc_add(organization=organization, phone_e164=phone, reason=values["reason"], source=source)
        return Response(DncSerializer(entry).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class DncDetailView(SmsAPIView):
    """One entry; deleting it takes the number off the list (it may be messaged again if it has consent)."""

    def get_entry(self, pk: str) -> DoNotContact:
        if not str(pk).isdigit() or len(str(pk)) > 18:
            raise exceptions.NotFound("No such entry.")
        entry = self.scoped(DoNotContact.objects.all()).select_related("organization").filter(pk=int(pk)).first()
        if entry is None:
            raise exceptions.NotFound("No such entry.")
        return entry

    @extend_schema(parameters=[DNC_ID], responses={200: DncSerializer, 404: DNC_NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        return Response(DncSerializer(self.get_entry(pk)).data)

    @extend_schema(parameters=[DNC_ID], responses={204: None, 403: FORBIDDEN, 404: DNC_NOT_FOUND})
    def delete(self, request: Request, pk: str) -> Response:
        entry = self.get_entry(pk)
        source = self.caller.user.email if self.caller.user else "api"
        dnc_remove(organization=entry.organization, phone_e164=entry.phone_e164, source=source)
        return Response(status=status.HTTP_204_NO_CONTENT)


contact_list_view = ContactListView.as_view()
contact_detail_view = ContactDetailView.as_view()
contact_import_view = ContactImportView.as_view()
dnc_list_view = DncListView.as_view()
dnc_detail_view = DncDetailView.as_view()
