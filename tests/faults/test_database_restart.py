"""PostgreSQL goes away in the middle of an SMS dispatch run: the run fails, the worker lives on, and beat's next
run finishes the campaign with each message sent once.

In the normal suite the restart is simulated the way a client sees one: the server ends the worker's own sessions
(``pg_terminate_backend``, found by the worker's ``application_name``), which leaves the other tests on the shared
server alone. The real restart (``pg_ctlcluster ... restart``) cuts every session on the server, so it is marked
``slow`` and runs alone, in ``make test-slow``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from django.db import OperationalError, connection

from sms.tasks import dispatch_messages
from tests.faults.conftest import (
    CONTACTS,
    assert_each_contact_got_one_message,
    campaign_done,
    requires_postgresql,
    run_out_leases,
    sends_per_phone,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), requires_postgresql]

PG_CTLCLUSTER = shutil.which("pg_ctlcluster") or ""
PG_CLUSTER = os.environ.get("KEEL_PG_CLUSTER", "main")


def terminate_sessions(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        (ended,) = cursor.fetchone()
    return int(ended)


def restart_postgresql() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        (number,) = cursor.fetchone()
    version = int(number) // 10000  # 150020 -> 15, the cluster's version
    connection.close()
    subprocess.run(  # noqa: S603 - a fixed command
        [PG_CTLCLUSTER, "--skip-systemctl-redirect", str(version), PG_CLUSTER, "restart"],
        check=True,
        capture_output=True,
    )

    def answers() -> bool:
        try:
            connection.ensure_connection()
        except OperationalError:
            connection.close()
            return False
        return True

    wait_for(answers, "PostgreSQL to accept connections again", timeout=30)


def finish_after_the_outage(sms_campaign, workers, worker, run) -> None:
    """The run that lost its database fails; the worker takes the next run; the claims the failed run left run out,
    and the run after that settles them and sends the rest."""
    wait_for(lambda: f"{run.id}] raised" in worker.output(), "the interrupted run to fail")
    assert worker.process is not None and worker.process.poll() is None  # the worker itself carried on
    sent = sends_per_phone(workers.journal)
    assert 0 < sum(sent.values()) < CONTACTS

    run_out_leases(sms_campaign)
    dispatch_messages.delay()  # beat's next tick
    wait_for(lambda: campaign_done(sms_campaign), "the campaign to complete")
    assert_each_contact_got_one_message(sms_campaign, workers.journal)


def test_a_dispatch_run_that_loses_its_database_sessions_finishes_once(sms_campaign, workers):
    worker = workers.start(FAULTS_SMS_SEND_DELAY="0.3")
    run = dispatch_messages.delay()
    wait_for(lambda: len(sends_per_phone(workers.journal)) >= 4, "the first messages to go out")
    assert terminate_sessions(worker.application_name) >= 1
    finish_after_the_outage(sms_campaign, workers, worker, run)


@pytest.mark.slow
@pytest.mark.skipif(not PG_CTLCLUSTER or os.geteuid() != 0, reason="restarting PostgreSQL needs pg_ctlcluster, as root")
def test_a_dispatch_run_through_a_postgresql_restart_finishes_once(sms_campaign, workers):
    worker = workers.start(FAULTS_SMS_SEND_DELAY="0.3")
    run = dispatch_messages.delay()
    wait_for(lambda: len(sends_per_phone(workers.journal)) >= 4, "the first messages to go out")
    restart_postgresql()
    finish_after_the_outage(sms_campaign, workers, worker, run)
