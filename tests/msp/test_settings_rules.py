"""Production settings refuse to start when unsafe; NAME_FILE secrets are read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from msp.env import env, to_bool, to_count_or_off

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "KEEL_ENV": "production",
    "SECRET_KEY": "x7!k2m@p9#q4w8e5r1t6y3u0i-o2p5a8s1d4f7g0h3j6k9l2z5x8c1v4b7n0m3",
    "ALLOWED_HOSTS": "keel.example.com",
    "EMAIL_PROVIDER": "sendgrid",
    "SENDGRID_API_KEY": "dummy",
    "STRIPE_SECRET_KEY": "sk_test_dummy",
    "STRIPE_WEBHOOK_SECRET": "whsec_dummy",
    "ANYMAIL_WEBHOOK_SECRET": "inbound:dummy",
    "TWILIO_ACCOUNT_SID": "ACdummy",
    "TWILIO_AUTH_TOKEN": "dummy",
    "DJANGO_SETTINGS_MODULE": "msp.settings",
}


def load_settings(**overrides: str | None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in GOOD and not k.endswith("_FILE")}
    environment.pop("DEBUG", None)
    environment.update(GOOD)
    for key, value in overrides.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )


def test_production_settings_load_when_safe():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is required"),
        ({"DEBUG": "true"}, "DEBUG must be off"),
        ({"EMAIL_PROVIDER": "sandbox"}, "sandbox providers are not allowed in production: EMAIL_PROVIDER"),
        ({"STRIPE_PROVIDER": "sandbox"}, "sandbox providers are not allowed in production: STRIPE_PROVIDER"),
        ({"STRIPE_SECRET_KEY": None}, "STRIPE_SECRET_KEY is required"),
        ({"STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET is required"),
        ({"ANYMAIL_WEBHOOK_SECRET": None}, "ANYMAIL_WEBHOOK_SECRET is required"),
        ({"SMS_PROVIDER": "sandbox"}, "sandbox providers are not allowed in production: SMS_PROVIDER"),
        ({"TWILIO_AUTH_TOKEN": None}, "TWILIO_AUTH_TOKEN is required"),
        ({"TWILIO_ACCOUNT_SID": None}, "TWILIO_ACCOUNT_SID is required"),
        ({"ANYMAIL_WEBHOOK_SECRET": "no-colon"}, "ANYMAIL_WEBHOOK_SECRET must be user:password"),
        ({"SUPPORT_INBOUND_UNKNOWN_SENDER": "bounce"}, "SUPPORT_INBOUND_UNKNOWN_SENDER must be reject or queue"),
    ],
)
def test_production_settings_refuse_unsafe_configuration(overrides, message):
    result = load_settings(**overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_secret_can_come_from_a_file(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.delenv("KEEL_TEST_SECRET", raising=False)
    monkeypatch.setenv("KEEL_TEST_SECRET_FILE", str(secret))
    assert env("KEEL_TEST_SECRET") == "from-a-file"
    monkeypatch.setenv("KEEL_TEST_SECRET", "direct")
    assert env("KEEL_TEST_SECRET") == "direct"


def test_bad_boolean_names_the_variable(monkeypatch):
    from msp.env import EnvValueError

    monkeypatch.setenv("KEEL_TEST_FLAG", "perhaps")
    with pytest.raises(EnvValueError, match="KEEL_TEST_FLAG"):
        env("KEEL_TEST_FLAG", False, to_bool)


COUNT_DEFAULT: int | None = 2


@pytest.mark.parametrize(("raw", "count"), [("0", 0), ("2", 2), (" 7 ", 7), ("off", None), ("OFF", None)])
def test_a_count_or_off(monkeypatch, raw, count):
    monkeypatch.setenv("KEEL_TEST_COUNT", raw)
    assert env("KEEL_TEST_COUNT", COUNT_DEFAULT, to_count_or_off) == count


@pytest.mark.parametrize("raw", ["-1", "two", ""])
def test_a_bad_count_names_the_variable(monkeypatch, raw):
    from msp.env import EnvValueError

    monkeypatch.setenv("KEEL_TEST_COUNT", raw)
    with pytest.raises(EnvValueError, match="KEEL_TEST_COUNT"):
        env("KEEL_TEST_COUNT", COUNT_DEFAULT, to_count_or_off)


def test_check_deploy_is_clean_under_production_settings():
    environment = {**{k: v for k, v in os.environ.items() if k != "DEBUG"}, **GOOD}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
