"""Bulk sends: written as drafts in the staff admin and started with an action or on save; the job tells the people
with the chosen roles in every active organization (or the chosen ones), writes its progress after each
organization, counts skipped and failed people, shows it all on the admin page, and creates nothing twice when it
runs again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail

from notifications.models import BulkSend, BulkStatus, Delivery, Notice, Notification
from notifications.services import bulk as bulk_service
from notifications.services.bulk import bulk_send_run
from notifications.services.preferences import preferences_update
from tenancy.models import OrgStatus, Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.notifications.conftest import NOW

pytestmark = pytest.mark.django_db

FORM = {"event_type": "platform.incident", "title": "VPN down", "message": "The VPN gateway is down.",
        "url": "/status/", "roles": ["OWNER"]}  # fmt: skip


@pytest.fixture
def owners(acme, alice, bob, globex, carol, initech, frozen) -> dict[str, Any]:
    ivy = UserFactory(email="ivy@initech.test", full_name="Ivy Owner")
    MembershipFactory(user=ivy, organization=initech, role=Role.OWNER)
    closed = OrganizationFactory(name="Closed Co", slug="closed", status=OrgStatus.SUSPENDED)
    MembershipFactory(user=UserFactory(email="olga@closed.test"), organization=closed, role=Role.OWNER)
    return {"ivy": ivy, "closed": closed}


def draft(**changes: Any) -> BulkSend:
    return bulk_service.bulk_send_save(bulk_send=BulkSend(**{**FORM, **changes}))


def test_staff_start_an_incident_notice_to_every_owner_from_the_admin(
    staff_client, owners, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/admin/notifications/bulksend/add/", {**FORM, "start_now": "on"})
    assert response.status_code == 302, response.content
    bulk = BulkSend.objects.get()
    assert (bulk.status, bulk.total, bulk.sent, bulk.skipped, bulk.failed) == (BulkStatus.DONE, 3, 3, 0, 0)
    assert bulk.created_by is not None
    assert (bulk.created_by.email, bulk.started_at, bulk.finished_at) == ("sam@keel.test", NOW, NOW)
    # Every owner of every active organization; not members, not the suspended organization.
    assert sorted(message.to[0] for message in mail.outbox) == ["alice@acme.test", "carol@globex.test",
                                                                 "ivy@initech.test"]  # fmt: skip
    assert {message.subject for message in mail.outbox} == {"[Incident] VPN down"}
    assert sorted(Notification.objects.values_list("user__email", flat=True)) == [
        "alice@acme.test", "carol@globex.test", "ivy@initech.test",
    ]  # fmt: skip

    page = staff_client.get(f"/admin/notifications/bulksend/{bulk.pk}/change/").content.decode()
    assert '<progress max="100" value="100"></progress> 3 of 3 (100 %)' in page
    assert "email sent: 3" in page


def test_a_draft_waits_for_the_start_action(staff_client, owners, django_capture_on_commit_callbacks):
    staff_client.post("/admin/notifications/bulksend/add/", FORM)
    bulk = BulkSend.objects.get()
    assert (bulk.status, bulk.total) == (BulkStatus.DRAFT, 0) and mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/notifications/bulksend/", {"action": "start", "_selected_action": [str(bulk.pk)]}, follow=True
        )
    assert [str(message) for message in response.context["messages"]][-1] == "Started 1 bulk send."
    bulk.refresh_from_db()
    assert (bulk.status, bulk.sent) == (BulkStatus.DONE, 3)
    # Started: it can no longer change, and starting it again does nothing.
    assert staff_client.post(f"/admin/notifications/bulksend/{bulk.pk}/change/", FORM).status_code == 403
    response = staff_client.post(
        "/admin/notifications/bulksend/", {"action": "start", "_selected_action": [str(bulk.pk)]}, follow=True
    )
    assert [str(message) for message in response.context["messages"]] == [
        "1 had already started; they were left alone."
    ]
    assert len(mail.outbox) == 3


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"title": ""}, "title"), ({"roles": []}, "roles"), ({"url": "javascript:x"}, "url"),
     ({"event_type": "nope"}, "event_type")],
)  # fmt: skip
def test_a_draft_with_bad_input_is_refused_by_field(staff_client, owners, changes, field):
    response = staff_client.post("/admin/notifications/bulksend/add/", {**FORM, **changes})
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not BulkSend.objects.exists()


def test_progress_is_written_after_each_organization(owners, monkeypatch, acme, globex, initech, carol):
    preferences_update(organization=globex, user=carol, choices={"platform.incident": set()})
    seen: list[tuple[int, int]] = []
    real_notify = bulk_service.notify

    def watching(**kwargs: Any) -> Notice:
        row = BulkSend.objects.get()
        seen.append((row.sent, row.skipped))
        return real_notify(**kwargs)

    monkeypatch.setattr(bulk_service, "notify", watching)
    bulk = draft()
    bulk_service.bulk_send_start(bulk_send=bulk)
    done = bulk_send_run(bulk_send_id=bulk.pk)
    assert done is not None
    # Organizations go in id order; before each, the row shows what the ones before it added.
    adds = {acme.pk: (1, 0), globex.pk: (0, 1), initech.pk: (1, 0)}  # (sent, skipped): carol turned it off
    expected, sent, skipped = [], 0, 0
    for pk in sorted(adds):
        expected.append((sent, skipped))
        sent, skipped = sent + adds[pk][0], skipped + adds[pk][1]
    assert seen == expected
    assert (done.total, done.sent, done.skipped, done.failed, done.percent) == (3, 2, 1, 0, 100)


def test_an_organization_that_fails_is_counted_and_the_rest_go_on(owners, monkeypatch, globex):
    real_notify = bulk_service.notify

    def failing_for_globex(**kwargs: Any) -> Notice:
        if kwargs["organization"].pk == globex.pk:
            raise RuntimeError("database hiccup")
        return real_notify(**kwargs)

    monkeypatch.setattr(bulk_service, "notify", failing_for_globex)
    bulk = draft()
    bulk_service.bulk_send_start(bulk_send=bulk)
    done = bulk_send_run(bulk_send_id=bulk.pk)
    assert done is not None
    assert (done.status, done.total, done.sent, done.failed) == (BulkStatus.DONE, 3, 2, 1)


def test_chosen_organizations_only(owners, initech):
    bulk = draft()
    bulk.organizations.set([initech])
    bulk_service.bulk_send_start(bulk_send=bulk)
    done = bulk_send_run(bulk_send_id=bulk.pk)
    assert done is not None and (done.total, done.sent) == (1, 1)
    assert list(Notification.objects.values_list("user__email", flat=True)) == ["ivy@initech.test"]


def test_a_stalled_job_runs_again_without_telling_anyone_twice(owners, frozen, django_capture_on_commit_callbacks):
    bulk = draft()
    with django_capture_on_commit_callbacks(execute=True):
        bulk_service.bulk_send_start(bulk_send=bulk)
    assert BulkSend.objects.get().status == BulkStatus.DONE and len(mail.outbox) == 3
    deliveries = Delivery.objects.count()
    assert bulk_send_run(bulk_send_id=bulk.pk) is None  # done: nothing to run

    # Pretend the worker died half-way: RUNNING, silent for longer than the stall limit.
    BulkSend.objects.filter(pk=bulk.pk).update(status=BulkStatus.RUNNING, heartbeat_at=NOW, sent=1)
    assert bulk_send_run(bulk_send_id=bulk.pk) is None  # still recent: another job may hold it
    frozen.shift(timedelta(minutes=5))
    from notifications.tasks import retry_due

    assert retry_due() == 1
    bulk.refresh_from_db()
    assert (bulk.status, bulk.total, bulk.sent) == (BulkStatus.DONE, 3, 3)
    assert Notice.objects.filter(bulk_send=bulk).count() == 3 and Delivery.objects.count() == deliveries
    assert len(mail.outbox) == 3
