"""Partner webhooks: endpoints, the fan-out of published events to them, and signed deliveries with retries.

- **Endpoints** belong to an organization or to a partner (a partner's endpoint gets the events of all its
  organizations). The URL must not lead into private networks (``events.addresses``). The signing secret is made
  here, returned once, and stored encrypted (``tenancy.crypto``).
- **Fan-out** is an outbox handler (``events.registry``): when an event is published, one ``WebhookDelivery`` per
  subscribed active endpoint is created (unique per endpoint and event, so fanning out twice changes nothing) and,
  after commit, each endpoint is flushed.
- **Delivery**: ``endpoint_flush`` claims the endpoint's due deliveries oldest event first, one at a time
  (``SKIP LOCKED``, RUNNING with a claim time), POSTs ``{"id", "type", "created", "organization", "data"}`` with
  ``Keel-Signature`` (``events.signing``), a 10 s timeout and no redirects, and records the attempt (status, latency,
  a response excerpt). A 2xx is delivered. Anything else is retried after ``RETRY_DELAYS`` (about 24 hours in all),
  or after the wait a 429 or 503 named in ``Retry-After`` when that is longer (at most the longest of
  ``RETRY_DELAYS``), then given up (FAILED). A claim left RUNNING by a dead worker is claimed again after
  ``CLAIM_TIMEOUT``: each event reaches each endpoint at least once.
- **Slowing down**: an endpoint answering 429 (or 503 with ``Retry-After``) asked Keel to slow down. The flush stops
  there and the endpoint is paused (``paused_until``) for the wait it named, else for the first of ``RETRY_DELAYS``:
  claims and ``due_endpoints`` pass it by until then, so its other deliveries stay due, unclaimed and with no attempt
  spent, and go once the pause is over. Their ``next_attempt_at`` is moved to the pause's end, so what the admin, the
  API and the portal show is when they will really go.
- An endpoint whose last ``DISABLE_AFTER`` events in a row were given up is switched off, and its owner is emailed.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from events import catalogue
from events.addresses import url_problem
from events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookState
from events.registry import subscribe
from events.signing import HEADER, header_value
from msp.retry_after import retry_after_header, wait_before_retry
from tenancy.audit import audit_record
from tenancy.crypto import decrypt, encrypt
from tenancy.emails import email_send
from tenancy.errors import ServiceValidationError
from tenancy.models import Membership, Organization, Partner, PartnerMembership, Role, User

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix that marks a secret, not one
TIMEOUT = 10.0  # seconds per POST
RETRY_DELAYS = (60, 300, 1800, 7200, 14400, 28800, 28800)  # seconds after attempts 1..7: about 22.6 hours in all
LONGEST_WAIT = timedelta(seconds=max(RETRY_DELAYS))  # the most an endpoint's Retry-After holds a delivery back
ADVISED_STATUSES = (429, 503)  # the answers whose Retry-After says when to post again
DISABLE_AFTER = 10  # events in a row given up on
CLAIM_TIMEOUT = timedelta(seconds=TIMEOUT * 3)
FLUSH_LIMIT = 200  # deliveries one flush sends at most
MAX_ENDPOINTS = 20  # per organization or partner
EXCERPT = 500
ACTIVE_STATES = (WebhookState.PENDING, WebhookState.RETRYING, WebhookState.RUNNING)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return decrypt(endpoint.secret_encrypted)


def _clean(url: str | None, event_types: Any, description: str | None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if url is not None:
        url = url.strip()
        problem = "An address is required." if not url else (url_problem(url) if len(url) <= 500 else "Too long.")
        if problem:
            errors["url"] = [problem]
        values["url"] = url
    if event_types is not None:
        if not isinstance(event_types, list) or not event_types or not all(isinstance(t, str) for t in event_types):
            errors["event_types"] = ['Give a list of event types, or ["*"] for all.']
        else:
            unknown = sorted({t for t in event_types if t != "*" and not catalogue.known(t)})
            if unknown:
                errors["event_types"] = [f"Unknown event types: {', '.join(unknown)}."]
            values["event_types"] = ["*"] if "*" in event_types else sorted(set(event_types))
    if description is not None:
        if len(description) > 200:
            errors["description"] = ["At most 200 characters."]
        values["description"] = description.strip()
    if errors:
        raise ServiceValidationError(errors)
    return values


def endpoint_create(
    *,
    url: str,
    event_types: Any,
    description: str = "",
    organization: Organization | None = None,
    partner: Partner | None = None,
    actor: User | None = None,
    ip: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of ``organization`` or ``partner``, and its secret (shown to its owner this once)."""
    if (organization is None) == (partner is None):
        raise ValueError("an endpoint belongs to exactly one organization or partner")
    values = _clean(url, event_types, description)
    owned = WebhookEndpoint.objects.filter(organization=organization, partner=partner)
    if owned.count() >= MAX_ENDPOINTS:
        raise ServiceValidationError({"url": [f"At most {MAX_ENDPOINTS} endpoints; remove one first."]})
    secret = new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            organization=organization,
            partner=partner,
            secret_encrypted=encrypt(secret),
            secret_prefix=secret[:12],
            created_by=actor,
            **values,
        )
        _audit(endpoint, "webhook.endpoint_created", actor, ip, {"url": endpoint.url, "events": endpoint.event_types})
    return endpoint, secret


