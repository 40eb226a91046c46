"""The Celery app the fault tests run their workers with (``celery -A tests.faults.harness worker``): Keel's own app,
configured as ``msp.settings`` and the environment say, with two changes that only the environment turns on.

- ``FAULTS_SMS_JOURNAL``: the SMS sandbox also appends every message it accepts to this file, and reads the file back
  when asked whether it has a message (``find``, ``fetch``). The sandbox alone keeps its messages in the worker's
  memory, which dies with the worker; Twilio's records outlive a crashed worker, and reconciling after a crash relies
  on that. The test counts the sends per phone number from the same file. ``FAULTS_SMS_SEND_DELAY`` seconds pass
  after each accepted message before the answer returns (a slow provider), so a worker can be killed mid-run.
- ``FAULTS_INVOICE_BATCH``: recurring invoicing claims this many contracts per transaction and holds each claimed
  batch ``FAULTS_INVOICE_BATCH_DELAY`` seconds before writing it, so a worker can be killed with a batch in flight.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django

django.setup()

from msp.celery import app  # noqa: E402 - the app once Django is set up
from sms import providers  # noqa: E402
from sms.providers.base import MessageState, OutboundMessage  # noqa: E402
from sms.providers.sandbox import SandboxProvider, SandboxRecord  # noqa: E402

__all__ = ["JournalSandbox", "app", "journal_entries"]


def journal_entries(path: Path) -> list[dict[str, str]]:
    """The messages the journal at ``path`` holds, oldest first: ``sid``, ``to``, ``from``, ``body``, ``at``."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]  # a line cut short by a kill is not a send


class JournalSandbox(SandboxProvider):
    """The SMS sandbox with its accepted messages kept in a file (see the module's docstring)."""

    def send(self, message: OutboundMessage) -> MessageState:
        state = super().send(message)
        entry = {"sid": state.sid, "to": message.to, "from": message.from_, "body": message.body,
                 "at": datetime.now(UTC).isoformat()}  # fmt: skip
        # One write of a whole line with O_APPEND: the line is in the file once write() returns, whatever then
        # happens to this process.
        descriptor = os.open(os.environ["FAULTS_SMS_JOURNAL"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(descriptor)
        time.sleep(float(os.environ.get("FAULTS_SMS_SEND_DELAY", "0")))
        return state

    def find(self, *, to: str, from_: str, body: str, sent_after: datetime) -> MessageState | None:
        self._recall()
        return super().find(to=to, from_=from_, body=body, sent_after=sent_after)

    def fetch(self, sid: str) -> MessageState:
        self._recall()
        return super().fetch(sid)

    def _recall(self) -> None:
        """Load what the journal holds (including what earlier workers sent) into the sandbox's records."""
        for entry in journal_entries(Path(os.environ["FAULTS_SMS_JOURNAL"])):
            if entry["sid"] in self._records:
                continue
            message = OutboundMessage(entry["to"], entry["from"], entry["body"])
            state = MessageState(sid=entry["sid"], status="queued", to=entry["to"], from_=entry["from"],
                                 body=entry["body"])  # fmt: skip
            record = SandboxRecord(message=message, state=state, created_at=datetime.fromisoformat(entry["at"]))
            with self._lock:
                self._records[entry["sid"]] = record


def _slow_invoicing(batch: int, delay: float) -> None:
    from billing.services import invoicing

    claim = invoicing._claim

    def claim_and_hold(*args: Any, **kwargs: Any) -> Any:
        claimed = claim(*args, **kwargs)
        if claimed:
            time.sleep(delay)
        return claimed

    invoicing.BATCH = batch
    invoicing._claim = claim_and_hold


if os.environ.get("FAULTS_SMS_JOURNAL"):
    providers.ADAPTERS["sandbox"] = f"{__name__}.JournalSandbox"
if os.environ.get("FAULTS_INVOICE_BATCH"):
    _slow_invoicing(int(os.environ["FAULTS_INVOICE_BATCH"]), float(os.environ.get("FAULTS_INVOICE_BATCH_DELAY", "0")))
