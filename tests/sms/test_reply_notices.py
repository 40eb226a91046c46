"""SMS replies are told by the quarter of an hour: the first of each quarter at once, the others together once the
quarter is over, each organization of its own, never twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.test import TestCase

from notifications.models import Notification
from sms.models import Campaign, JobState, SendingNumber, SendJob
from sms.services.contacts import contact_create
from sms.services.inbound import inbound_receive
from sms.services.reply_notices import LOOKBACK, replies_tell_more, window_start
from tenancy.models import Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 20:00 in Sydney (AEDT)
ACME_NUMBER = "+61480000001"
GLOBEX_NUMBER = "+61480000009"
ANN = "+61412345678"
STRANGER = "+61412000999"
MANAGERS = ["adam@acme.test", "alice@acme.test", "mia@acme.test"]

_sids = iter(range(1, 1_000_000))


@pytest.fixture(autouse=True)
def setup(acme: Any, globex: Any, alice: Any, bob: Any, carol: Any) -> None:
    """Acme's owner (alice), an admin and a manager hear of replies (bob, a plain member, does not); Ann got
    Acme's Spring campaign. Globex owns a number of its own."""
    for email, role in (("adam@acme.test", Role.ADMIN), ("mia@acme.test", Role.MANAGER)):
        MembershipFactory(user=UserFactory(email=email), organization=acme, role=role)
    number = SendingNumber.objects.create(organization=acme, phone_e164=ACME_NUMBER, warmup_start=date(2026, 1, 1))
    SendingNumber.objects.create(organization=globex, phone_e164=GLOBEX_NUMBER, warmup_start=date(2026, 1, 1))
    ann = contact_create(organization=acme, phone=ANN, data={"first_name": "Ann", "last_name": "Lee"})
    spring = Campaign.objects.create(organization=acme, name="Spring")
    SendJob.objects.create(
        organization=acme, campaign=spring, contact=ann, number=number, state=JobState.DELIVERED,
        sent_at=NOW - timedelta(days=1),
    )  # fmt: skip


def reply(at: datetime, body: str, *, from_: str = ANN, to: str = ACME_NUMBER) -> None:
    """``from_`` texts ``body`` to ``to`` at ``at``; what is emailed is sent once the webhook's transaction commits."""
    with time_machine.travel(at, tick=False), TestCase.captureOnCommitCallbacks(execute=True):
        assert inbound_receive(sid=f"SM{next(_sids):032x}", from_=from_, to=to, body=body) is None


def tell_more(now: datetime) -> int:
    """The beat job at ``now``; its emails sent."""
    with time_machine.travel(now, tick=False), TestCase.captureOnCommitCallbacks(execute=True):
        return replies_tell_more(now=now)


def emails() -> list[tuple[str, str]]:
    return sorted((sent.to[0], str(sent.subject)) for sent in mail.outbox)


def take_emails() -> list[tuple[str, str]]:
    taken = emails()
    mail.outbox.clear()
    return taken


