"""How in-app notifications look in the API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from notifications.models import Notification
from notifications.rendering import absolute_url


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    organization = serializers.CharField(source="organization.slug", read_only=True)
    url = serializers.SerializerMethodField(help_text="Where the notification leads (absolute), or empty.")
    read = serializers.BooleanField(source="is_read", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "organization", "event_type", "title", "body", "url", "read", "read_at", "created_at"]
        read_only_fields = fields

    def get_url(self, notification: Notification) -> str:
        return absolute_url(notification.url) if notification.url else ""


class ReadAllSerializer(serializers.Serializer[Any]):
    marked = serializers.IntegerField(help_text="How many unread notifications were marked read.")


NOTIFICATION_NOT_FOUND = OpenApiResponse(description="No such notification of the caller's (or the key owner's).")
FORBIDDEN = OpenApiResponse(description="The key lacks the notifications scope, or it has no owner.")
