"""What the fault tests break and restart: a private Redis per test (cache and broker, so parallel test runs never
share a queue), real Celery workers in subprocesses on the test database, and this process's own Celery app pointed
at the private Redis with tasks queued rather than run inline.

A worker runs ``celery -A tests.faults.harness worker --pool=solo`` (Keel's app and settings; see the harness for
the journal the SMS sandbox keeps and the slowdowns), with a short broker visibility timeout so that a task whose
worker was killed is handed out again within seconds, and its own ``application_name`` on PostgreSQL so that a test
can find its database sessions.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from msp.celery import app as celery_app
from sms.models import Campaign, CampaignStatus, JobState, SendingNumber, SendJob
from sms.services.campaigns import campaign_create, campaign_launch, template_create
from sms.services.contacts import contact_create
from tenancy.models import Organization
from tests.faults.harness import journal_entries

ROOT = Path(__file__).resolve().parents[2]
CELERY = ROOT / ".venv" / "bin" / "celery"
REDIS_SERVER = shutil.which("redis-server")
VISIBILITY_TIMEOUT = 2  # seconds before an unacknowledged task of a dead worker is handed out again
WAIT = 60.0  # seconds a test waits for work to finish before it fails

requires_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: the worker subprocess must share the test database (SQLite's is in this process' memory)",
)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``condition`` until it returns something true, and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A ``redis-server`` of this test alone, with nothing written to disk; killed and started again on the same
    port, as a Redis restart looks to its clients."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, f"redis-server on port {self.port}", timeout=10)

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.exceptions.ConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    yield server
    server.kill()


def _drop_broker_pools() -> None:
    """The app keeps its connection and producer pools once made: close them, so the next task sent dials
    ``broker_url`` as it is then."""
    for owner, name in ((celery_app, "_pool"), (celery_app.amqp, "_producer_pool")):
        pool = getattr(owner, name)
        if pool is not None:
            pool.force_close_all()
            setattr(owner, name, None)
    # kombu keeps producer pools in a registry of its own, keyed by connection: without a reset the next lookup
    # for the same broker hands back the pool closed above, and every later task sent fails to acquire it.
    kombu.pools.reset()


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """This process's Celery app sends tasks to the broker at ``url`` (not inline, as the test settings have it),
    as the web processes of a real deployment do."""
    conf = celery_app.conf
    saved = {name: conf[name] for name in ("broker_url", "broker_transport_options", "task_always_eager")}
    _drop_broker_pools()
    conf.update(
        broker_url=url, broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT}, task_always_eager=False
    )
    try:
        yield
    finally:
        _drop_broker_pools()
        conf.update(saved)


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The private Redis, as the broker of this process's Celery app."""
    with celery_broker(redis_server.url):
        yield redis_server


def database_url(application_name: str) -> str:
    """The test database (not the one the suite was started with), as a worker's DATABASE_URL."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgresql://{credentials}@{host}/{db['NAME']}?application_name={application_name}"


# How a worker logs a task's progress: "Task sms.tasks.dispatch_messages[<id>] received" (then succeeded, raised...).
TASK_LINE = re.compile(r"Task [\w.]+\[(?P<id>[0-9a-f-]{36})\] (?P<outcome>received|succeeded|raised|failed)")


class Worker:
    """One ``celery worker`` subprocess (the solo pool: the process that runs the tasks is the one started here)."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.environment = environment
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def application_name(self) -> str:
        return self.environment["FAULTS_APPLICATION_NAME"]

    def start(self) -> Worker:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter's celery, fixed arguments
                [
                    str(CELERY),
                    "-A",
                    "tests.faults.harness",
                    "worker",
                    "--pool=solo",
                    "-Q",
                    "celery",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel=INFO",
                    f"--hostname=faults-{uuid.uuid4().hex[:8]}@%h",
                ],
                cwd=ROOT,
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._ready, "the worker to start", timeout=30)
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"the worker exited with {self.process.returncode}:\n{self.output()[-3000:]}")
        return " ready." in self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tasks(self, *outcomes: str) -> set[str]:
        """The ids of the tasks this worker's log shows with one of ``outcomes`` (``received``, ``succeeded``, ...)."""
        return {match["id"] for match in TASK_LINE.finditer(self.output()) if match["outcome"] in outcomes}

    def unfinished(self) -> set[str]:
        """The tasks this worker received and never finished."""
        return self.tasks("received") - self.tasks("succeeded", "raised", "failed")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement, the connections dropped as they are."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


