"""The portal's Devices page and the dashboard's device count: the current organization's devices only, the menu
entry once the organization is linked to NinjaOne, filters, and a query count that does not grow with the list."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.ninjaone.models import Device, NinjaOneSettings
from tests.integrations.ninjaone.conftest import link

pytestmark = pytest.mark.django_db

CONTACT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 20:00 in Sydney


def add_devices(organization, count: int, prefix: str, **values) -> None:
    Device.objects.bulk_create(
        Device(
            organization=organization,
            ninja_id=f"{prefix}{n}",
            display_name=f"{prefix.upper()}-WS{n:03d}",
            system_name=f"ws{n:03d}",
            node_class="WINDOWS_WORKSTATION",
            os_name="Windows 11 Pro",
            offline=n % 4 == 0,
            last_contact_at=CONTACT,
            **values,
        )
        for n in range(1, count + 1)
    )


def menu_labels(response) -> list[str]:
    return [link.label for link in response.context["main_menu"]]


@pytest.mark.isolation("portal:devices")
def test_each_organization_sees_its_own_devices_only(client_for, alice, carol, acme, globex):
    link(acme, "7")
    link(globex, "9")
    add_devices(acme, 3, "acme")
    add_devices(globex, 2, "globex")
    Device.objects.create(organization=acme, ninja_id="old", display_name="ACME-OLD", removed_at=CONTACT)

    page = client_for(alice).get("/devices/")
    assert page.status_code == 200
    assert [device.name for device in page.context["rows"]] == ["ACME-WS001", "ACME-WS002", "ACME-WS003"]
    text = page.content.decode()
    assert "GLOBEX" not in text and "ACME-OLD" not in text
    assert "Windows 11 Pro" in text and "Windows workstation" in text
    assert "2 Mar 2026, 20:00" in text

    theirs = client_for(carol).get("/devices/")
    assert [device.name for device in theirs.context["rows"]] == ["GLOBEX-WS001", "GLOBEX-WS002"]
    assert "ACME" not in theirs.content.decode()


def test_a_partner_admin_sees_the_devices_of_the_organization_they_are_in(client_for, pat, acme, initech):
    link(acme, "7")
    link(initech, "11")
    add_devices(acme, 2, "acme")
    add_devices(initech, 1, "initech")
    client = client_for(pat)
    client.post("/switch/initech/")
    assert [device.name for device in client.get("/devices/").context["rows"]] == ["INITECH-WS001"]


def test_the_page_and_menu_before_the_organization_is_linked(client_for, alice, acme):
    response = client_for(alice).get("/devices/")
    assert response.status_code == 200
    assert "not monitored by us yet" in response.content.decode()
    assert "Devices" not in menu_labels(response)
    link(acme, "7")
    assert "Devices" in menu_labels(client_for(alice).get("/devices/"))


def test_totals_filters_and_the_last_sync(client_for, alice, acme):
    link(acme, "7")
    add_devices(acme, 8, "acme")
    NinjaOneSettings.objects.create(organization=acme, device_count=8, last_synced_at=CONTACT)
    client = client_for(alice)
    response = client.get("/devices/")
    assert (response.context["total"], response.context["offline"]) == (8, 2)
    assert "8 devices monitored" in response.content.decode()
    assert [d.name for d in client.get("/devices/?status=offline").context["rows"]] == ["ACME-WS004", "ACME-WS008"]
    assert len(client.get("/devices/?status=online").context["rows"]) == 6
    assert client.get("/devices/?status=nonsense").context["show"] == "all"


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/devices/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("count", [3, 60])
def test_the_page_runs_a_fixed_number_of_queries(client_for, alice, acme, count, django_assert_max_num_queries):
    link(acme, "7")
    add_devices(acme, count, "acme")
    client = client_for(alice)
    # The portal's base (6, see tests/portal/test_queries.py) + totals + sync state + page count + the page.
    with django_assert_max_num_queries(6 + 4):
        response = client.get("/devices/")
    assert len(response.context["rows"]) == min(count, 50)


def test_the_dashboard_shows_the_device_count_once_linked(client_for, alice, acme):
    client = client_for(alice)
    assert client.get("/dashboard/").context["device_count"] is None
    assert "<dt>Devices</dt>" not in client.get("/dashboard/").content.decode()
    link(acme, "7")
    add_devices(acme, 5, "acme")
    Device.objects.create(organization=acme, ninja_id="gone", removed_at=CONTACT)
    response = client.get("/dashboard/")
    assert response.context["device_count"] == 5
    assert '<dt>Devices</dt><dd><a href="/devices/">5</a></dd>' in response.content.decode()
