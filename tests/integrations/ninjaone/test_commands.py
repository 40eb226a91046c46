"""Local runs: ``manage.py ninjaone_alert`` sends a simulated alert through the webhook's code path (sandbox only),
and the demo data links the demo organizations, syncs their devices and opens one alert ticket, once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations.ninjaone import demo
from integrations.ninjaone.models import Alert, AlertState, Device
from tickets.models import Channel, Ticket, TicketStatus

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("ninjaone_alert", *args, stdout=out)
    return out.getvalue()


def test_a_simulated_alert_opens_a_ticket_and_its_reset_resolves_it(acme_linked):
    opened = run("acme", "--severity", "CRITICAL", "--device", "4")
    ticket = Ticket.objects.for_org(acme_linked).get()
    assert f"opened {ticket.reference}" in opened
    assert (ticket.priority, ticket.channel) == ("P1", Channel.NINJAONE)
    assert "resolved" in run("acme", "--device", "4", "--reset")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED
    assert Alert.objects.get().state == AlertState.RESET


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody",), "No organization has the slug 'nobody'."),
        (("globex",), "is not linked to NinjaOne"),
        (("acme", "--device", "99"), "--device must be from 0 to 10."),
    ],
)
def test_refusals(acme_linked, globex, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_simulated_alerts_need_the_sandbox(acme_linked, settings):
    settings.NINJAONE_PROVIDER = "ninjaone"
    with pytest.raises(CommandError, match="only sent with NINJAONE_PROVIDER=sandbox"):
        run("acme")
    assert not Ticket.objects.exists()


def test_the_demo_links_syncs_and_opens_one_alert_ticket_once(acme, initech, globex):
    report = demo.seed()
    acme.refresh_from_db()
    initech.refresh_from_db()
    globex.refresh_from_db()
    assert (acme.ninjaone_org_id, initech.ninjaone_org_id, globex.ninjaone_org_id) == ("1001", "1002", "")
    assert Device.objects.for_org(acme).count() == 4 + 1001 % 12
    assert Device.objects.for_org(initech).count() == 4 + 1002 % 12
    ticket = Ticket.objects.for_org(acme).get()
    assert ticket.priority == "P1"
    assert any(ticket.reference in line for line in report)
    demo.seed()
    assert Ticket.objects.count() == 1
    assert Device.objects.count() == (4 + 1001 % 12) + (4 + 1002 % 12)