def _audit(endpoint: WebhookEndpoint, action: str, actor: User | None, ip: str | None, changes: dict[str, Any]) -> None:
    """Endpoint changes are security-relevant (where the organization's data is sent, and with which secret)."""
    audit_record(
        action=action,
        organization=endpoint.organization,
        actor=actor,
        target=endpoint,
        changes={"partner": str(endpoint.partner_id), **changes} if endpoint.partner_id else changes,
        ip=ip,
    )


def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    event_types: Any = None,
    description: str | None = None,
    active: bool | None = None,
    actor: User | None = None,
    ip: str | None = None,
) -> WebhookEndpoint:
    """Change an endpoint. Switching it back on clears the failures that switched it off."""
    values = _clean(url, event_types, description)
    changes = {
        name: [getattr(endpoint, name), value] for name, value in values.items() if getattr(endpoint, name) != value
    }
    if active is not None and active != endpoint.active:
        changes["active"] = [endpoint.active, active]
    for name, value in values.items():
        setattr(endpoint, name, value)
    fields = list(values)
    if active is not None and active != endpoint.active:
        endpoint.active = active
        fields.append("active")
        if active:
            endpoint.consecutive_failures, endpoint.disabled_at, endpoint.disabled_reason = 0, None, ""
            fields += ["consecutive_failures", "disabled_at", "disabled_reason"]
    if fields:
        with transaction.atomic():
            endpoint.save(update_fields=[*fields, "updated_at"])
            if changes:
                _audit(endpoint, "webhook.endpoint_updated", actor, ip, changes)
    return endpoint


def endpoint_rotate(*, endpoint: WebhookEndpoint, actor: User | None = None, ip: str | None = None) -> str:
    """A new secret for the endpoint, from the next delivery on; returned this once."""
    secret = new_secret()
    with transaction.atomic():
        endpoint.secret_encrypted, endpoint.secret_prefix = encrypt(secret), secret[:12]
        endpoint.save(update_fields=["secret_encrypted", "secret_prefix", "updated_at"])
        _audit(endpoint, "webhook.secret_rotated", actor, ip, {"secret_prefix": endpoint.secret_prefix})
    return secret


def endpoint_delete(*, endpoint: WebhookEndpoint, actor: User | None = None, ip: str | None = None) -> None:
    """Remove an endpoint with its delivery log; events not yet delivered to it are not sent."""
    with transaction.atomic():
        _audit(endpoint, "webhook.endpoint_deleted", actor, ip, {"url": endpoint.url})
        endpoint.delete()


def _endpoints_for(event: Event) -> list[WebhookEndpoint]:
    if event.organization_id is None:
        return []
    owners = Q(organization_id=event.organization_id)
    partner_id = Organization.objects.filter(pk=event.organization_id).values_list("partner_id", flat=True).first()
    if partner_id is not None:
        owners |= Q(partner_id=partner_id)
    return [endpoint for endpoint in WebhookEndpoint.objects.filter(owners, active=True) if endpoint.takes(event.type)]


