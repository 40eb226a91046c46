"""The API's content negotiation answers exactly as DRF's does, taking a shortcut only for the common headers."""

from __future__ import annotations

from unittest import mock

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from tenancy.renderers import ContentNegotiation, JSONRenderer

ACCEPTS = [
    None,
    "",
    "*/*",
    "application/json",
    "application/json; indent=4",
    "text/html",
    "text/html, application/json;q=0.9",
    "application/*",
    "application/xml",
    "application/json, */*;q=0.1",
]
RENDERER_SETS = [[JSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()], [BrowsableAPIRenderer(), JSONRenderer()]]


def choose(negotiator: DefaultContentNegotiation, accept: str | None, query: str, renderers, suffix=None):
    raw = APIRequestFactory().get(f"/api/tickets/{query}")
    if accept is not None:
        raw.META["HTTP_ACCEPT"] = accept
    request = Request(raw)
    try:
        renderer, media_type = negotiator.select_renderer(request, renderers, suffix)
    except NotAcceptable:
        return "406"
    except Http404:
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api", "?page=2"])
@pytest.mark.parametrize("renderers", RENDERER_SETS, ids=["json", "json+api", "api+json"])
@pytest.mark.parametrize("suffix", [None, "json"])
def test_the_same_choice_as_drf(accept, query, renderers, suffix):
    assert choose(ContentNegotiation(), accept, query, renderers, suffix) == choose(
        DefaultContentNegotiation(), accept, query, renderers, suffix
    )


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_the_common_headers_need_no_parsing(accept):
    with mock.patch.object(DefaultContentNegotiation, "select_renderer", side_effect=AssertionError("parsed")):
        assert choose(ContentNegotiation(), accept, "", [JSONRenderer()]) == (JSONRenderer, "application/json")
