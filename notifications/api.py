"""In-app notifications in the API: the caller's own, listed and marked read.

Whose: a signed-in person's own; for an API key, those of the person who created it (a key without one, its
creator deleted, is 403). Which organizations: the one chosen (``X-Organization``, the key's organization, the
portal's current one), else every organization the caller may see. Keys need ``read`` + ``notifications:read`` to
list and ``write`` + ``notifications:write`` to mark read.

Another person's notification, or one of an organization outside the caller's, is 404, as is a malformed id.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, permissions
from rest_framework.request import Request
from rest_framework.response import Response

from notifications.models import Notification
from notifications.serializers import FORBIDDEN, NOTIFICATION_NOT_FOUND, NotificationSerializer, ReadAllSerializer
from notifications.services.inbox import inbox, notification_read, notifications_read_all
from tenancy.api_base import PAGE_PARAMETERS, Caller, TenantAPIView, represent_many
from tenancy.models import User

READ_SCOPE = "notifications:read"
WRITE_SCOPE = "notifications:write"
NOTIFICATION_ID = OpenApiParameter("pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The notification.")
UNREAD = OpenApiParameter("unread", OpenApiTypes.BOOL, description="true: only unread; false: only read ones.")


class NotificationAPIView(TenantAPIView):
    writes_need_organization = False  # marking read works across the organizations the caller may see
    person: User

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return (READ_SCOPE,) if self.request.method in permissions.SAFE_METHODS else (WRITE_SCOPE,)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        caller = Caller.of(request)
        person = caller.api_key.created_by if caller.api_key is not None else caller.user
        if person is None:
            raise exceptions.PermissionDenied("This API key has no owner whose notifications it could read.")
        self.person = person

    def notifications(self) -> QuerySet[Notification]:
        organizations = self.tenant.organization or self.tenant.organizations
        return inbox(user=self.person, organizations=organizations).select_related("organization")

    def get_notification(self, pk: str) -> Notification:
        try:
            wanted = uuid.UUID(str(pk))
        except ValueError:
            raise exceptions.NotFound("No such notification.") from None
        notification = self.notifications().filter(pk=wanted).first()
        if notification is None:
            raise exceptions.NotFound("No such notification.")
        return notification


class NotificationListView(NotificationAPIView, generics.GenericAPIView[Notification]):
    """The caller's in-app notifications, newest first (``unread=true`` for the unread ones)."""

    queryset = Notification.objects.none()  # the real one depends on the caller: see notifications()
    serializer_class = NotificationSerializer
    filter_backends: list[Any] = []

    @extend_schema(parameters=[UNREAD, *PAGE_PARAMETERS], responses={200: NotificationSerializer(many=True),
                                                                      403: FORBIDDEN})  # fmt: skip
    def get(self, request: Request) -> Response:
        notifications = self.notifications()
        unread = request.query_params.get("unread", "").lower()
        if unread not in ("", "true", "false"):
            raise exceptions.ValidationError({"unread": ["Must be true or false."]})
        if unread:
            notifications = notifications.filter(read_at__isnull=unread == "true")
        page = self.paginate_queryset(notifications) or []
        return self.get_paginated_response(represent_many(NotificationSerializer, page))


class NotificationReadView(NotificationAPIView):
    """Mark one notification read (reading it again changes nothing)."""

    @extend_schema(
        parameters=[NOTIFICATION_ID], request=None,
        responses={200: NotificationSerializer, 403: FORBIDDEN, 404: NOTIFICATION_NOT_FOUND},
    )  # fmt: skip
    def post(self, request: Request, pk: str) -> Response:
        notification = notification_read(notification=self.get_notification(pk))
        return Response(NotificationSerializer(notification).data)


class NotificationReadAllView(NotificationAPIView):
    """Mark every unread notification read (in the chosen organization, else in all the caller's)."""

    @extend_schema(request=None, responses={200: ReadAllSerializer, 403: FORBIDDEN})
    def post(self, request: Request) -> Response:
        organizations = self.tenant.organization or self.tenant.organizations
        return Response({"marked": notifications_read_all(user=self.person, organizations=organizations)})


notification_list_view = NotificationListView.as_view()
notification_read_view = NotificationReadView.as_view()
notification_read_all_view = NotificationReadAllView.as_view()
