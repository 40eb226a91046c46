"""Notifications' writes: ``notify`` (the call other apps make), preferences and Slack (``preferences``), sending
and retries (``delivery``), bulk sends (``bulk``) and reading in-app notifications (``inbox``)."""

from notifications.services.notify import is_email_address, notify

__all__ = ["is_email_address", "notify"]
