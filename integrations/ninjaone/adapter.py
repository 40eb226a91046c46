"""The real NinjaOne client: NinjaOne's public API v2 over HTTPS, with an OAuth 2 client-credentials token.

- Token: ``POST {NINJAONE_BASE_URL}/ws/oauth/token`` (form: ``grant_type=client_credentials``, the client id and
  secret, ``scope=monitoring``: read-only). Kept until a minute before it expires; a 401 fetches a new one once.
- Devices: ``GET /v2/devices-detailed?df=org=<id>&pageSize=<n>&after=<last id>``, page after page until one comes
  back short. The detailed list is used rather than ``/v2/organization/<id>/devices`` because only it carries the
  operating system the portal shows; both page the same way (``after`` is the last device id read).

Every request has a timeout; every failure (network, status, a body that is not the expected JSON) is a
``ProviderError``, so a sync either reads the whole list or changes nothing. A lost connection, a timeout and 5xx are
retryable; a 429 (or a 503 with ``Retry-After``) is NinjaOne asking Keel to slow down, with the wait it named.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import requests
from django.conf import settings

from integrations.ninjaone.base import ProviderError, RemoteDevice
from msp.retry_after import retry_after_header

TIMEOUT = 15.0  # seconds, per request
PAGE_SIZE = 200
MAX_PAGES = 500  # 100,000 devices: far more than one organization has; stops a list that never ends
SCOPE = "monitoring"
TOKEN_MARGIN = 60  # seconds before expiry a token is no longer used


class NinjaOneClient:
    name = "ninjaone"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = (base_url or settings.NINJAONE_BASE_URL).rstrip("/")
        self.client_id = client_id if client_id is not None else settings.NINJAONE_CLIENT_ID
        self.client_secret = client_secret if client_secret is not None else settings.NINJAONE_CLIENT_SECRET
        self.session = session or requests.Session()
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    # -- authentication ---------------------------------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, float]:
        if not self.client_id or not self.client_secret:
            raise ProviderError("NINJAONE_CLIENT_ID and NINJAONE_CLIENT_SECRET are not set.")
        try:
            response = self.session.post(
                f"{self.base_url}/ws/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "scope": SCOPE,
                },
                headers={"Accept": "application/json"},
                timeout=TIMEOUT,
            )
        except requests.RequestException as error:
            raise ProviderError(f"NinjaOne token request failed: {error.__class__.__name__}", retryable=True) from None
        _raise_if_unavailable(response, "/ws/oauth/token")
        if response.status_code != 200:
            raise ProviderError(f"NinjaOne refused the client credentials (HTTP {response.status_code}).")
        body = _json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderError("NinjaOne's token answer has no access_token.")
        expires_in = body.get("expires_in", 3600)
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) else 0
        return token, time.monotonic() + max(lifetime - TOKEN_MARGIN, 0)

    def _access_token(self, *, fresh: bool = False) -> str:
        with self._lock:
            if fresh or self._token is None or time.monotonic() >= self._token[1]:
                self._token = self._fetch_token()
            return self._token[0]

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}"
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self._access_token(fresh=attempt > 0)}", "Accept": "application/json"}
            try:
                response = self.session.get(url, params=params, headers=headers, timeout=TIMEOUT)
            except requests.RequestException as error:
                raise ProviderError(f"NinjaOne request failed: {error.__class__.__name__}", retryable=True) from None
            if response.status_code == 401 and attempt == 0:
                continue  # the token expired early or was revoked: one more try with a new one
            _raise_if_unavailable(response, path)
            if response.status_code != 200:
                raise ProviderError(f"NinjaOne answered HTTP {response.status_code} for {path}.")
            return _json(response)
        raise ProviderError("NinjaOne refused a new token too (HTTP 401).")  # pragma: no cover - loop always returns

    # -- devices ----------------------------------------------------------------------------------------------------

    def devices(self, organization_id: str) -> list[RemoteDevice]:
        if not organization_id.isdigit():
            raise ProviderError(f"NinjaOne organization ids are numbers, not {organization_id!r}.")
        found: dict[str, RemoteDevice] = {}
        after: int | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"df": f"org={organization_id}", "pageSize": PAGE_SIZE}
            if after is not None:
                params["after"] = after
            page = self._get("/v2/devices-detailed", params)
            if not isinstance(page, list):
                raise ProviderError("NinjaOne's device list is not a JSON array.")
            ids: list[int] = []
            for item in page:
                device = _device(item)
                ids.append(int(device.ninja_id))
                if str(item.get("organizationId", organization_id)) == organization_id:
                    found[device.ninja_id] = device
            if len(page) < PAGE_SIZE:
                return list(found.values())
            last = max(ids)
            if after is not None and last <= after:
                raise ProviderError("NinjaOne's device pages do not move forward.")
            after = last
        raise ProviderError(f"NinjaOne listed more than {MAX_PAGES * PAGE_SIZE} devices; the sync stopped.")


def _raise_if_unavailable(response: requests.Response, path: str) -> None:
    """A 429 or a 5xx as a retryable ProviderError, with the wait a 429 or 503 names in ``Retry-After``."""
    status = response.status_code
    if status != 429 and status < 500:
        return
    advice = retry_after_header(response.headers) if status in (429, 503) else None
    if status == 429:
        raise ProviderError("NinjaOne is rate limiting Keel (HTTP 429); the next sync tries again.", rate_limited=True,
                            retry_after=advice)  # fmt: skip
    raise ProviderError(f"NinjaOne answered HTTP {status} for {path}.", retryable=True,
                        rate_limited=advice is not None, retry_after=advice)  # fmt: skip


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ProviderError("NinjaOne's answer is not JSON.") from None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        seconds = value / 1000 if value > 10**11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else None
    return None


def _text(item: dict[str, Any], name: str, limit: int = 200) -> str:
    value = item.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _device(item: Any) -> RemoteDevice:
    if not isinstance(item, dict):
        raise ProviderError("A device in NinjaOne's list is not an object.")
    ninja_id = item.get("id")
    if isinstance(ninja_id, bool) or not isinstance(ninja_id, int):
        raise ProviderError("A device in NinjaOne's list has no numeric id.")
    os_info = item.get("os")
    if not isinstance(os_info, dict):
        os_info = {}
    return RemoteDevice(
        ninja_id=str(ninja_id),
        display_name=_text(item, "displayName"),
        system_name=_text(item, "systemName") or _text(item, "dnsName"),
        node_class=_text(item, "nodeClass", 40),
        os_name=_text(os_info, "name"),
        offline=item.get("offline") is True,
        last_contact_at=_timestamp(item.get("lastContact")),
    )
