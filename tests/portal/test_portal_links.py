"""Every link the portal shows a person leads to a page they may open: each person of the demo (every role of an
organization, a partner admin, another organization's owner) walks the portal from the dashboard, following the
links, images and htmx fragments of every page, and no page they are offered answers 403, 404 or 500."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tenancy.models import User
from tests.helpers import walk

pytestmark = pytest.mark.django_db

LINK = re.compile(r'(?:href|src|hx-get)="(/[^"#]*)"')
NOT_PAGES = ("/static/", "/logout/", "/admin/", "/s/")  # assets, signing out, the staff site, short links
PEOPLE = [
    "alice@acme.test",  # owner
    "dana@acme.test",
    "mike@acme.test",
    "bob@acme.test",  # member
    "pat@summit.test",  # partner admin over Acme and Initech
    "carol@globex.test",  # another organization's owner
]


@pytest.mark.parametrize("email", PEOPLE)
def test_no_portal_link_refuses_the_person_it_is_shown_to(demo_data: Any, email: str) -> None:
    client = Client()
    client.force_login(User.objects.get(email=email), backend="django.contrib.auth.backends.ModelBackend")

    opened, refused = walk(client, "/dashboard/", links=LINK, not_pages=NOT_PAGES)

    assert opened > 10
    assert refused == []
