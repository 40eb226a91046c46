"""The signed-in person's row comes from the cache on later pages, never with their password, and any change to the
row (a new password, deactivation, a new email, deletion) applies from the very next request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.contrib import auth
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenancy.auth_cache import users_changed
from tenancy.models import User
from tenancy.services.accounts import user_profile_update
from tenancy.session_user import session_user

DASHBOARD = "/dashboard/"


def user_queries(client: Client, path: str = DASHBOARD) -> tuple[int, Any]:
    """The page, and how many of its queries read the person's row."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    reads = [q["sql"] for q in queries.captured_queries if 'FROM "tenancy_user"' in q["sql"]]
    return len(reads), response


@pytest.mark.django_db
def test_a_later_page_reads_no_row_of_the_person(alice: User, client_for: Callable[[User], Client]) -> None:
    client = client_for(alice)
    first, response = user_queries(client)
    assert response.status_code == 200
    assert first == 1
    again, response = user_queries(client)
    assert response.status_code == 200
    assert again == 0
    assert b"alice@acme.test" in response.content


@pytest.mark.django_db
def test_a_new_password_signs_other_sessions_out(alice: User, client_for: Callable[[User], Client]) -> None:
    client = client_for(alice)
    assert client.get(DASHBOARD).status_code == 200  # cached now
    alice.set_password("a whole new passphrase")
    alice.save()
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_a_person_deactivated_by_an_update_is_signed_out(alice: User, client_for: Callable[[User], Client]) -> None:
    client = client_for(alice)
    assert client.get(DASHBOARD).status_code == 200
    User.objects.filter(email="alice@acme.test").update(is_active=False)
    assert client.get(DASHBOARD).status_code == 302


@pytest.mark.django_db
def test_a_deleted_person_is_signed_out(alice: User, client_for: Callable[[User], Client]) -> None:
    client = client_for(alice)
    assert client.get(DASHBOARD).status_code == 200
    alice.delete()
    assert client.get(DASHBOARD).status_code == 302


@pytest.mark.django_db
def test_a_changed_name_shows_on_the_next_page(alice: User, client_for: Callable[[User], Client]) -> None:
    client = client_for(alice)
    assert b">Alice<" in client.get(DASHBOARD).content  # the short name in the header
    user_profile_update(user=alice, full_name="Alicia Owner")  # a queryset update
    assert b">Alicia<" in client.get(DASHBOARD).content


@pytest.mark.django_db
def test_the_cached_row_has_no_password_and_saving_it_keeps_the_real_one(
    alice: User, client_for: Callable[[User], Client], rf: Any
) -> None:
    alice.set_password("correct horse battery")
    alice.save()
    client = client_for(alice)
    client.get(DASHBOARD)  # cached now
    request = rf.get(DASHBOARD)
    request.session = client.session
    user = session_user(request)
    assert user.pk == alice.pk
    assert "password" in user.get_deferred_fields()
    user.full_name = "Alice O."
    user.save()
    stored = User.objects.get(pk=alice.pk)
    assert stored.full_name == "Alice O."
    assert stored.check_password("correct horse battery")
    assert user.check_password("correct horse battery")  # loads the password when asked


@pytest.mark.django_db
def test_a_row_read_while_the_person_changed_is_not_used(alice: User, client_for: Callable[[User], Client]) -> None:
    client = client_for(alice)
    client.get(DASHBOARD)
    users_changed([alice.pk])  # the cached row is of an older version now
    loaded = auth.get_user

    def changed_meanwhile(request: Any) -> Any:
        user = loaded(request)
        users_changed([user.pk])  # another request changes the person after this one loaded them
        return user

    with mock.patch("tenancy.session_user.auth.get_user", changed_meanwhile):
        first, _ = user_queries(client)
    assert first == 1
    again, _ = user_queries(client)
    assert again == 1  # what the first request read was not kept: it may be older than the change


@pytest.mark.django_db
def test_a_session_of_an_unknown_backend_is_anonymous(alice: User, client_for: Callable[[User], Client]) -> None:
    client = client_for(alice)
    assert client.get(DASHBOARD).status_code == 200
    session = client.session
    session["_auth_user_backend"] = "somewhere.else.Backend"
    session.save()
    assert client.get(DASHBOARD).status_code == 302


@pytest.mark.django_db
def test_a_forged_session_hash_is_refused_even_with_the_row_cached(
    alice: User, client_for: Callable[[User], Client]
) -> None:
    client = client_for(alice)
    assert client.get(DASHBOARD).status_code == 200
    session = client.session
    session["_auth_user_hash"] = "0" * 64
    session.save()
    assert client.get(DASHBOARD).status_code == 302


@pytest.mark.django_db
def test_a_backend_taken_out_of_the_settings_signs_its_sessions_out(
    alice: User, client_for: Callable[[User], Client], settings: Any
) -> None:
    client = client_for(alice)
    assert client.get(DASHBOARD).status_code == 200  # cached now
    settings.AUTHENTICATION_BACKENDS = ["sesame.backends.ModelBackend"]
    assert client.get(DASHBOARD).status_code == 302
