"""Secrets Keel must read back (webhook signing secrets, OAuth tokens) are stored encrypted with Fernet (AES-128-CBC
and HMAC-SHA256). The key comes from ``FIELD_ENCRYPTION_KEY``, else from ``SECRET_KEY``; ``FIELD_ENCRYPTION_OLD_KEYS``
still decrypt what older keys wrote, so a key can be rotated without a migration."""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _fernet(material: str) -> Fernet:
    digest = hashlib.sha256(f"keel-field-encryption:{material}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@functools.cache
def _keys(primary: str, old: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet(primary), *(_fernet(key) for key in old)])


def _cipher() -> MultiFernet:
    primary = settings.FIELD_ENCRYPTION_KEY or settings.SECRET_KEY
    return _keys(primary, tuple(settings.FIELD_ENCRYPTION_OLD_KEYS))


def encrypt(text: str) -> str:
    return _cipher().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    """The text ``encrypt`` gave ``token`` for; ValueError when no configured key opens it."""
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("cannot decrypt: the key it was written with is not configured") from None
