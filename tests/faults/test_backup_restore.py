"""Backup and restore on PostgreSQL: ``scripts/backup.sh`` of the test database, then ``scripts/restore.sh --yes``
into a fresh database, gives the same row count in every table and the same sequence positions, and a Keel that
works on it (its checks pass, no migration is missing, an organization and a ticket read back, and the ticket's
portal page renders). ``restore.sh`` refuses to run without ``--yes`` when nobody is at a terminal, refuses a file
that is not an archive, and leaves the target as it was when the archive breaks halfway (it restores in one
transaction).

The data is committed (``transaction=True``) so that ``pg_dump``, another session, sees it. Each test restores into a
database of its own, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from billing.services.invoices import invoice_create, invoice_finalize
from sms.models import SendingNumber, SendJob
from sms.services.campaigns import campaign_create, campaign_launch, template_create
from sms.services.contacts import contact_create
from tenancy.models import Organization, User
from tickets.models import Ticket
from tickets.services import ticket_create

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="backup.sh and restore.sh cover PostgreSQL only (pg_dump/pg_restore)"
    ),
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "scripts" / "backup.sh"
RESTORE = ROOT / "scripts" / "restore.sh"
TIMEOUT = 300  # seconds any one script or command may take before the test fails


def database_url(name: str) -> str:
    """The test database's server and credentials, for the database ``name``."""
    settings = connection.settings_dict
    credentials = quote(settings["USER"] or "") + (f":{quote(settings['PASSWORD'])}" if settings["PASSWORD"] else "")
    return f"postgresql://{credentials}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{name}"


def run(command: list[str], *, url: str, cwd: Path = ROOT, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with ``DATABASE_URL=url``, stdin not a terminal; its output as text."""
    env = {**os.environ, "DATABASE_URL": url, **extra_env}
    return subprocess.run(  # noqa: S603 - our own scripts and interpreter, fixed arguments
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT,
        check=False,
    )  # fmt: skip


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty database on the test server, dropped (with anyone still connected) after the test."""
    name = f"keel_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return tmp_path / "backups" / "keel.dump"


def backup(archive: Path) -> None:
    done = run(["bash", str(BACKUP), str(archive)], url=database_url(connection.settings_dict["NAME"]))
    assert done.returncode == 0, done.stderr
    assert f"backup: wrote {archive}" in done.stdout
    assert archive.stat().st_size > 0 and not archive.with_name(archive.name + ".partial").exists()


def restore(archive: Path, database: str, *options: str) -> subprocess.CompletedProcess[str]:
    return run(["bash", str(RESTORE), str(archive), *options], url=database_url(database))


def lists(archive: Path) -> bool:
    """Whether ``pg_restore`` reads the archive's table of contents."""
    listing = subprocess.run(["pg_restore", "--list", str(archive)], capture_output=True, timeout=TIMEOUT, check=False)  # noqa: S603, S607
    return listing.returncode == 0


def contents_end(content: bytes, probe: Path) -> int:
    """Where the archive's table of contents ends (its data follows): the shortest prefix that still lists."""
    unreadable, readable = 0, len(content)
    while readable - unreadable > 1:
        middle = (unreadable + readable) // 2
        probe.write_bytes(content[:middle])
        unreadable, readable = (unreadable, middle) if lists(probe) else (middle, readable)
    return readable


def snapshot(url: str) -> dict[str, Any]:
    """Every table of the public schema with its row count, and every sequence with its last value."""
    counts: dict[str, int] = {}
    with psycopg.connect(url) as db:
        tables = [row[0] for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            [(counts[table],)] = db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        listed = db.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
        sequences: dict[str, int | None] = dict(listed.fetchall())
    return {"tables": counts, "sequences": sequences}


@pytest.fixture
def data_set(acme: Organization, globex: Organization, initech: Organization, alice: User, bob: User, carol: User,
             pat: User) -> Ticket:  # fmt: skip
    """What a running Keel holds: three organizations and their people, tickets, invoices (issued and draft),
    contacts with consent and a launched SMS campaign. Returns one of Acme's tickets."""
    printer = ticket_create(organization=acme, subject="Printer on level 3 jams", description="Every morning.",
                            requester=alice, actor=alice)  # fmt: skip
    ticket_create(organization=acme, subject="New starter laptop", requester=bob, actor=bob)
    ticket_create(organization=globex, subject="VPN drops every hour", requester=carol, actor=carol)
    for organization, amount in ((acme, "1250.00"), (globex, "480.50")):
        line = {"description": "Managed services", "quantity": "1", "unit_price": amount}
        issued = invoice_create(organization=organization, issue_date=date(2026, 3, 2), tax_rate=Decimal("10"),
                                lines=[line])  # fmt: skip
        invoice_finalize(invoice=issued)
    invoice_create(organization=initech, lines=[{"description": "Onboarding", "quantity": "2", "unit_price": "95.00"}])
    number = SendingNumber.objects.create(organization=acme, phone_e164="+61491570001", warmup_start=date(2026, 1, 1))
    for index in range(1, 6):
        contact_create(organization=acme, phone=f"+614125000{index:02d}", data={"first_name": f"P{index}"},
                       consent={"source": "web form"})  # fmt: skip
    template = template_create(organization=acme, name="Spring", body="Hi {first_name}, spring sale on now")
    campaign = campaign_create(organization=acme, name="Spring", template_ids=[template.pk], number_ids=[number.pk])
    campaign_launch(campaign=campaign, actor=alice)
    assert SendJob.objects.filter(campaign=campaign).count() == 5
    return printer


READ_BACK = """
import json
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()  # the test client's host, and mail kept in memory
call_command("check", databases=["default"])
call_command("migrate", check=True, verbosity=0)  # exits 1 when a migration is missing
from tenancy.models import Organization, User
from tickets.models import Ticket

acme = Organization.objects.get(slug="acme")
ticket = Ticket.objects.for_org(acme).get(number={number})
client = Client()
client.force_login(User.objects.get(email="alice@acme.test"))
page = client.get(f"/support/tickets/{{ticket.number}}/")
print(json.dumps({{"organization": acme.name, "ticket": ticket.subject, "page": page.status_code,
                  "shows_ticket": ticket.subject in page.content.decode()}}))
"""


def test_a_backup_restored_into_a_fresh_database_has_every_row_and_a_working_site(
    data_set: Ticket, archive: Path, fresh_database: str
):
    source = snapshot(database_url(connection.settings_dict["NAME"]))
    assert source["tables"]["tenancy_organization"] == 3 and source["tables"]["tenancy_user"] == 4
    assert source["tables"]["tickets_ticket"] == 3 and source["tables"]["billing_invoice"] == 3
    assert source["tables"]["sms_contact"] == 5 and source["tables"]["sms_sendjob"] == 5

    backup(archive)
    done = restore(archive, fresh_database, "--yes")
    assert done.returncode == 0, done.stderr
    assert f"restore: restored {archive} into '{fresh_database}'" in done.stdout

    restored = snapshot(database_url(fresh_database))
    assert restored["tables"] == source["tables"]
    assert restored["sequences"] == source["sequences"]

    site = run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "shell", "-c",
                READ_BACK.format(number=data_set.number)],
               url=database_url(fresh_database), DJANGO_SETTINGS_MODULE="msp.test_settings")  # fmt: skip
    assert site.returncode == 0, site.stderr
    assert json.loads(site.stdout.strip().splitlines()[-1]) == {
        "organization": "Acme Pty Ltd",
        "ticket": "Printer on level 3 jams",
        "page": 200,
        "shows_ticket": True,
    }


