"""Staff screens for NinjaOne: the lists and their ticket links, the settings form, "Sync devices now", and which
staff groups may see and do what."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from integrations.ninjaone import sandbox
from integrations.ninjaone.models import Alert, Device, NinjaOneSettings, WebhookEvent
from tenancy.staff import ensure_staff_groups
from tests.factories import UserFactory
from tests.helpers import admin_client
from tests.integrations.ninjaone.conftest import activity, deliver, link

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return UserFactory(email="root@keel.test", is_staff=True, is_superuser=True)


def staff_member(group: str):
    ensure_staff_groups()
    user = UserFactory(email=f"{group.lower()}@keel.test", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_the_lists_show_alerts_with_their_tickets_devices_and_deliveries(client, superuser, acme_linked):
    deliver(client, activity())
    deliver(client, activity(org=404))
    Device.objects.create(organization=acme_linked, ninja_id="1042", display_name="ACME-SRV01")
    staff = admin_client(superuser)
    alerts = staff.get(reverse("admin:ninjaone_alert_changelist"))
    ticket = Alert.objects.get().ticket
    assert alerts.status_code == 200
    assert ticket is not None
    assert reverse("admin:tickets_ticket_change", args=[ticket.pk]) in alerts.content.decode()
    assert "ACME-SRV01" in staff.get(reverse("admin:ninjaone_device_changelist")).content.decode()
    events = staff.get(reverse("admin:ninjaone_webhookevent_changelist")).content.decode()
    assert "No organization is linked to NinjaOne organization 404." in events
    assert staff.get(reverse("admin:ninjaone_alert_change", args=[Alert.objects.get().pk])).status_code == 200
    event = WebhookEvent.objects.filter(organization__isnull=True).get()
    assert staff.get(reverse("admin:ninjaone_webhookevent_change", args=[event.pk])).status_code == 200


def test_staff_change_whether_resets_resolve_tickets(superuser, acme_linked):
    staff = admin_client(superuser)
    add = staff.post(reverse("admin:ninjaone_ninjaonesettings_add"), {"organization": acme_linked.pk})
    assert add.status_code == 302
    assert NinjaOneSettings.objects.get(organization=acme_linked).resolve_on_reset is False  # an unticked box
    row = NinjaOneSettings.objects.get()
    staff.post(reverse("admin:ninjaone_ninjaonesettings_change", args=[row.pk]), {"resolve_on_reset": "on"})
    row.refresh_from_db()
    assert row.resolve_on_reset is True
    assert "not linked" not in staff.get(reverse("admin:ninjaone_ninjaonesettings_changelist")).content.decode()


def test_sync_devices_now(superuser, acme_linked, globex):
    NinjaOneSettings.objects.create(organization=acme_linked)
    NinjaOneSettings.objects.create(organization=globex)
    staff = admin_client(superuser)
    response = staff.post(
        reverse("admin:ninjaone_ninjaonesettings_changelist"),
        {"action": "sync_now", "_selected_action": [acme_linked.pk, globex.pk]},
        follow=True,
    )
    shown = [str(message) for message in response.context["messages"]]
    assert shown == [
        f"Acme Pty Ltd: {4 + 7 % 12} devices ({4 + 7 % 12} new, 0 changed, 0 removed).",
        "Globex Corporation: not linked to NinjaOne (set its NinjaOne organization id first).",
    ]
    assert Device.objects.for_org(acme_linked).count() == 4 + 7 % 12
    assert not Device.objects.for_org(globex).exists()

    sandbox.DEVICES["7"] = []
    device = Device.objects.for_org(acme_linked).first()
    assert device is not None
    staff.post(reverse("admin:ninjaone_device_changelist"), {"action": "sync_now", "_selected_action": [device.pk]})
    assert not Device.objects.for_org(acme_linked).filter(removed_at__isnull=True).exists()


def test_a_ninjaone_failure_is_shown_to_staff(superuser, acme_linked, settings):
    settings.NINJAONE_PROVIDER = "ninjaone"
    settings.NINJAONE_CLIENT_ID = ""
    from integrations.ninjaone import providers

    providers.get_provider.instances.pop("ninjaone", None)
    NinjaOneSettings.objects.create(organization=acme_linked)
    response = admin_client(superuser).post(
        reverse("admin:ninjaone_ninjaonesettings_changelist"),
        {"action": "sync_now", "_selected_action": [acme_linked.pk]},
        follow=True,
    )
    providers.get_provider.instances.pop("ninjaone", None)
    assert [str(m) for m in response.context["messages"]] == [
        "Acme Pty Ltd: NinjaOne did not answer: NINJAONE_CLIENT_ID and NINJAONE_CLIENT_SECRET are not set."
    ]


def test_sync_now_stops_when_ninjaone_asks_keel_to_slow_down(superuser, acme_linked, globex, monkeypatch):
    from integrations.ninjaone.base import ProviderError

    link(globex, "9")
    asked = []

    def limited(self, organization_id):
        asked.append(organization_id)
        raise ProviderError("NinjaOne is rate limiting Keel (HTTP 429); the next sync tries again.", rate_limited=True)

    monkeypatch.setattr(sandbox.SandboxNinjaOne, "devices", limited)
    for organization in (acme_linked, globex):
        NinjaOneSettings.objects.create(organization=organization)
    response = admin_client(superuser).post(
        reverse("admin:ninjaone_ninjaonesettings_changelist"),
        {"action": "sync_now", "_selected_action": [acme_linked.pk, globex.pk]},
        follow=True,
    )
    assert asked == ["7"]
    assert [str(m) for m in response.context["messages"]] == [
        "Acme Pty Ltd: NinjaOne is rate limiting Keel (HTTP 429); the next sync tries again.",
        "Not synced, as NinjaOne asked Keel to slow down: Globex Corporation.",
    ]


def test_staff_groups(acme_linked):
    technician, manager = staff_member("Technician"), staff_member("Manager")
    for model in ("alert", "device", "webhookevent", "ninjaonesettings"):
        assert technician.has_perm(f"ninjaone.view_{model}")
    assert not technician.has_perm("ninjaone.change_ninjaonesettings")
    assert manager.has_perm("ninjaone.change_ninjaonesettings")
    NinjaOneSettings.objects.create(organization=acme_linked)
    as_technician = admin_client(technician)
    page = as_technician.get(reverse("admin:ninjaone_ninjaonesettings_changelist"))
    assert page.status_code == 200
    assert "sync_now" not in page.content.decode()  # the action needs the change permission
    assert "sync_now" in admin_client(manager).get(reverse("admin:ninjaone_device_changelist")).content.decode()


def test_alerts_and_devices_cannot_be_edited_or_alerts_deleted(superuser, acme_linked):
    link(acme_linked, "7")
    staff = admin_client(superuser)
    assert staff.get(reverse("admin:ninjaone_alert_add")).status_code == 403
    assert staff.get(reverse("admin:ninjaone_device_add")).status_code == 403
    assert "delete_selected" not in staff.get(reverse("admin:ninjaone_alert_changelist")).content.decode()
