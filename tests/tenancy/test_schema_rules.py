"""Input rules the API schema states for every operation, checked against what the API does."""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from tenancy.api_base import NON_BLANK

WHITESPACE = [chr(code) for code in range(0x3100) if chr(code).isspace()]


def test_the_non_blank_pattern_refuses_exactly_what_trimming_empties():
    assert not any(re.search(NON_BLANK, character) for character in WHITESPACE)
    assert all(re.search(NON_BLANK, text) for text in ["a", " a ", "\u00adG", "\ufeff", "\x85x"])


def test_request_text_that_may_not_be_blank_says_so_in_the_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    ticket = schema["components"]["schemas"]["TicketCreateRequest"]["properties"]
    assert ticket["subject"]["pattern"] == NON_BLANK
    assert ticket["tags"]["items"]["pattern"] == NON_BLANK
    assert "pattern" not in ticket["description"]  # may be blank


@pytest.mark.django_db
@pytest.mark.parametrize("blank", [" ", "\f", "\x85", "\u3000 \t"])
def test_whitespace_alone_is_refused_naming_the_field(acme, api, api_key_for, blank):
    client = api(api_key_for(organization=acme, scopes=["read", "write", "tickets:read", "tickets:write"])[1])
    response = client.post("/api/tickets/", {"subject": "Printer", "tags": ["ok", blank]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"tags": {"1": ["This field may not be blank."]}}
    response = client.post("/api/tickets/", {"subject": blank}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["subject"]