def test_restore_refuses_without_yes_when_nobody_is_at_a_terminal(archive: Path, fresh_database: str):
    backup(archive)
    refused = restore(archive, fresh_database)
    assert refused.returncode != 0
    assert f"refusing to overwrite database '{fresh_database}' without --yes" in refused.stderr
    assert snapshot(database_url(fresh_database)) == {"tables": {}, "sequences": {}}  # nothing was restored


def test_restore_refuses_a_file_that_is_not_an_archive(tmp_path: Path, fresh_database: str):
    not_an_archive = tmp_path / "keel.sql"
    not_an_archive.write_text("DROP TABLE tenancy_organization;\n")
    refused = restore(not_an_archive, fresh_database, "--yes")
    assert refused.returncode != 0
    assert f"{not_an_archive} is not a pg_dump custom-format archive" in refused.stderr
    assert snapshot(database_url(fresh_database)) == {"tables": {}, "sequences": {}}


def test_an_archive_that_breaks_halfway_leaves_the_target_as_it_was(data_set: Ticket, archive: Path,
                                                                    fresh_database: str, tmp_path: Path):  # fmt: skip
    backup(archive)
    assert restore(archive, fresh_database, "--yes").returncode == 0
    with psycopg.connect(database_url(fresh_database)) as db:  # the target differs from the archive in one row
        db.execute("UPDATE tenancy_organization SET name = 'Acme (renamed after the backup)' WHERE slug = 'acme'")
    before = snapshot(database_url(fresh_database))

    # Cut short halfway through its data: its table of contents still reads (restore.sh's check passes).
    content = archive.read_bytes()
    broken = tmp_path / "broken.dump"
    broken.write_bytes(content[: (contents_end(content, broken) + len(content)) // 2])
    failed = restore(broken, fresh_database, "--yes")

    assert failed.returncode != 0
    assert "is not a pg_dump custom-format archive" not in failed.stderr  # pg_restore itself ran, and failed
    assert "pg_restore: error:" in failed.stderr
    assert snapshot(database_url(fresh_database)) == before  # every table, row and sequence as it was
    with psycopg.connect(database_url(fresh_database)) as db:
        [(name,)] = db.execute("SELECT name FROM tenancy_organization WHERE slug = 'acme'")
    assert name == "Acme (renamed after the backup)"
