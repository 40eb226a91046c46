"""The sandbox's status callbacks, posted the way Twilio posts them: signed with the auth token, over HTTP, to the
app's own status webhook at ``SITE_URL``. A local run (``make run``) thereby takes its messages through the same code
path as production: the signature check, the deduplication and the state rules of the real webhook.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings

from sms.providers.sandbox import SandboxProvider, callbacks
from sms.signatures import twilio_signature

logger = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/twilio/status/"
TIMEOUT = 5.0  # seconds per callback


def status_callback_url() -> str:
    """The absolute URL Twilio posts status callbacks to (``StatusCallback`` when sending)."""
    return settings.SITE_URL.rstrip("/") + STATUS_PATH


def post_callbacks(sids: list[str]) -> int:
    """Post the callbacks the sandbox gives each message (``sent``, then its final status) and return how many the
    webhook accepted (answered 2xx). A sid the sandbox does not know is skipped; a callback that cannot be posted
    (the server is down, too slow) or is refused is logged and skipped: a local run goes on without it."""
    records = {record.state.sid: record for record in SandboxProvider.records()}
    url = status_callback_url()
    accepted = 0
    for sid in sids:
        record = records.get(sid)
        if record is None:
            logger.info("sandbox sms: no message %s to post callbacks for", sid)
            continue
        for params in callbacks(record.state, account_sid=settings.TWILIO_ACCOUNT_SID):
            signature = twilio_signature(url, params, settings.TWILIO_AUTH_TOKEN)
            try:
                response = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=TIMEOUT)
            except requests.RequestException as exc:
                logger.warning("sandbox sms: could not post %s callback for %s: %s", params["MessageStatus"], sid, exc)
                continue
            if response.ok:
                accepted += 1
            else:
                logger.warning(
                    "sandbox sms: %s callback for %s answered %s", params["MessageStatus"], sid, response.status_code
                )
    return accepted