def _has_endpoints(event: Event) -> bool:
    """Whether any active endpoint could take the event: most organizations have none, and their events then get no
    delivery row at all."""
    if event.organization_id is None:
        return False
    owners = Q(organization_id=event.organization_id) | Q(partner__organizations__id=event.organization_id)
    return WebhookEndpoint.objects.filter(owners, active=True).exists()


@subscribe("*", name="events.webhooks.fan_out", when=_has_endpoints)
def fan_out(event: Event) -> None:
    """The outbox handler: a delivery per subscribed endpoint, each endpoint flushed after commit."""
    endpoints = _endpoints_for(event)
    if not endpoints:
        return
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(endpoint=endpoint, event=event, next_attempt_at=_not_before(endpoint.paused_until, now))
            for endpoint in endpoints
        ],
        ignore_conflicts=True,
    )
    _flush_after_commit([endpoint.pk for endpoint in endpoints])


def _flush_after_commit(endpoint_ids: list[Any]) -> None:
    from events.tasks import flush_endpoint

    def enqueue() -> None:
        for endpoint_id in endpoint_ids:
            try:
                flush_endpoint.delay(str(endpoint_id))
            except Exception:  # the beat task picks them up
                logger.warning("could not queue webhook flush of %s", endpoint_id, exc_info=True)

    transaction.on_commit(enqueue)


def body_of(event: Event) -> bytes:
    document = {
        "id": str(event.pk),
        "type": event.type,
        "created": event.created_at.isoformat(),
        "organization": str(event.organization_id) if event.organization_id else None,
        "data": event.payload,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    latency_ms: int
    excerpt: str
    error: str
    retry_after: timedelta | None = None  # the wait a 429 or 503 named in Retry-After

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def slow_down(self) -> bool:
        """The endpoint asked Keel to hold off: 429 too many requests, or 503 naming how long."""
        return self.status_code == 429 or (self.status_code == 503 and self.retry_after is not None)


def post(endpoint: WebhookEndpoint, event: Event) -> Answer:
    """One signed POST of ``event`` to ``endpoint``; never raises."""
    problem = url_problem(endpoint.url)
    if problem:
        return Answer(None, 0, "", f"Refused: {problem}"[:300])
    body = body_of(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Keel-Webhooks/1.0",
        "Keel-Event-Id": str(event.pk),
        "Keel-Event-Type": event.type,
        HEADER: header_value(endpoint_secret(endpoint), body, int(time.time())),
    }
    began = time.monotonic()
    try:
        response = requests.post(endpoint.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        elapsed = int((time.monotonic() - began) * 1000)
        return Answer(None, elapsed, "", f"{type(error).__name__}: {error}"[:300])
    elapsed = int((time.monotonic() - began) * 1000)
    advice = retry_after_header(response.headers) if response.status_code in ADVISED_STATUSES else None
    return Answer(response.status_code, elapsed, response.text[:EXCERPT], "", advice)


def _not_paused(now: datetime) -> Q:
    """Deliveries whose endpoint has not asked Keel to wait, or whose wait is over."""
    return Q(endpoint__paused_until__isnull=True) | Q(endpoint__paused_until__lte=now)


def _not_before(paused_until: datetime | None, now: datetime) -> datetime:
    """When a delivery to an endpoint paused until ``paused_until`` may go, at the earliest."""
    return paused_until if paused_until is not None and paused_until > now else now


def _claim(endpoint_id: Any) -> WebhookDelivery | None:
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint")
            .filter(_not_paused(now), endpoint_id=endpoint_id, endpoint__active=True)
            .filter(
                Q(state__in=[WebhookState.PENDING, WebhookState.RETRYING], next_attempt_at__lte=now)
                | Q(state=WebhookState.RUNNING, claimed_at__lt=now - CLAIM_TIMEOUT)
            )
            .order_by("event__created_at", "id")
            .first()
        )
        if delivery is None:
            return None
        delivery.state, delivery.claimed_at, delivery.attempts = WebhookState.RUNNING, now, delivery.attempts + 1
        delivery.save(update_fields=["state", "claimed_at", "attempts"])
    return delivery


def endpoint_flush(endpoint_id: Any, *, limit: int = FLUSH_LIMIT) -> int:
    """Send the endpoint's due deliveries, oldest event first; returns how many were attempted. Stops as soon as the
    endpoint asks Keel to slow down: the rest wait for the pause to end."""
    attempted = 0
    while attempted < limit:
        delivery = _claim(endpoint_id)
        if delivery is None:
            break
        attempted += 1
        answer = post(delivery.endpoint, delivery.event)
        _record(delivery, answer, retry=delivery.event.type != catalogue.PING)  # a ping whose job vanished: once
        if answer.slow_down:
            break
    return attempted


def _record(delivery: WebhookDelivery, answer: Answer, *, retry: bool = True) -> None:
    now = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=answer.status_code,
            latency_ms=answer.latency_ms,
            response_excerpt=answer.excerpt,
            error=answer.error,
        )
        delivery.last_status_code = answer.status_code
        delivery.claimed_at = None
        endpoint = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
        if answer.ok:
            delivery.state, delivery.completed_at = WebhookState.SUCCEEDED, now
            endpoint.filter(consecutive_failures__gt=0).update(consecutive_failures=0)
        elif not retry:
            delivery.state, delivery.completed_at = WebhookState.FAILED, now
        elif delivery.attempts <= len(RETRY_DELAYS):
            delivery.state = WebhookState.RETRYING
            backoff = timedelta(seconds=RETRY_DELAYS[delivery.attempts - 1])
            delivery.next_attempt_at = now + wait_before_retry(backoff, answer.retry_after, longest=LONGEST_WAIT)
        else:
            delivery.state, delivery.completed_at = WebhookState.FAILED, now
            endpoint.update(consecutive_failures=F("consecutive_failures") + 1)
            _maybe_disable(delivery.endpoint_id)
        delivery.save(update_fields=["state", "completed_at", "next_attempt_at", "last_status_code", "claimed_at"])
        if answer.slow_down:
            first = timedelta(seconds=RETRY_DELAYS[0])
            _pause(delivery.endpoint_id, now + wait_before_retry(first, answer.retry_after, longest=LONGEST_WAIT))


