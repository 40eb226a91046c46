"""Helpers for portal tests: second-factor devices, real codes, and clients that sign in the real way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.models import User
from tenancy.services import mfa_backup_codes_regenerate
from tests.factories import PASSWORD


def code_for(device: TOTPDevice, offset_steps: int = 0) -> str:
    """The code an authenticator app shows now (or ``offset_steps`` steps later) for ``device``."""
    value = totp(device.bin_key, step=device.step, t0=device.t0 - offset_steps * device.step, digits=device.digits)
    return f"{value:0{device.digits}d}"


def html_of(message: EmailMessage) -> str:
    """The HTML alternative of a sent message (every transactional email has one)."""
    assert isinstance(message, EmailMultiAlternatives)
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return str(content)


@pytest.fixture
def mfa_device() -> Callable[[User], tuple[TOTPDevice, list[str]]]:
    """Give ``user`` a confirmed authenticator device and 10 backup codes."""

    def make(user: User) -> tuple[TOTPDevice, list[str]]:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
        codes = mfa_backup_codes_regenerate(user=user)
        return device, codes

    return make


@pytest.fixture
def sign_in() -> Callable[..., tuple[Client, Any]]:
    """A client signed in through the real sign-in form (so the second factor is still owed, if any)."""

    def make(user: User, password: str = PASSWORD, **extra: Any) -> tuple[Client, Any]:
        client = Client()
        response = client.post(reverse("portal:login"), {"email": user.email, "password": password}, **extra)
        return client, response

    return make