class Workers:
    """Starts workers on the private broker and the test database; every one is killed when the test ends."""

    def __init__(self, broker: RedisServer, directory: Path) -> None:
        self.broker = broker
        self.directory = directory
        self.started: list[Worker] = []
        self.journal = directory / "sms-journal.jsonl"

    def environment(self, **extra: str) -> dict[str, str]:
        name = f"keel-faults-{uuid.uuid4().hex[:12]}"
        var = self.directory / "var"
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",  # every log line is in the file before a kill
            "DJANGO_SETTINGS_MODULE": "msp.settings",
            "KEEL_ENV": "development",
            "DEBUG": "false",
            "KEEL_VAR_DIR": str(var),
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
            "DATABASE_URL": database_url(name),
            "REDIS_URL": self.broker.url,
            "CELERY_BROKER_URL": self.broker.url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "EMAIL_PROVIDER": "sandbox",
            "STRIPE_PROVIDER": "sandbox",
            "SMS_PROVIDER": "sandbox",
            "SMS_SANDBOX_CALLBACKS": "false",
            "WEBHOOKS_ALLOW_PRIVATE": "true",
            "FAULTS_SMS_JOURNAL": str(self.journal),
            "FAULTS_APPLICATION_NAME": name,
            **extra,
        }

    def start(self, **extra: str) -> Worker:
        worker = Worker(self.environment(**extra), self.directory / f"worker-{len(self.started) + 1}.log")
        self.started.append(worker)
        return worker.start()

    def kill_all(self) -> None:
        for worker in self.started:
            worker.kill()


@pytest.fixture
def workers(broker: RedisServer, tmp_path: Path, transactional_db: Any) -> Iterator[Workers]:
    started = Workers(broker, tmp_path)
    try:
        yield started
    finally:
        started.kill_all()
        connection.close()  # the suite's next test opens a fresh one


def after_visibility_timeout() -> None:
    """Wait until the broker hands out again what a killed worker held: a worker started now takes it at once."""
    time.sleep(VISIBILITY_TIMEOUT + 0.5)


# -- an SMS campaign to dispatch --------------------------------------------------------------------------------------

CONTACTS = 16


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is now between 11:00 and 14:59, inside the sending window whatever the hour here:
    the worker runs on the real clock, which a test cannot freeze."""
    for offset in range(-12, 15):
        if 11 <= (now.hour + offset) % 24 <= 14:
            # The Etc zones' signs are POSIX's, the reverse of ISO's: Etc/GMT-5 is UTC+05:00.
            return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    raise AssertionError("some offset from -12 to +14 hours is midday")


@pytest.fixture
def sms_campaign(acme: Organization) -> Campaign:
    """A running campaign of Acme's to ``CONTACTS`` consenting contacts, one message each, none sent yet."""
    now = timezone.now()
    number = SendingNumber.objects.create(
        organization=acme, phone_e164="+61491570001", warmup_start=now.date() - timedelta(days=30), per_second=100
    )
    zone = midday_zone(now)
    for index in range(1, CONTACTS + 1):
        contact_create(
            organization=acme,
            phone=f"+614125{index:05d}",
            data={"first_name": f"P{index}", "timezone": zone},
            consent={"source": "web form"},
        )
    template = template_create(organization=acme, name="Spring", body="Hi {first_name}, the spring sale is on")
    campaign = campaign_create(organization=acme, name="Spring", template_ids=[template.pk], number_ids=[number.pk])
    campaign_launch(campaign=campaign)
    assert SendJob.objects.filter(campaign=campaign, state=JobState.QUEUED).count() == CONTACTS
    return campaign


def sends_per_phone(journal: Path) -> Counter[str]:
    """How many messages the provider accepted for each phone number."""
    return Counter(entry["to"] for entry in journal_entries(journal))


def run_out_leases(campaign: Campaign) -> int:
    """What ``LEASE`` minutes later looks like to the dispatcher: the claims of the worker that died have run out.
    (The worker runs on the real clock, so the claims are moved back rather than the clock forward.)"""
    return SendJob.objects.filter(campaign=campaign, state=JobState.SENDING).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )


def campaign_done(campaign: Campaign) -> bool:
    campaign.refresh_from_db()
    return campaign.status == CampaignStatus.COMPLETED


def assert_each_contact_got_one_message(campaign: Campaign, journal: Path) -> None:
    jobs = list(SendJob.objects.filter(campaign=campaign).select_related("contact"))
    assert len(jobs) == CONTACTS
    assert {job.state for job in jobs} == {JobState.SENT}
    sends = sends_per_phone(journal)
    assert sends == Counter({job.contact.phone_e164: 1 for job in jobs})  # every contact once, nobody else
    sids = {entry["to"]: entry["sid"] for entry in journal_entries(journal)}
    assert {job.contact.phone_e164: job.provider_sid for job in jobs} == sids  # each job knows its message
