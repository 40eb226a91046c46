"""One sender per channel: each takes a claimed delivery, sends it, and says what happened.

- **Email** goes through ``tenancy.emails.email_send`` (branded): the event type's words in
  ``email/notification.*`` (this app's templates), or the existing email template the notice names, rendered from
  the notice's context and its sealed values (decrypted only here). A platform notice's email carries Keel's own
  branding; an automatic answer says so in its ``Auto-Submitted`` header. It is handed to the email provider here,
  in the delivery's own job, so that the delivery records the provider's answer: 429, 5xx and network errors are
  retried on the delivery's schedule, any other refusal is not worth retrying. The provider keeps no idempotency
  key, so an email it accepted while its answer was lost (a timeout) is sent again by the retry, as the same
  message: its Message-ID is made from the delivery's id (``tenancy.emails.message_id``).
- **SMS** goes through the SMS provider (``sms.providers.get_provider``), outside the campaign gates (no consent,
  quiet hours, budget or warm-up: the person asked for these messages), but never to a number on the organization's
  do-not-contact list. It is sent from the organization's first active sending number. A retried SMS first asks
  the provider whether the earlier attempt went out after all (its answer may have been lost), so it is never
  sent twice.
- **Slack** is posted to the organization's incoming webhook as ``{"text": ...}``: https on Slack's hosts only, a
  10 s timeout, no redirects. 2xx is sent; 429, 5xx and network errors are retried; any other answer (a removed
  webhook: 403, 404, 410) is not worth retrying.

A refusal that may pass carries the wait the provider asked for (``SendError.retry_after``, from the ``Retry-After``
header of SendGrid's or Slack's answer, or of Twilio's through ``ProviderError.retry_after``): the retry then waits
at least that long (``notifications.services.delivery``), since an earlier one would only be refused again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from anymail.exceptions import AnymailError

from msp.retry_after import retry_after_header
from notifications import attachments
from notifications.models import Channel, Delivery, Reason
from notifications.rendering import absolute_url
from notifications.services.preferences import slack_url_problem, slack_webhook
from sms.models import DoNotContact, SendingNumber
from sms.providers import get_provider
from sms.providers.base import OutboundMessage, ProviderError
from tenancy.crypto import decrypt
from tenancy.emails import email_failure, email_send

SLACK_TIMEOUT = 10.0  # seconds
EXCERPT = 200
# On automatic answers, so that the other side's robots do not answer them in turn (RFC 3834).
AUTOMATIC_REPLY = {"Auto-Submitted": "auto-replied"}


@dataclass(frozen=True)
class Sent:
    provider_id: str = ""


@dataclass(frozen=True)
class Skipped:
    reason: str
    detail: str = ""


class SendError(Exception):
    """The channel refused or could not be reached; ``retryable`` says a later attempt may succeed, and
    ``retry_after`` is the wait the provider asked for before it (its ``Retry-After`` header), when it named one."""

    def __init__(self, message: str, *, retryable: bool, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


Outcome = Sent | Skipped


def _sealed(delivery: Delivery) -> dict[str, Any]:
    if not delivery.notice.sealed:
        return {}
    try:
        values: dict[str, Any] = json.loads(decrypt(delivery.notice.sealed))
    except ValueError as error:
        raise SendError(f"The sealed values cannot be read: {error}.", retryable=False) from error
    return values


def send_email(delivery: Delivery) -> Outcome:
    notice = delivery.notice
    organization = delivery.organization
    context: dict[str, Any]
    if notice.template:
        person = delivery.notification.user if delivery.notification else None
        context = {**notice.context, "recipient": person.get_short_name() if person else "", **_sealed(delivery)}
        template = notice.template
    else:
        url = delivery.notification.url if delivery.notification else str(notice.context.get("url") or "")
        context = {"subject": delivery.subject, "body": delivery.body, "url": absolute_url(url) if url else ""}
        template = "notification"
    headers = AUTOMATIC_REPLY if notice.auto_reply else None
    specs = notice.context.get("attachments") if notice.template else None
    try:
        files = attachments.make(delivery.organization_id, specs) if specs else None
    except LookupError as gone:
        raise SendError(f"An attachment no longer exists: {gone}", retryable=False) from None
    try:
        email_send(to=delivery.to, template=template, context=context, organization=organization, headers=headers,
                   attachments=files, now=True, key=delivery.pk)  # fmt: skip
    except (AnymailError, OSError) as error:
        raise _email_error(error) from error
    return Sent()


def _email_error(error: Exception) -> SendError:
    """The email provider's refusal in words staff can act on; retryable when it may pass (429, 5xx, no answer)."""
    failure = email_failure(error)
    return SendError(failure.message, retryable=failure.retryable, retry_after=failure.retry_after)


def sender_number(delivery: Delivery) -> str | None:
    if delivery.organization_id is None:
        return None
    number = (
        SendingNumber.objects.filter(organization_id=delivery.organization_id, active=True)
        .order_by("phone_e164")
        .values_list("phone_e164", flat=True)
        .first()
    )
    return number


def send_sms(delivery: Delivery) -> Outcome:
    if delivery.organization_id is None:  # platform notices are emailed only
        raise SendError("A platform notice sends no SMS.", retryable=False)
    if DoNotContact.objects.for_org(delivery.organization_id).filter(phone_e164=delivery.to).exists():
        return Skipped(Reason.DNC)
    sender = sender_number(delivery)
    if sender is None:
        return Skipped(Reason.NO_SENDER, "The organization has no active sending number.")
    provider = get_provider()
    try:
        if delivery.attempts > 1 and delivery.first_attempt_at is not None:
            earlier = provider.find(
                to=delivery.to, from_=sender, body=delivery.body, sent_after=delivery.first_attempt_at
            )
            if earlier is not None:
                return Sent(earlier.sid)
        state = provider.send(OutboundMessage(to=delivery.to, from_=sender, body=delivery.body))
    except ProviderError as error:
        code = f" ({error.code})" if error.code and error.code not in error.message else ""
        raise SendError(f"{error.message}{code}", retryable=error.retryable, retry_after=error.retry_after) from error
    return Sent(state.sid)


def send_slack(delivery: Delivery) -> Outcome:
    webhook = slack_webhook(delivery.organization) if delivery.organization is not None else None
    if webhook is None or delivery.notice.event_type not in webhook.event_types:
        return Skipped(Reason.NO_WEBHOOK, "Slack was turned off for this event type before it was sent.")
    try:
        url = decrypt(webhook.url_encrypted)
    except ValueError as error:
        raise SendError(f"The webhook address cannot be read: {error}.", retryable=False) from error
    problem = slack_url_problem(url)
    if problem:
        raise SendError(problem, retryable=False)
    try:
        response = requests.post(url, json={"text": delivery.body}, timeout=SLACK_TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        raise SendError(f"Slack could not be reached: {type(error).__name__}.", retryable=True) from error
    if 200 <= response.status_code < 300:
        return Sent()
    answer = f"Slack answered {response.status_code}: {response.text[:EXCERPT]}"
    retryable = response.status_code == 429 or response.status_code >= 500
    wait = retry_after_header(response.headers) if retryable else None
    raise SendError(answer, retryable=retryable, retry_after=wait)


SENDERS = {Channel.EMAIL: send_email, Channel.SMS: send_sms, Channel.SLACK: send_slack}
