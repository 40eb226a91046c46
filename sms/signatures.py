"""Twilio webhook signatures. Pure: strings in, a signature or a verdict out.

Twilio signs each webhook request with the account's auth token and sends the result as ``X-Twilio-Signature``:
the base64 HMAC-SHA1 of the full URL it requested (scheme, host, path and query string) followed by every POST
parameter, sorted by name, each written as its name then its value with no separators.

Parameters come as a ``Mapping[str, str]``: one value per name. Twilio's status and incoming-message callbacks
never repeat a name. A form that did would be signed with every value of the name (sorted, appended in turn), which a
mapping cannot hold, so such a request fails verification here: the safe way to fail. JSON bodies (signed through a
``bodySHA256`` query parameter) are not handled; Twilio's messaging callbacks are forms.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"https": 443, "http": 80}


def twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a POST of ``params`` to ``url``."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_valid(url: str, params: Mapping[str, str], signature: str | None, auth_token: str) -> bool:
    """Whether ``signature`` is Twilio's for this request. Compared in constant time.

    Twilio sometimes signs the URL with the port written out (``:443``) and sometimes without, whatever URL it was
    given, so both spellings are accepted, as Twilio's own ``RequestValidator`` does.
    """
    if not auth_token or not signature:
        return False
    given = signature.encode()
    # Every candidate is compared, so the time taken does not tell which spelling of the URL came close.
    results = [
        hmac.compare_digest(twilio_signature(candidate, params, auth_token).encode(), given)
        for candidate in _url_spellings(url)
    ]
    return any(results)


def _url_spellings(url: str) -> list[str]:
    """``url`` as given, and with its port written out or left out."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: only the URL as given can match
        return [url]
    host = parts.netloc.rpartition(":")[0] if port is not None else parts.netloc
    if port is not None:
        other = urlunsplit(parts._replace(netloc=host))
    elif parts.scheme in DEFAULT_PORTS:
        other = urlunsplit(parts._replace(netloc=f"{host}:{DEFAULT_PORTS[parts.scheme]}"))
    else:
        return [url]
    return [url, other]
