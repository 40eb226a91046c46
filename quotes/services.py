"""Every write to quotes. Each service is one transaction; email and events go out after it commits.

Status moves only along ``models.TRANSITIONS`` and always by a conditional UPDATE (``WHERE status IN …``) whose row
count is checked, so two requests, two workers or a retried task never send, accept or expire a quote twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from events.services import publish
from qualification.models import NextStep, Qualification, QualificationTier
from qualification.selectors import self_serve_quote_decision
from quotes import pricing
from quotes.models import (
    OPEN_STATUSES,
    QUOTE_VALIDITY,
    TRANSITIONS,
    AddOn,
    Plan,
    Quote,
    QuoteLine,
    QuoteStatus,
)
from tenancy.emails import email_send
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization, User

logger = logging.getLogger(__name__)

EXPIRY_BATCH = 500


class QuoteNotAllowedError(Exception):
    """The prospect may not get a self-serve quote for this tier (yet): ``message`` says why, ``next_step`` what
    to do instead (a ``qualification.models.NextStep`` value or ``complete_questionnaire``)."""

    def __init__(self, message: str, next_step: str) -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step


# -- input ------------------------------------------------------------------------------------------------------------


def _clean_contact(email: Any, tier: Any) -> tuple[str, str]:
    errors: dict[str, list[str]] = {}
    clean_email = email.strip().lower() if isinstance(email, str) else ""
    try:
        validate_email(clean_email)
    except ValidationError:
        errors["email"] = ["Enter a valid email address."]
    if tier not in QualificationTier.values:
        errors["tier"] = [f"Tier must be one of {', '.join(QualificationTier.values)}."]
    if errors:
        raise ServiceValidationError(errors)
    return clean_email, str(tier)


def _configuration_errors(errors: dict[str, list[str]]) -> ServiceValidationError:
    """Pricing names fields inside the configuration; the caller sent them as ``configuration.<field>``."""
    return ServiceValidationError(
        {field if field == "configuration" else f"configuration.{field}": msgs for field, msgs in errors.items()}
    )


def _payload(quote: Quote) -> dict[str, Any]:
    # No key (it grants access to the quote) and no email (personal data) in events.
    return {
        "id": quote.id,
        "tier": quote.tier,
        "status": quote.status,
        "is_custom": quote.is_custom,
        "price_monthly": str(quote.price_monthly),
        "currency": quote.currency,
        "organization_id": quote.organization_id,
    }


def _lines_create(quote: Quote, priced: pricing.Priced) -> None:
    QuoteLine.objects.bulk_create(
        QuoteLine(
            quote=quote,
            position=position,
            code=item.code,
            description=item.description,
            quantity=item.quantity,
            unit_price=item.unit_price,
            amount=item.amount,
        )
        for position, item in enumerate(priced.lines, start=1)
    )


# -- creating ---------------------------------------------------------------------------------------------------------


def quote_create(*, email: str, tier: str, configuration: Mapping[str, Any]) -> Quote:
    """A self-serve quote from the price book, for a prospect whose qualification for ``tier`` is approved.

    Raises ServiceValidationError (by field) on bad input and :class:`QuoteNotAllowedError` when the prospect may
    not self-serve; nothing is stored in either case.
    """
    email, tier = _clean_contact(email, tier)
    decision = self_serve_quote_decision(email=email, tier=tier)
    if not decision.allowed:
        raise QuoteNotAllowedError(decision.message, decision.next_step)
    plan = Plan.objects.filter(tier=tier, active=True).first()
    if plan is None or plan.custom_quote:
        message = "This plan is quoted by our team. Get in touch and we will prepare one for you."
        raise QuoteNotAllowedError(message, NextStep.CONTACT_SALES)
    catalogue = {add_on.code: add_on.as_price() for add_on in AddOn.objects.filter(active=True)}
    try:
        config = pricing.parse_configuration(configuration)
        priced = pricing.price_quote(plan.as_price(), catalogue, config)
    except pricing.PricingError as exc:
        raise _configuration_errors(exc.errors) from exc
    with transaction.atomic():
        quote = Quote.objects.create(
            email=email,
            tier=tier,
            configuration=config.as_dict(),
            price_monthly=priced.total,
            currency=priced.currency,
            qualification=decision.qualification,
        )
        _lines_create(quote, priced)
        publish(None, "quote.created", _payload(quote))
    return quote


def _custom_priced(lines: Iterable[pricing.CustomLine | Mapping[str, Any]], currency: str) -> pricing.Priced:
    try:
        return pricing.price_lines(lines, currency)
    except pricing.PricingError as exc:
        raise ServiceValidationError(exc.errors) from exc


def quote_create_custom(
    *,
    email: str,
    tier: str,
    lines: Iterable[pricing.CustomLine | Mapping[str, Any]],
    created_by: User,
    currency: str = "AUD",
    valid_for: timedelta = QUOTE_VALIDITY,
) -> Quote:
    """A quote whose lines staff wrote (Enterprise, or any tier by arrangement). Its price is the sum of its lines.
    It is linked to the prospect's qualification for ``tier`` when there is one."""
    email, tier = _clean_contact(email, tier)
    errors: dict[str, list[str]] = {}
    currency = str(currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        errors["currency"] = ["Currency must be a three-letter ISO 4217 code."]
    if not getattr(created_by, "is_staff", False):
        errors["created_by"] = ["Only staff write custom quotes."]
    if not timedelta(days=1) <= valid_for <= timedelta(days=365):
        errors["valid_for"] = ["A quote is valid for between 1 and 365 days."]
    if errors:
        raise ServiceValidationError(errors)
    priced = _custom_priced(lines, currency)
    with transaction.atomic():
        quote = Quote.objects.create(
            email=email,
            tier=tier,
            is_custom=True,
            price_monthly=priced.total,
            currency=priced.currency,
            expires_at=timezone.now() + valid_for,
            created_by=created_by,
            qualification=Qualification.objects.filter(customer_email__iexact=email, tier=tier).first(),
        )
        _lines_create(quote, priced)
        publish(None, "quote.created", _payload(quote))
    return quote


def quote_lines_replace(*, quote: Quote, lines: Iterable[pricing.CustomLine | Mapping[str, Any]], actor: User) -> Quote:
    """Rewrite the lines of a custom quote that has not been sent yet."""
    priced = _custom_priced(lines, quote.currency)
    with transaction.atomic():
        locked = Quote.objects.select_for_update().get(pk=quote.pk)
        if not locked.is_custom:
            raise ConflictError("Only custom quotes have their lines written by staff.", field="lines")
        if locked.status != QuoteStatus.DRAFT:
            raise ConflictError(f"A {locked.get_status_display().lower()} quote cannot be changed.", field="status")
        locked.lines.all().delete()
        _lines_create(locked, priced)
        locked.price_monthly = priced.total
        locked.save(update_fields=["price_monthly", "updated_at"])
        publish(None, "quote.updated", _payload(locked))
    quote.refresh_from_db()
    return quote


# -- status -----------------------------------------------------------------------------------------------------------


def _transition(quote: Quote, *, to: str, now: datetime, past_expiry: bool = False, **fields: Any) -> bool:
    """Move ``quote`` to ``to`` if its current status allows it; True when this call made the change.
    Open quotes past their expiry may only be expired (or accepted, when ``past_expiry``: payment was taken)."""
    sources = [status for status, targets in TRANSITIONS.items() if to in targets]
    candidates = Quote.objects.filter(pk=quote.pk, status__in=sources)
    if not past_expiry:
        candidates = candidates.filter(expires_at__gt=now)
    changed = candidates.update(status=to, updated_at=now, **fields)
    quote.refresh_from_db()
    return changed == 1


def _refuse(quote: Quote, verb: str, now: datetime) -> ConflictError:
    status = quote.effective_status(now)
    if status == QuoteStatus.EXPIRED:
        return ConflictError(f"This quote expired on {quote.expires_at:%d %B %Y}.", field="status")
    return ConflictError(f"A {quote.get_status_display().lower()} quote cannot be {verb}.", field="status")


def quote_send(*, quote: Quote, actor: User | None = None) -> bool:
    """Email the prospect the link to their quote (DRAFT → SENT). False if it was already sent: never twice."""
    now = timezone.now()
    with transaction.atomic():
        if not _transition(quote, to=QuoteStatus.SENT, now=now, sent_at=now):
            if quote.status == QuoteStatus.SENT:
                return False
            raise _refuse(quote, "sent", now)
        lines = list(quote.lines.all())
        email_send(
            to=quote.email,
            template="quote_sent",
            context={
                "tier_name": quote.get_tier_display(),
                "lines": lines,
                "price_monthly": quote.price_monthly,
                "currency": quote.currency,
                "expires_at": quote.expires_at,
                "path": quote.url,
                "sent_by": actor.get_short_name() if actor is not None else "",
            },
            organization=quote.organization,
        )
        publish(quote.organization, "quote.sent", _payload(quote))
    logger.info("quote %s sent", quote.id)
    return True


def quote_reject(*, quote: Quote, actor: User | None = None, reason: str = "") -> bool:
    """The prospect declined, or staff withdrew the quote (DRAFT/SENT → REJECTED). False if already rejected."""
    now = timezone.now()
    with transaction.atomic():
        if not _transition(quote, to=QuoteStatus.REJECTED, now=now, rejected_at=now, rejection_reason=reason[:300]):
            if quote.status == QuoteStatus.REJECTED:
                return False
            raise _refuse(quote, "rejected", now)
        publish(quote.organization, "quote.rejected", _payload(quote))
    return True


def quote_expire(*, quote: Quote, actor: User | None = None) -> bool:
    """Withdraw an open quote now (DRAFT/SENT → EXPIRED). False if it had already expired."""
    now = timezone.now()
    with transaction.atomic():
        if not _transition(quote, to=QuoteStatus.EXPIRED, now=now, past_expiry=True, expired_at=now):
            if quote.status == QuoteStatus.EXPIRED:
                return False
            raise _refuse(quote, "expired", now)
        publish(quote.organization, "quote.expired", _payload(quote))
    return True


def quote_mark_accepted(*, quote: Quote, organization: Organization) -> bool:
    """Checkout completed for this quote: DRAFT/SENT → ACCEPTED, provisioned as ``organization``.

    Idempotent: a repeat for the same organization is a no-op returning False. An open quote is accepted even past
    its expiry (the customer has paid; checkout refuses expired quotes before taking payment). Expired, rejected, or
    accepted-for-another-organization quotes raise ConflictError.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = _transition(
            quote, to=QuoteStatus.ACCEPTED, now=now, past_expiry=True, accepted_at=now, organization=organization
        )
        if not changed:
            if quote.status == QuoteStatus.ACCEPTED and quote.organization_id == organization.pk:
                return False
            if quote.status == QuoteStatus.ACCEPTED:
                raise ConflictError("This quote has already been accepted.", field="status")
            raise _refuse(quote, "accepted", now)
        publish(organization, "quote.accepted", _payload(quote))
    return True


def quotes_expire(*, now: datetime | None = None) -> int:
    """Expire every open quote whose expiry has passed (the beat task). Returns how many this call expired.

    Rows are claimed with SELECT … FOR UPDATE SKIP LOCKED and moved by a conditional UPDATE, so concurrent runs
    share the work and each quote is expired, and announced, once.
    """
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            ids = list(
                Quote.objects.select_for_update(skip_locked=True)
                .filter(status__in=OPEN_STATUSES, expires_at__lte=now)
                .order_by("expires_at")
                .values_list("id", flat=True)[:EXPIRY_BATCH]
            )
            if not ids:
                return total
            changed = Quote.objects.filter(pk__in=ids, status__in=OPEN_STATUSES).update(
                status=QuoteStatus.EXPIRED, expired_at=now, updated_at=now
            )
            expired = Quote.objects.filter(pk__in=ids, status=QuoteStatus.EXPIRED, expired_at=now)
            for quote in expired.select_related("organization"):
                publish(quote.organization, "quote.expired", _payload(quote))
        total += changed
        if len(ids) < EXPIRY_BATCH:
            return total
