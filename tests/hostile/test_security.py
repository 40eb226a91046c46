"""Headers, templates and guessing limits: what stops hostile input from running, and hostile callers from guessing.

- Every response carries a Content-Security-Policy that allows scripts only from Keel's static files.
- No template runs inline script or marks what it shows as safe; Python marks HTML safe only where listed below.
- Sign-in, sign-in links and API keys cannot be guessed at speed from one address.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from tenancy.models import ApiKey

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def _static_routes(patterns, prefix: str = "", namespace: tuple[str, ...] = ()):
    """Every route without path parameters, as a path a browser could ask for."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = (*namespace, pattern.namespace) if pattern.namespace else namespace
            yield from _static_routes(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            if "<" in route or "(?P" in route:
                continue
            path = "/" + route.lstrip("^").replace("$", "").replace("/?", "/").replace("\\", "")
            if re.search(r"[\[\]()*+?|{}]", path):
                continue
            yield ":".join((*namespace, pattern.name or "")), path


STATIC_ROUTES = sorted(set(_static_routes(get_resolver().url_patterns)))


# -- Content-Security-Policy ----------------------------------------------------------------------------------------


def test_the_policy_forbids_inline_script_and_framing(client):
    policy = _policy(client.get("/login/"))
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in " ".join(" ".join(sources) for sources in policy.values())


@pytest.mark.parametrize(("name", "path"), STATIC_ROUTES, ids=[name for name, _ in STATIC_ROUTES])
def test_every_page_sends_the_policy_signed_in_or_not(client, client_for, alice, name, path):
    for who in (client, client_for(alice)):
        response = who.get(path)
        assert response.status_code < 500, (path, response.status_code)
        assert "Content-Security-Policy" in response, (path, response.status_code)
        assert "script-src 'self'" in response["Content-Security-Policy"] or response[
            "Content-Security-Policy"
        ].startswith("default-src 'none'")


def test_not_found_pages_and_the_api_send_it_too(client):
    assert "Content-Security-Policy" in client.get("/no-such-page/")
    assert "Content-Security-Policy" in client.get("/api/tickets/")


def test_routes_without_parameters_were_found():
    names = {name for name, _ in STATIC_ROUTES}
    assert {"portal:login", "portal:dashboard", "health", "api-schema"} <= names


def test_a_response_with_its_own_stricter_policy_keeps_it(client, acme):
    acme.brand_logo = b"\x89PNG\r\n\x1a\n" + b"0" * 32
    acme.brand_logo_type = "image/png"
    acme.brand_logo_version = 1
    acme.save(update_fields=["brand_logo", "brand_logo_type", "brand_logo_version"])
    response = client.get(f"/branding/{acme.pk}/logo")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "default-src 'none'"


# -- templates ------------------------------------------------------------------------------------------------------

TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("*/templates"), *ROOT.glob("integrations/*/templates")]
HTML_TEMPLATES = sorted({p for d in TEMPLATE_DIRS for p in d.rglob("*.html")})
# Plain-text email bodies and subjects are not HTML: escaping them would show &amp; to the reader.
TEXT_TEMPLATES = sorted({p for d in TEMPLATE_DIRS for p in d.rglob("*.txt")})


def test_templates_were_found():
    assert len(HTML_TEMPLATES) > 50
    assert any(p.name == "base.html" for p in HTML_TEMPLATES)


@pytest.mark.parametrize("template", HTML_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_html_templates_never_mark_content_safe_or_run_inline_script(template):
    text = template.read_text(encoding="utf-8")
    assert not re.search(r"\|\s*safe(seq)?\b", text), "|safe in an HTML template"
    assert "{% autoescape off" not in text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script> (the policy would block it)"
    assert not re.search(r"\son[a-z]+\s*=\s*[\"']", text), "inline event handler attribute"
    assert "javascript:" not in text.lower()


def test_text_templates_are_plain_text():
    for template in TEXT_TEMPLATES:
        text = template.read_text(encoding="utf-8")
        assert "<script" not in text.lower(), template


# Where Python marks HTML safe, and why it is not user input there.
MARK_SAFE_ALLOWED = {
    "portal/views/account.py",  # the two-factor QR code: SVG drawn by qrcode from the device's own config URL
}


def test_python_marks_html_safe_only_where_listed():
    found = set()
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith((".venv/", "tests/", "bench/")) or "/migrations/" in relative:
            continue
        if re.search(r"\bmark_safe\(|\bSafeString\(|\bSafeText\(", path.read_text(encoding="utf-8")):
            found.add(relative)
    assert found == MARK_SAFE_ALLOWED


# -- guessing limits ------------------------------------------------------------------------------------------------


def test_one_address_spraying_passwords_across_accounts_is_stopped(client, alice):
    for number in range(30):
        response = client.post("/login/", {"email": f"person{number}@acme.test", "password": "guess-guess"})
        assert response.status_code == 400
    refused = client.post("/login/", {"email": alice.email, "password": "guess-guess"})
    assert refused.status_code == 429
    assert "Too many attempts" in refused.content.decode()
    assert int(refused["Retry-After"]) > 0
    # Another address is not affected.
    other = client.post("/login/", {"email": alice.email, "password": "guess"}, REMOTE_ADDR="203.0.113.9")
    assert other.status_code == 400


def test_the_sign_in_limit_ends_with_its_window(client, alice, password):
    for number in range(30):
        client.post("/login/", {"email": f"person{number}@acme.test", "password": "guess-guess"})
    assert client.post("/login/", {"email": alice.email, "password": password}).status_code == 429
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert client.post("/login/", {"email": alice.email, "password": password}).status_code == 302


def test_magic_link_requests_are_limited_per_address(client, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for number in range(10):
            response = client.post("/login/magic/", {"email": f"someone{number}@acme.test"})
            assert response.status_code == 200
        refused = client.post("/login/magic/", {"email": alice.email})
    assert refused.status_code == 429
    assert "sign-in link" in refused.content.decode()
    assert not [m for m in mail.outbox if alice.email in m.to]


def test_guessing_sign_in_link_tokens_is_limited(client, alice):
    for number in range(20):
        response = client.get(f"/login/magic/confirm/?sesame=not-a-token-{number}")
        assert response.status_code == 410
    assert client.get("/login/magic/confirm/?sesame=another").status_code == 429


def test_guessing_api_keys_is_throttled_even_for_a_valid_key(api, api_key_for, acme):
    _, raw = api_key_for(organization=acme, scopes=("read",))
    assert api(raw).get("/api/organizations/current/").status_code == 200
    for number in range(settings.API_KEY_FAILURE_LIMIT):
        assert api(f"keel_guess{number:04d}").get("/api/organizations/current/").status_code == 401
    refused = api(raw).get("/api/organizations/current/")
    assert refused.status_code == 429
    assert "Too many invalid API keys" in refused.json()["detail"]
    assert int(refused["Retry-After"]) > 0
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert api(raw).get("/api/organizations/current/").status_code == 200


def test_revoked_and_expired_keys_count_as_failures(api, api_key_for, acme):
    key, raw = api_key_for(organization=acme, scopes=("read",))
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    for _ in range(settings.API_KEY_FAILURE_LIMIT):
        response = api(raw).get("/api/organizations/current/")
        assert response.status_code == 401
        assert "revoked" in response.json()["detail"]
    assert api(raw).get("/api/organizations/current/").status_code == 429


def test_admin_requires_a_second_factor(client, django_user_model):
    staff = django_user_model.objects.create_user(email="staff@keel.test", password="x-very-long-pass", is_staff=True)
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