def test_the_first_reply_of_a_quarter_is_told_at_once_and_the_others_together_when_it_is_over(alice):
    reply(NOW + timedelta(minutes=1), "Still on?")
    assert "Every reply is on the replies page: http://127.0.0.1:8000/messaging/replies/" in mail.outbox[0].body
    assert take_emails() == [(to, "SMS reply from Ann Lee") for to in MANAGERS]

    reply(NOW + timedelta(minutes=5), "Hello?")
    reply(NOW + timedelta(minutes=14, seconds=59), "What time do you open?", from_=STRANGER)
    assert mail.outbox == []  # not one by one
    assert tell_more(NOW + timedelta(minutes=14, seconds=59)) == 0  # the quarter is not over

    assert tell_more(NOW + timedelta(minutes=15)) == 1
    assert emails() == [(to, "2 more SMS replies to Acme Pty Ltd") for to in MANAGERS]
    text = mail.outbox[0].body
    assert "2 more SMS replies came between 20:00 and 20:15 on 2 Mar 2026 (Australia/Sydney)" in text
    assert text.index("What time do you open?") < text.index("Hello?")  # the latest first
    assert f"Ann Lee ({ANN}), campaign Spring:" in text and f"- {STRANGER}:" in text
    assert "Still on?" not in text  # told already
    assert "Every reply is on the replies page: http://127.0.0.1:8000/messaging/replies/" in text  # SITE_URL
    take_emails()
    assert tell_more(NOW + timedelta(minutes=20)) == 0  # once
    assert mail.outbox == []

    reply(NOW + timedelta(minutes=15), "One more thing")  # a new quarter: told at once again
    assert len(take_emails()) == 3
    titles = list(Notification.objects.filter(user=alice).order_by("created_at").values_list("title", "url"))
    assert titles == [
        ("SMS reply from Ann Lee", titles[0][1]),
        ("2 more SMS replies", "/messaging/replies/"),
        ("SMS reply from Ann Lee", titles[0][1]),
    ]
    assert titles[0][1].startswith("/messaging/contacts/")


def test_a_quarter_with_a_single_reply_gets_no_second_notice():
    reply(NOW + timedelta(minutes=3), "Thanks")
    take_emails()
    assert tell_more(NOW + timedelta(minutes=30)) == 0
    assert mail.outbox == []


def test_one_more_reply_is_worded_in_the_singular():
    reply(NOW, "First")
    reply(NOW + timedelta(minutes=1), "Second")
    take_emails()
    assert tell_more(NOW + timedelta(minutes=15)) == 1
    assert {subject for _, subject in emails()} == {"1 more SMS reply to Acme Pty Ltd"}


def test_each_organization_is_told_of_its_own_replies_only(carol):
    for minute in range(3):
        reply(NOW + timedelta(minutes=minute), f"Acme {minute}")
    reply(NOW + timedelta(minutes=4), "Globex 1", to=GLOBEX_NUMBER)
    reply(NOW + timedelta(minutes=5), "Globex 2", to=GLOBEX_NUMBER)
    take_emails()
    assert tell_more(NOW + timedelta(minutes=15)) == 2
    to_acme = [sent.body for sent in mail.outbox if sent.to[0] in MANAGERS]
    to_globex = [sent.body for sent in mail.outbox if sent.to[0] == carol.email]
    assert len(to_acme) == 3 and len(to_globex) == 1
    assert all("Globex" not in body and "Acme 2" in body for body in to_acme)
    assert "Globex 2" in to_globex[0] and "Acme" not in to_globex[0]
    assert "(America/New_York)" in to_globex[0]


def test_the_notice_quotes_the_latest_ten():
    for n in range(13):
        reply(NOW + timedelta(seconds=n), f"Reply number {n:02d}")
    take_emails()
    tell_more(NOW + timedelta(minutes=15))
    text = mail.outbox[0].body
    assert "12 more SMS replies" in text and "The latest 10:" in text
    assert [n for n in range(13) if f"Reply number {n:02d}" in text] == list(range(3, 13))


def test_quarters_over_longer_ago_than_the_lookback_are_not_told():
    reply(NOW, "Early")
    reply(NOW + timedelta(minutes=1), "Early too")
    take_emails()
    assert tell_more(NOW + timedelta(minutes=15) + LOOKBACK) == 0
    assert tell_more(NOW + LOOKBACK) == 1  # the last run that still looks at that quarter


def test_quarters_are_on_the_utc_clock():
    assert window_start(datetime(2026, 3, 2, 20, 29, 59, tzinfo=UTC)) == datetime(2026, 3, 2, 20, 15, tzinfo=UTC)
    # 13:44 in Adelaide (UTC+10:30): the quarter is 13:30-13:45 there, but on the UTC clock 03:00-03:15.
    adelaide = datetime(2026, 4, 4, 13, 44, tzinfo=ZoneInfo("Australia/Adelaide"))
    assert window_start(adelaide) == datetime(2026, 4, 4, 3, 0, tzinfo=UTC)