def _pause(endpoint_id: Any, until: datetime) -> None:
    """Send nothing to the endpoint before ``until`` (a longer pause already set stays), and move its waiting
    deliveries' next attempt there."""
    WebhookEndpoint.objects.filter(Q(paused_until__isnull=True) | Q(paused_until__lt=until), pk=endpoint_id).update(
        paused_until=until
    )
    WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id, state__in=[WebhookState.PENDING, WebhookState.RETRYING], next_attempt_at__lt=until
    ).update(next_attempt_at=until)
    logger.info("webhook endpoint %s asked Keel to slow down: nothing is sent to it before %s", endpoint_id, until)


def _maybe_disable(endpoint_id: Any) -> None:
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None or not endpoint.active or endpoint.consecutive_failures < DISABLE_AFTER:
        return
    endpoint.active, endpoint.disabled_at = False, timezone.now()
    endpoint.disabled_reason = f"{endpoint.consecutive_failures} events in a row could not be delivered."
    endpoint.save(update_fields=["active", "disabled_at", "disabled_reason", "updated_at"])
    recipients = owners_of(endpoint)
    if recipients:
        email_send(
            to=recipients,
            template="webhook_disabled",
            context={"endpoint": endpoint, "failures": endpoint.consecutive_failures},
            organization=endpoint.organization,
        )


def owners_of(endpoint: WebhookEndpoint) -> list[str]:
    """Who is told about the endpoint: its organization's owners and admins, or its partner's admins."""
    if endpoint.organization_id is not None:
        people = list(
            Membership.objects.filter(
                organization_id=endpoint.organization_id, role__in=[Role.OWNER, Role.ADMIN], user__is_active=True
            ).values_list("user__email", flat=True)
        )
    else:
        people = list(
            PartnerMembership.objects.filter(partner=endpoint.partner, user__is_active=True).values_list(
                "user__email", flat=True
            )
        )
    return sorted(set(people))


