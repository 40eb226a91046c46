"""The device sync: devices added, changed, removed and restored; NinjaOne failures change nothing; the hourly task
goes through every linked organization; per-device contract lines follow the count, to the cent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses

from billing.models import ContractAdjustment, ContractLine, Invoice
from billing.services.contracts import ContractTerms, contract_create
from billing.services.invoicing import invoices_generate
from integrations.ninjaone import providers, sandbox, tasks
from integrations.ninjaone.base import ProviderError, RemoteDevice
from integrations.ninjaone.models import Device, NinjaOneSettings
from integrations.ninjaone.services import devices as device_services
from integrations.ninjaone.services.devices import devices_sync
from tenancy.errors import ServiceValidationError
from tests.integrations.ninjaone.conftest import ACME_NINJA, GLOBEX_NINJA, link

pytestmark = pytest.mark.django_db

D = Decimal
BASE = "https://app.ninjarmm.com"
# 17 March 2026, 10:00 in Sydney; still the 16th in UTC.
SYDNEY_MORNING = datetime(2026, 3, 16, 23, 0, tzinfo=UTC)


def remote(ninja_id: int, name: str, **values: Any) -> RemoteDevice:
    defaults: dict[str, Any] = {"node_class": "WINDOWS_WORKSTATION", "os_name": "Windows 11 Pro",
                                   "last_contact_at": datetime(2026, 3, 2, 8, 0, tzinfo=UTC)}  # fmt: skip
    return RemoteDevice(ninja_id=str(ninja_id), display_name=name, system_name=name.lower(), **{**defaults, **values})


def fleet(count: int, start: int = 1) -> list[RemoteDevice]:
    return [remote(100 + n, f"ACME-WS{n:02d}") for n in range(start, start + count)]


def present(organization) -> list[str]:
    return sorted(
        Device.objects.for_org(organization).filter(removed_at__isnull=True).values_list("ninja_id", flat=True)
    )


# -- devices ----------------------------------------------------------------------------------------------------------


def test_the_sandbox_lists_the_same_devices_for_the_same_organization():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    first, again = sandbox.fixed_devices("7", now=now), sandbox.fixed_devices("7", now=now)
    assert first == again
    assert len(first) == 4 + 7 % 12
    assert [device.offline for device in first] == [index % 5 == 4 for index in range(len(first))]
    assert len({device.ninja_id for device in first}) == len(first)
    assert sandbox.fixed_devices("8", now=now) != first


def test_a_sync_adds_changes_removes_and_restores_devices(acme_linked, time_machine):
    time_machine.move_to(SYDNEY_MORNING, tick=False)
    a, b, c = remote(1, "ACME-WS01"), remote(2, "ACME-WS02"), remote(3, "ACME-SRV01", node_class="WINDOWS_SERVER")
    sandbox.DEVICES[ACME_NINJA] = [a, b, c]
    result = devices_sync(organization=acme_linked)
    assert (result.count, result.added, result.updated, result.removed) == (3, 3, 0, 0)

    time_machine.move_to(SYDNEY_MORNING + timedelta(hours=1), tick=False)
    d = remote(4, "ACME-MAC01", node_class="MAC", os_name="macOS 14 Sonoma")
    sandbox.DEVICES[ACME_NINJA] = [a, remote(2, "ACME-WS02", offline=True), d]
    result = devices_sync(organization=acme_linked)
    assert (result.count, result.added, result.updated, result.removed) == (3, 1, 1, 1)
    assert present(acme_linked) == ["1", "2", "4"]
    gone = Device.objects.for_org(acme_linked).get(ninja_id="3")
    assert gone.removed_at == SYDNEY_MORNING + timedelta(hours=1)
    assert Device.objects.for_org(acme_linked).get(ninja_id="2").offline is True

    sandbox.DEVICES[ACME_NINJA] = [a, remote(2, "ACME-WS02", offline=True), c, d]
    result = devices_sync(organization=acme_linked)
    assert (result.count, result.added, result.updated, result.removed) == (4, 0, 1, 0)
    assert present(acme_linked) == ["1", "2", "3", "4"]
    assert Device.objects.for_org(acme_linked).get(ninja_id="3").first_seen_at == SYDNEY_MORNING

    result = devices_sync(organization=acme_linked)
    assert (result.added, result.updated, result.removed) == (0, 0, 0)
    row = NinjaOneSettings.objects.get(organization=acme_linked)
    assert (row.device_count, row.last_synced_at, row.last_sync_error) == (4, SYDNEY_MORNING + timedelta(hours=1), "")


def test_a_ninjaone_failure_changes_nothing_but_the_error(acme_linked, monkeypatch):
    sandbox.DEVICES[ACME_NINJA] = fleet(2)
    devices_sync(organization=acme_linked)

    def refuse(self, organization_id):
        raise ProviderError("NinjaOne answered HTTP 500 for /v2/devices-detailed.")

    monkeypatch.setattr(sandbox.SandboxNinjaOne, "devices", refuse)
    with pytest.raises(ProviderError):
        devices_sync(organization=acme_linked)
    assert present(acme_linked) == ["101", "102"]
    row = NinjaOneSettings.objects.get(organization=acme_linked)
    assert (row.device_count, row.last_sync_error) == (2, "NinjaOne answered HTTP 500 for /v2/devices-detailed.")


def test_an_organization_not_linked_cannot_be_synced(acme):
    with pytest.raises(ServiceValidationError) as bad:
        devices_sync(organization=acme)
    assert bad.value.message_dict == {"ninjaone_org_id": ["This organization is not linked to NinjaOne."]}


def test_the_hourly_task_syncs_every_linked_organization_despite_one_failing(acme, globex, initech, monkeypatch):
    link(acme, ACME_NINJA)
    link(globex, GLOBEX_NINJA)
    link(initech, "11")
    listed = sandbox.SandboxNinjaOne.devices

    def flaky(self, organization_id):
        if organization_id == "11":
            raise ProviderError("NinjaOne answered HTTP 500 for /v2/devices-detailed.", retryable=True)
        return listed(self, organization_id)

    monkeypatch.setattr(sandbox.SandboxNinjaOne, "devices", flaky)
    assert tasks.sync_devices() == {"synced": 2, "failed": 1, "deferred": 0}
    assert Device.objects.for_org(acme).count() == 4 + 7 % 12
    assert Device.objects.for_org(globex).count() == 4 + 9 % 12
    assert not Device.objects.for_org(initech).exists()
    assert "HTTP 500" in NinjaOneSettings.objects.get(organization=initech).last_sync_error
    # Each organization has only the devices of its own NinjaOne organization.
    assert {d.display_name.split("-")[1] for d in Device.objects.for_org(acme)} == {"7"}
    assert not tasks.sync_organization_devices(str(initech.pk))


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [("7200", timedelta(hours=2)), ("86400", device_services.LONGEST_PAUSE)],
    ids=["two-hours", "capped"],
)
def test_a_rate_limit_stops_the_hourly_sync_until_the_wait_ninjaone_named(
    acme, globex, initech, settings, monkeypatch, time_machine, retry_after, wait
):
    settings.NINJAONE_PROVIDER = "ninjaone"
    settings.NINJAONE_CLIENT_ID, settings.NINJAONE_CLIENT_SECRET = "keel-client", "keel-secret"
    monkeypatch.setattr(providers.get_provider, "instances", {})
    for organization, ninjaone_id in ((acme, ACME_NINJA), (globex, GLOBEX_NINJA), (initech, "11")):
        link(organization, ninjaone_id)
    time_machine.move_to(SYDNEY_MORNING, tick=False)
    with responses.RequestsMock() as api:
        api.post(f"{BASE}/ws/oauth/token", json={"access_token": "tok-1", "expires_in": 3600})
        api.get(f"{BASE}/v2/devices-detailed", status=429, json={}, headers={"Retry-After": retry_after})
        api.get(f"{BASE}/v2/devices-detailed", json=[])

        def listed() -> int:
            return sum(str(call.request.url).startswith(f"{BASE}/v2/") for call in api.calls)

        assert tasks.sync_devices() == {"synced": 0, "failed": 1, "deferred": 2}
        assert listed() == 1  # the other organizations were not asked for
        assert [row.last_sync_error for row in NinjaOneSettings.objects.all()] == [
            "NinjaOne is rate limiting Keel (HTTP 429); the next sync tries again."
        ]
        time_machine.move_to(SYDNEY_MORNING + timedelta(hours=1), tick=False)  # the next hourly run
        assert tasks.sync_devices() == {"synced": 0, "failed": 0, "deferred": 3}
        time_machine.move_to(SYDNEY_MORNING + wait - timedelta(seconds=1), tick=False)
        assert tasks.sync_devices()["deferred"] == 3 and listed() == 1
        time_machine.move_to(SYDNEY_MORNING + wait, tick=False)
        assert tasks.sync_devices() == {"synced": 3, "failed": 0, "deferred": 0}
        assert listed() == 4


# -- per-device contract lines --------------------------------------------------------------------------------------


def make_contract(organization, *lines, status_active: bool = True, **terms):
    defaults = {"name": "Managed IT", "start_date": date(2026, 3, 1), "anchor_day": 1}
    return contract_create(organization=organization, terms=ContractTerms(**{**defaults, **terms}), lines=list(lines),
                           activate=status_active)  # fmt: skip


def devices_line(quantity: str = "10", price: str = "12.50", metric: str = "devices") -> dict[str, object]:
    return {"description": "Managed devices", "pricing_model": "PER_UNIT", "unit_price": price, "quantity": quantity,
            "metric": metric}  # fmt: skip


def test_per_device_lines_follow_the_device_count_to_the_cent(acme_linked, globex, time_machine):
    contract = make_contract(
        acme_linked,
        {"description": "Managed services", "pricing_model": "FLAT", "amount": "1500.00"},
        devices_line(),
        {**devices_line("12", "22.50", metric="users"), "description": "Microsoft 365 seats"},
    )
    draft = make_contract(acme_linked, devices_line(), status_active=False, name="Next year")
    later = make_contract(acme_linked, devices_line(), name="Starts in April", start_date=date(2026, 4, 1))
    theirs = make_contract(globex, devices_line(), name="Globex IT")
    invoices_generate(through=date(2026, 3, 1))  # March invoiced in advance
    assert Invoice.objects.get(contract=contract).subtotal == D("1500.00") + D("125.00") + D("270.00")

    # 10:00 on 17 March in Sydney: 13 devices. 3 more x 12.50 for 15 of March's 31 days = 18.1451... = 18.15.
    time_machine.move_to(SYDNEY_MORNING, tick=False)
    sandbox.DEVICES[ACME_NINJA] = fleet(13)
    result = devices_sync(organization=acme_linked)
    assert (result.count, result.lines_revised, result.line_problems) == (13, 1, [])
    lines = {(line.contract.name, line.description): line.quantity for line in ContractLine.objects.all()}
    assert lines == {
        ("Managed IT", "Managed services"): D("1"),
        ("Managed IT", "Managed devices"): D("13"),
        ("Managed IT", "Microsoft 365 seats"): D("12"),
        ("Next year", "Managed devices"): D("10"),
        ("Starts in April", "Managed devices"): D("10"),
        ("Globex IT", "Managed devices"): D("10"),
    }
    assert list(ContractAdjustment.objects.filter(contract=contract).values_list("amount", "effective_on")) == [
        (D("18.15"), date(2026, 3, 17))
    ]
    # Nothing changed: nothing more is written.
    devices_sync(organization=acme_linked)
    assert ContractAdjustment.objects.count() == 1

    # 20 March: down to 9. 4 fewer x 12.50 for 12 days = -19.3548... = -19.35.
    time_machine.move_to(SYDNEY_MORNING + timedelta(days=3), tick=False)
    sandbox.DEVICES[ACME_NINJA] = fleet(9)
    assert devices_sync(organization=acme_linked).lines_revised == 1
    assert list(ContractAdjustment.objects.filter(contract=contract).values_list("amount", flat=True)) == [
        D("18.15"), D("-19.35")]  # fmt: skip

    invoices_generate(through=date(2026, 4, 1))
    april = Invoice.objects.get(contract=contract, period_start=date(2026, 4, 1))
    assert [(line.kind, line.amount) for line in april.lines.all()] == [
        ("recurring", D("1500.00")),
        ("recurring", D("112.50")),
        ("recurring", D("270.00")),
        ("proration", D("18.15")),
        ("proration", D("-19.35")),
    ]
    assert april.subtotal == D("1881.30")

    # The contract starting in April follows from its first day: April was invoiced for 10 devices, so the 9 from
    # 2 April are 1 fewer x 12.50 for 29 of April's 30 days = -12.0833... = -12.08.
    time_machine.move_to(datetime(2026, 4, 2, 9, 0, tzinfo=UTC), tick=False)
    assert devices_sync(organization=acme_linked).lines_revised == 1
    assert ContractLine.objects.get(contract=later).quantity == D("9")
    assert list(ContractAdjustment.objects.filter(contract=later).values_list("amount", "effective_on")) == [
        (D("-12.08"), date(2026, 4, 2))
    ]
    assert ContractLine.objects.get(contract=draft).quantity == D("10")
    assert ContractLine.objects.get(contract=theirs).quantity == D("10")


def test_a_line_billing_refuses_to_change_is_reported_and_the_others_follow(acme_linked, monkeypatch, time_machine):
    time_machine.move_to(SYDNEY_MORNING, tick=False)
    first = make_contract(acme_linked, devices_line(), name="A")
    second = make_contract(acme_linked, devices_line(), name="B")
    revise = device_services.contract_line_revise

    def refuse_a(*, line, **kwargs):
        if line.contract_id == first.pk:
            raise ServiceValidationError({"quantity": ["The line would cost a hundred billion or more a period."]})
        return revise(line=line, **kwargs)

    monkeypatch.setattr(device_services, "contract_line_revise", refuse_a)
    sandbox.DEVICES[ACME_NINJA] = fleet(11)
    result = devices_sync(organization=acme_linked)
    assert result.lines_revised == 1
    assert result.line_problems == ["A, Managed devices: The line would cost a hundred billion or more a period."]
    assert ContractLine.objects.get(contract=first).quantity == D("10")
    assert ContractLine.objects.get(contract=second).quantity == D("11")
    assert Device.objects.for_org(acme_linked).count() == 11
