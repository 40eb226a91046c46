"""List pagination: ``count`` is exact up to a cap of rows past the page asked for, a lower bound beyond it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenancy.api_policy import Pagination
from tenancy.models import Organization

pytestmark = pytest.mark.django_db


@pytest.fixture
def seven_orgs(summit):
    return [Organization.objects.create(name=f"Org {n}", slug=f"org-{n}", partner=summit) for n in range(7)]


def listed(api, raw, query=""):
    response = api(raw).get(f"/api/organizations/{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_count_is_exact_under_the_cap(api, summit, seven_orgs, api_key_for):
    _, raw = api_key_for(partner=summit)
    body = listed(api, raw, "?page_size=3")
    assert (body["count"], body["count_exact"]) == (7, True)
    assert len(body["results"]) == 3
    assert "page=2" in body["next"]
    assert body["previous"] is None


def test_count_past_the_cap_is_a_lower_bound_and_paging_goes_on(api, summit, seven_orgs, api_key_for, monkeypatch):
    monkeypatch.setattr(Pagination, "count_cap", 4)
    _, raw = api_key_for(partner=summit)
    first = listed(api, raw, "?page_size=2")
    assert (first["count"], first["count_exact"]) == (4, False)
    # Page 2 counts up to 2 + 4 rows past its start: 6 of the 7, still a lower bound.
    second = listed(api, raw, "?page_size=2&page=2")
    assert (second["count"], second["count_exact"]) == (6, False)
    # Page 4 starts at row 7: the rest are counted exactly and there is no next page.
    last = listed(api, raw, "?page_size=2&page=4")
    assert (last["count"], last["count_exact"]) == (7, True)
    assert [len(last["results"]), last["next"]] == [1, None]
    third = listed(api, raw, "?page_size=2&page=3")
    slugs = [o["slug"] for page in (first, second, third, last) for o in page["results"]]
    assert sorted(slugs) == [f"org-{n}" for n in range(7)]


def test_the_count_query_reads_at_most_the_cap(api, summit, seven_orgs, api_key_for, monkeypatch):
    monkeypatch.setattr(Pagination, "count_cap", 4)
    _, raw = api_key_for(partner=summit)
    with CaptureQueriesContext(connection) as queries:
        listed(api, raw, "?page_size=2")
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1
    assert "LIMIT 5" in counts[0]


def test_last_page_counts_everything(api, summit, seven_orgs, api_key_for, monkeypatch):
    monkeypatch.setattr(Pagination, "count_cap", 4)
    _, raw = api_key_for(partner=summit)
    body = listed(api, raw, "?page_size=2&page=last")
    assert (body["count"], body["count_exact"], len(body["results"])) == (7, True, 1)


@pytest.mark.parametrize("page", ["0", "9", "abc", "-1"])
def test_a_page_that_does_not_exist_is_404(api, summit, seven_orgs, api_key_for, page):
    _, raw = api_key_for(partner=summit)
    response = api(raw).get(f"/api/organizations/?page_size=3&page={page}")
    assert response.status_code == 404
    assert "Invalid page" in response.json()["detail"]