def endpoint_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a ``webhook.ping`` to the endpoint (not through the outbox: no other handler sees it) and return its
    delivery. A worker sends it once the caller's transaction commits (:func:`ping_send`), so an endpoint that is slow
    or never answers holds a worker for its timeout, never the web server; the delivery's attempt says what came back.
    A ping asked for while the endpoint's last one is still on its way is that one: pressing the button again
    (or a script calling the API in a loop) sends nothing more until it is answered."""
    organization_id = endpoint.organization_id
    now = timezone.now()
    in_flight = (
        WebhookDelivery.objects.filter(
            endpoint=endpoint,
            event__type=catalogue.PING,
            state=WebhookState.RUNNING,
            created_at__gte=now - CLAIM_TIMEOUT,
        )
        .select_related("event")
        .order_by("-created_at", "-pk")
        .first()
    )
    if in_flight is not None:
        return in_flight
    event = Event.objects.create(
        organization_id=organization_id,
        type=catalogue.PING,
        payload={"endpoint": str(endpoint.pk), "message": "Keel can reach this endpoint."},
        fanned_out_at=now,
    )
    # RUNNING with no attempt claimed yet: the job that sends it claims the one attempt (ping_send).
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event=event, state=WebhookState.RUNNING, attempts=0, claimed_at=now
    )
    delivery.event = event
    delivery_id = delivery.pk

    def enqueue() -> None:
        from events.tasks import send_ping

        try:
            send_ping.delay(delivery_id)
        except Exception:  # the broker is down: send it here rather than leave it waiting for a stale claim
            logger.warning("could not queue webhook ping %s; sending it in-process", delivery_id, exc_info=True)
            ping_send(delivery_id=delivery_id)

    transaction.on_commit(enqueue)
    return delivery


def ping_send(*, delivery_id: int) -> bool:
    """Send a queued ping once and record its attempt (never retried); False when it is gone, was sent already or
    another job (a redelivered task, or the sweep of stale claims) has claimed it: the claim is one conditional update,
    so two jobs running at once cannot both post."""
    unclaimed = {"state": WebhookState.RUNNING, "attempts": 0}
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "event")
        .filter(pk=delivery_id, event__type=catalogue.PING, **unclaimed)
        .first()
    )
    # The claim's conditions are on the row it updates (no join), so PostgreSQL checks them again on the row as the
    # other job left it.
    now = timezone.now()
    if delivery is None or not WebhookDelivery.objects.filter(pk=delivery_id, **unclaimed).update(
        attempts=1, claimed_at=now
    ):
        return False
    delivery.attempts, delivery.claimed_at = 1, now
    _record(delivery, post(delivery.endpoint, delivery.event), retry=False)
    return True


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, now (or once the endpoint's pause is over), with a fresh retry schedule (its attempts
    stay in the log)."""
    paused_until = (
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).values_list("paused_until", flat=True).first()
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).exclude(state=WebhookState.RUNNING).update(
        state=WebhookState.PENDING,
        attempts=0,
        next_attempt_at=_not_before(paused_until, timezone.now()),
        completed_at=None,
    )
    _flush_after_commit([delivery.endpoint_id])
    delivery.refresh_from_db()
    return delivery


def due_endpoints() -> list[str]:
    """Endpoints with a delivery due now, or one whose worker vanished; none that asked Keel to wait."""
    now = timezone.now()
    return [
        str(pk)
        for pk in WebhookDelivery.objects.filter(_not_paused(now), endpoint__active=True)
        .filter(
            Q(state__in=[WebhookState.PENDING, WebhookState.RETRYING], next_attempt_at__lte=now)
            | Q(state=WebhookState.RUNNING, claimed_at__lt=now - CLAIM_TIMEOUT)
        )
        .order_by()
        .values_list("endpoint_id", flat=True)
        .distinct()[:500]
    ]
