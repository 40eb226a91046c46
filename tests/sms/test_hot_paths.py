"""The two public messaging endpoints that take the most traffic, Twilio's status callbacks and short-link clicks:
how many statements each answer costs (so a regression shows), and that the statements that replaced row locks
still end concurrent callbacks of one message in the right state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from sms import links
from sms.links import is_bot
from sms.models import Click, JobState, SendingNumber, SendJob, ShortLink, StatusCallback
from sms.services.callbacks import Outcome, StatusResult, status_apply
from tests.helpers import race
from tests.sms.test_status_webhook import (
    _twilio,  # noqa: F401  (autouse: the Twilio settings the callbacks are signed with)
    deliver,
    make_job,
    params,
)

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1"
)
EXPIRES = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
POSTGRES = "postgresql"


def on(postgresql: int, sqlite: int) -> int:
    """The expected count for the database the tests run on."""
    return postgresql if connection.vendor == POSTGRES else sqlite


# -- status callbacks: statements per answer --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("sent", JobState.SENT),  # the job is SENT already: only the callback is recorded
        ("delivered", JobState.DELIVERED),
        ("undelivered", JobState.FAILED),  # an error code that keeps the number contactable
        ("partially_delivered", JobState.SENT),  # a status that moves nothing
    ],
)
def test_a_status_callback_costs_one_statement_on_postgresql(client, acme, django_assert_num_queries, status, state):
    job = make_job(acme, "+61412345678", "SM" + "1" * 32)
    moves = status in ("delivered", "undelivered")
    # PostgreSQL: one statement finds the job, records the callback and moves the job.
    # SQLite: the job's SELECT and the callback's INSERT; a move adds SAVEPOINT, UPDATE and RELEASE around them.
    with django_assert_num_queries(on(1, 5 if moves else 2)):
        response = deliver(client, params(job.provider_sid, status, ErrorCode="30003"))
    assert (response.status_code, response.content) == (200, b"")
    job.refresh_from_db()
    assert job.state == state
    assert list(StatusCallback.objects.values_list("sid", "status")) == [(job.provider_sid, status)]


@pytest.mark.django_db
def test_an_unknown_message_costs_one_statement(client, acme, django_assert_num_queries):
    make_job(acme, "+61412345678", "SM" + "1" * 32)
    # The one statement (PostgreSQL) or the job's SELECT (SQLite) finds no job; nothing is written.
    with django_assert_num_queries(1):
        response = deliver(client, params("SM" + "f" * 32, "delivered"))
    assert (response.status_code, response.content) == (200, b"")
    assert not StatusCallback.objects.exists()


@pytest.mark.django_db
def test_a_repeat_costs_one_statement_more_to_report_the_state(acme, django_assert_num_queries):
    job = make_job(acme, "+61412345678", "SM" + "1" * 32)
    status_apply(params(job.provider_sid, "delivered"))
    # PostgreSQL: the statement that records nothing, then the job's state. SQLite: the job's SELECT, the INSERT
    # that inserts nothing, then the job's state.
    with django_assert_num_queries(on(2, 3)):
        result = status_apply(params(job.provider_sid, "delivered"))
    assert (result.outcome, result.job_id, result.state) == (Outcome.DUPLICATE, job.pk, JobState.DELIVERED)
    assert StatusCallback.objects.count() == 1


@pytest.mark.django_db
def test_a_callback_with_a_price_takes_the_steps_in_a_transaction(acme, django_assert_num_queries):
    job = make_job(acme, "+61412345678", "SM" + "1" * 32)
    # The job's SELECT, SAVEPOINT, the callback's INSERT, the job's UPDATE, RELEASE.
    with django_assert_num_queries(5):
        result = status_apply(params(job.provider_sid, "delivered", Price="-0.00790"))
    assert (result.outcome, result.state) == (Outcome.APPLIED, JobState.DELIVERED)
    job.refresh_from_db()
    assert (job.state, job.provider_price) == (JobState.DELIVERED, Decimal("0.0079"))


@pytest.mark.django_db
def test_a_job_still_sending_keeps_its_first_sent_at_and_loses_its_lease(acme):
    job = make_job(acme, "+61412345670", "SM" + "c" * 32, state=JobState.SENDING, lease_until=EXPIRES)
    later = datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC)
    with time_machine.travel(later, tick=False):
        status_apply(params(job.provider_sid, "delivered"))
    with time_machine.travel(later + timedelta(seconds=5), tick=False):
        status_apply(params(job.provider_sid, "sent"))
    job.refresh_from_db()
    assert (job.state, job.sent_at, job.delivered_at, job.lease_until, job.updated_at) == (
        JobState.DELIVERED,
        later,
        later,
        None,
        later,  # the late "sent" changed nothing, not even the time of the last change
    )


# -- status callbacks: concurrency (PostgreSQL) -----------------------------------------------------------------------


def _postgresql_only() -> None:
    if connection.vendor != POSTGRES:
        pytest.skip("concurrent transactions need PostgreSQL")


@pytest.mark.django_db(transaction=True)
def test_a_plain_callback_commits_without_waiting_for_the_disk_and_only_its_own_transaction(client, acme):
    """A crash of PostgreSQL may lose the last fraction of a second of such callbacks: their jobs stay SENT, and
    ``settle_sent`` asks Twilio about them (test_dispatch: a lost final status is asked for later)."""
    if connection.vendor != POSTGRES:
        pytest.skip("asynchronous commit is PostgreSQL's")
    job = make_job(acme, "+61412345678", "SM" + "2" * 32)
    with CaptureQueriesContext(connection) as queries:
        response = deliver(client, params(job.provider_sid, "delivered"))
    assert response.status_code == 200
    [statement] = [query["sql"] for query in queries.captured_queries]  # no BEGIN, SET or COMMIT around it
    assert "set_config('synchronous_commit', 'off', true)" in statement
    job.refresh_from_db()
    assert job.state == JobState.DELIVERED  # committed
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)  # the setting ended with the callback's transaction

    # Inside a caller's transaction the callback leaves that transaction's commit as it is.
    other = make_job(acme, "+61412345679", "SM" + "3" * 32)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert status_apply(params(other.provider_sid, "delivered")).outcome == Outcome.APPLIED
        cursor = connection.cursor()
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    assert "set_config" not in queries.captured_queries[0]["sql"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_a_plain_callback_apply_it_once(acme):
    _postgresql_only()
    job = make_job(acme, "+61412345678", "SM" + "2" * 32)

    outcomes = race(lambda: status_apply(params(job.provider_sid, "delivered")), 4)

    assert sorted(result.outcome for result in outcomes) == sorted([Outcome.APPLIED] + [Outcome.DUPLICATE] * 3)
    assert {result.state for result in outcomes} == {JobState.DELIVERED}  # a repeat reports the state it found
    assert StatusCallback.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("price", [None, "-0.00790"], ids=["one statement", "steps"])
def test_concurrent_final_statuses_leave_the_job_in_the_first_ones_state(acme, price):
    # "delivered" and "undelivered" both end a message: whichever is applied first wins, whole, and the other
    # changes nothing (its price is the same) and reports the state the first left.
    _postgresql_only()
    job = make_job(acme, "+61412345678", "SM" + "3" * 32)
    extra = {"Price": price} if price else {}
    forms = iter(
        [
            params(job.provider_sid, "delivered", **extra),
            params(job.provider_sid, "undelivered", ErrorCode="30003", **extra),
        ]
    )

    outcomes = race(lambda: status_apply(next(forms)), 2)

    assert all(isinstance(result, StatusResult) for result in outcomes), outcomes
    assert sorted(result.outcome for result in outcomes) == [Outcome.APPLIED, Outcome.UNCHANGED]
    winner = next(result for result in outcomes if result.outcome == Outcome.APPLIED)
    job.refresh_from_db()
    assert {result.state for result in outcomes} == {job.state}
    if winner.status == "delivered":
        assert (job.state, job.error_code, job.delivered_at is not None) == (JobState.DELIVERED, "", True)
    else:
        assert (job.state, job.error_code, job.delivered_at) == (JobState.FAILED, "30003", None)
    assert job.provider_price == (Decimal("0.0079") if price else None)
    assert StatusCallback.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_sent_and_delivered_end_delivered_whatever_the_order(acme):
    _postgresql_only()
    for n in range(5):
        job = make_job(acme, "+61412345678", f"SM{n:032d}", state=JobState.SENDING, lease_until=EXPIRES)
        forms = iter([params(job.provider_sid, "sent"), params(job.provider_sid, "delivered")])

        def apply(forms: Iterator[dict[str, str]] = forms) -> StatusResult:
            return status_apply(next(forms))

        outcomes = race(apply, 2)

        by_status = {result.status: result for result in outcomes}
        assert (by_status["delivered"].outcome, by_status["delivered"].state) == (Outcome.APPLIED, JobState.DELIVERED)
        # "sent" either came first (and moved the job to SENT) or found it DELIVERED already.
        assert (by_status["sent"].outcome, by_status["sent"].state) in [
            (Outcome.APPLIED, JobState.SENT),
            (Outcome.UNCHANGED, JobState.DELIVERED),
        ]
        job.refresh_from_db()
        assert (job.state, job.lease_until) == (JobState.DELIVERED, None)
        assert job.sent_at is not None and job.delivered_at is not None
        SendJob.objects.filter(pk=job.pk).delete()


# -- short links ------------------------------------------------------------------------------------------------------


@pytest.fixture
def link(acme: Any) -> ShortLink:
    SendingNumber.objects.create(organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 1, 1))
    job = make_job(acme, "+61412000001", "SM" + "4" * 32, state=JobState.DELIVERED)
    return ShortLink.objects.create(
        organization=acme, token="Hp7_x-Z9kQ", job=job, url="https://shop.acme.test/sale", expires_at=EXPIRES
    )


@pytest.mark.django_db
def test_a_click_costs_one_statement(link, django_assert_num_queries):
    # The INSERT of the click that selects the valid link and returns its URL.
    with time_machine.travel(EXPIRES - timedelta(days=1), tick=False), django_assert_num_queries(1):
        response = Client().get("/s/Hp7_x-Z9kQ", HTTP_USER_AGENT=PHONE)
    assert (response.status_code, response["Location"]) == (302, "https://shop.acme.test/sale")
    click = Click.objects.get()
    assert (click.organization_id, click.link_id, click.at, click.is_bot) == (
        link.organization_id,
        link.pk,
        EXPIRES - timedelta(days=1),
        False,
    )


@pytest.mark.django_db
def test_an_unknown_token_costs_two_statements(link, django_assert_num_queries):
    # The INSERT that finds no link, then the link's SELECT.
    with django_assert_num_queries(2):
        assert Client().get("/s/unknown01", HTTP_USER_AGENT=PHONE).status_code == 404
    assert not Click.objects.exists()


@pytest.mark.django_db
def test_an_expired_link_costs_four_statements(link, django_assert_num_queries):
    # The INSERT that finds no valid link, the link's SELECT, the sender's business name, the organization's name.
    with time_machine.travel(EXPIRES, tick=False), django_assert_num_queries(4):
        response = Client().get("/s/Hp7_x-Z9kQ", HTTP_USER_AGENT=PHONE)
    assert response.status_code == 410 and "Acme Pty Ltd" in response.content.decode()
    assert not Click.objects.exists()


@pytest.mark.django_db
def test_each_visit_is_counted(link):
    with time_machine.travel(EXPIRES - timedelta(days=1), tick=False):
        for _ in range(3):
            assert Client().get("/s/Hp7_x-Z9kQ", HTTP_USER_AGENT=PHONE).status_code == 302
    assert Click.objects.filter(link=link).count() == 3


@pytest.mark.parametrize(
    "agent",
    [
        # Fetchers only the module's own list names, in any case.
        "Mozilla/5.0 (iPhone) VIBER/21.3",
        "Snapchat/12.80 (like Facebook)",
        "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
        "Mozilla/5.0 (X11; Linux x86_64) Google-PageRenderer Google (+https://developers.google.com/+/web/snippet/)",
        "MASTODON/4.2.8 (http.rb/5.1.1; +https://mastodon.social/)",
    ],
)
def test_preview_fetchers_are_recognised_whatever_their_case(agent):
    assert is_bot(method="GET", user_agent=agent) is True
    assert is_bot(method="GET", user_agent=agent.lower()) is True
    assert is_bot(method="GET", user_agent=agent.upper()) is True


@pytest.mark.django_db(transaction=True)
def test_a_click_commits_without_waiting_for_the_disk_and_only_its_own_transaction(link):
    if connection.vendor != POSTGRES:
        pytest.skip("asynchronous commit is PostgreSQL's")
    with (
        time_machine.travel(EXPIRES - timedelta(days=1), tick=False),
        CaptureQueriesContext(connection) as queries,
    ):
        response = Client().get("/s/Hp7_x-Z9kQ", HTTP_USER_AGENT=PHONE)
    assert response.status_code == 302
    # One statement, its own transaction: no BEGIN, SET or COMMIT around it.
    [statement] = [query["sql"] for query in queries.captured_queries]
    assert statement.startswith('INSERT INTO "sms_click"')
    assert Click.objects.count() == 1  # committed
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)  # the setting ended with the click's transaction
    # Within that transaction the statement turned synchronous commit off, so the commit did not wait for the disk.
    with transaction.atomic(), connection.cursor() as cursor:
        at = EXPIRES - timedelta(days=1)
        cursor.execute(links._CLICK_INSERT_ASYNCHRONOUS, [at, PHONE, False, "Hp7_x-Z9kQ", at])
        assert cursor.fetchone() is not None
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("off",)
        transaction.set_rollback(True)
