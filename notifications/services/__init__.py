"""Notifications' writes: ``notify`` (the call other apps make), preferences and Slack (``preferences``), sending
and retries (``delivery``), bulk sends (``bulk``) and reading in-app notifications (``inbox``)."""

from notifications.services.notify import notify

__all__ = ["notify"]
