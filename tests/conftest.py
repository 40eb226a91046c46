"""The named people of every test: alice (owner at Acme), bob (technician/member at Acme), carol (owner at Globex,
the outsider who must see nothing of Acme) and pat (partner admin at Summit, over Acme and Initech)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from tenancy.models import ApiKey, Organization, Partner, Role, User
from tenancy.services import api_key_create
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, PartnerFactory, UserFactory


@pytest.fixture(scope="module")
def demo_data(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """The demo (``seed_demo``: partner, organizations, people of every role, staff, and each app's records), made
    once for a module's tests, which each run in a savepoint of it, and rolled back after them: the database is left
    as the migrations made it (a flush would also remove what data migrations seeded)."""
    from django.core.management import call_command
    from django.db import transaction

    with django_db_blocker.unblock():
        seeded = transaction.atomic()
        seeded.__enter__()
        try:
            call_command("seed_demo", stdout=io.StringIO())
        except BaseException:
            transaction.set_rollback(True)
            seeded.__exit__(None, None, None)
            raise
    yield
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        seeded.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    # Throttle counters and axes state live in the cache; every test starts clean.
    cache.clear()


@pytest.fixture(autouse=True)
def _starting_prices(request: pytest.FixtureRequest) -> None:
    """Messaging's price table as its migration starts it: a transactional test's flush empties it."""
    marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    if "transactional_db" in names or (marker is not None and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif marker is not None or "db" in names:
        request.getfixturevalue("db")
    else:
        return
    from sms.services.lookups import starting_prices

    starting_prices()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def summit(db: Any) -> Partner:
    return PartnerFactory(name="Summit IT", slug="summit")


@pytest.fixture
def acme(summit: Partner) -> Organization:
    return OrganizationFactory(name="Acme Pty Ltd", slug="acme", partner=summit)


@pytest.fixture
def initech(summit: Partner) -> Organization:
    return OrganizationFactory(name="Initech", slug="initech", partner=summit, timezone="Australia/Perth")


@pytest.fixture
def globex(db: Any) -> Organization:
    return OrganizationFactory(
        name="Globex Corporation", slug="globex", timezone="America/New_York", currency="USD", country="US"
    )


@pytest.fixture
def alice(acme: Organization) -> User:
    user = UserFactory(email="alice@acme.test", full_name="Alice Owner")
    MembershipFactory(user=user, organization=acme, role=Role.OWNER)
    return user


@pytest.fixture
def bob(acme: Organization) -> User:
    user = UserFactory(email="bob@acme.test", full_name="Bob Technician")
    MembershipFactory(user=user, organization=acme, role=Role.MEMBER)
    return user


@pytest.fixture
def carol(globex: Organization) -> User:
    user = UserFactory(email="carol@globex.test", full_name="Carol Outsider")
    MembershipFactory(user=user, organization=globex, role=Role.OWNER)
    return user


@pytest.fixture
def pat(summit: Partner, acme: Organization, initech: Organization) -> User:
    from tests.factories import PartnerMembershipFactory

    user = UserFactory(email="pat@summit.test", full_name="Pat Partner")
    PartnerMembershipFactory(user=user, partner=summit)
    return user


@pytest.fixture
def client_for() -> Callable[[User], Client]:
    """A test client signed in as ``user`` (session auth, no second factor)."""

    def make(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def api_key_for() -> Callable[..., tuple[ApiKey, str]]:
    def make(
        *,
        organization: Organization | None = None,
        partner: Partner | None = None,
        scopes: tuple[str, ...] = ("read", "write"),
    ) -> tuple[ApiKey, str]:
        return api_key_create(name="test key", scopes=list(scopes), organization=organization, partner=partner)

    return make


@pytest.fixture
def api() -> Callable[[str | None], APIClient]:
    """An API client authenticated with a raw key (or anonymous with None)."""

    def make(raw_key: str | None = None, organization: str | None = None) -> APIClient:
        client = APIClient()
        headers: dict[str, str] = {}
        if raw_key:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
        if organization:
            headers["HTTP_X_ORGANIZATION"] = organization
        client.credentials(**headers)
        return client

    return make
