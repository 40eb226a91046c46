"""``{% url %}`` remembers argument-less paths, and answers exactly as Django's tag would."""

from __future__ import annotations

from unittest import mock

import pytest
from django.template import Context, Engine, Template
from django.template.engine import Engine as DjangoEngine
from django.urls import NoReverseMatch, clear_script_prefix, set_script_prefix

from portal.templatetags import portal_urls


def render(source: str, **context: object) -> str:
    return Template(source, engine=Engine.get_default()).render(Context(context))


def django_render(source: str, **context: object) -> str:
    return Template(source, engine=DjangoEngine()).render(Context(context))


CASES = [
    "{% url 'portal:dashboard' %}",
    "{% url 'portal:switch_org' 'acme' %}",
    "{% url 'portal:switch_org' slug='acme' %}",
    "{% url name %}",
    "{% url 'portal:logout' as out %}[{{ out }}]",
    "{% url 'no:such' as out %}[{{ out }}]",
]


@pytest.mark.parametrize("source", CASES)
def test_the_same_answer_as_djangos_tag(source: str) -> None:
    assert render(source, name="portal:notifications") == django_render(source, name="portal:notifications")


def test_a_name_without_arguments_is_reversed_once() -> None:
    portal_urls._path.cache_clear()
    with mock.patch.object(portal_urls, "reverse", wraps=portal_urls.reverse) as reversing:
        for _ in range(3):
            assert render("{% url 'portal:dashboard' %}") == "/dashboard/"
    assert reversing.call_count == 1


def test_a_name_that_does_not_reverse_raises_as_djangos_does() -> None:
    with pytest.raises(NoReverseMatch):
        render("{% url 'no:such' %}")


def test_the_script_prefix_is_part_of_the_path() -> None:
    try:
        set_script_prefix("/keel/")
        assert render("{% url 'portal:dashboard' %}") == "/keel/dashboard/"
    finally:
        clear_script_prefix()
    assert render("{% url 'portal:dashboard' %}") == "/dashboard/"


def test_another_url_configuration_is_reversed_for_itself(settings) -> None:
    assert render("{% url 'portal:dashboard' %}") == "/dashboard/"  # remembered for Keel's own configuration
    settings.ROOT_URLCONF = "tests.portal.other_urls"
    assert render("{% url 'portal:dashboard' %}") == "/other/dashboard/"
