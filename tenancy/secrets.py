"""Random tokens and their stored hashes (API keys, invitation links)."""

import hashlib
import secrets


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    # The tokens carry >= 256 bits of randomness, so a fast hash is enough and allows lookup by hash.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
