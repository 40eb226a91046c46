"""The real QuickBooks Online adapter: Intuit's OAuth 2 endpoints and the v3 accounting API, over ``requests``.

Every request has a timeout and asks for JSON; amounts are read as ``Decimal`` and written as exact decimal numbers.
A call answered 401 is repeated once with a refreshed token. Errors become ``QboError``: a timeout, a lost connection,
429 and 5xx are retryable (with the wait a 429 or 503 names in ``Retry-After``); a ``Fault`` (400, or a 200 that
carries one) is not, and keeps QuickBooks' code and words.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings

from integrations.quickbooks.providers.base import SCOPE, Entity, QboError, Tokens, TokenSource
from msp.retry_after import retry_after_header

logger = logging.getLogger(__name__)

AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 - an address, not a secret
REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
API_URLS = {"production": "https://quickbooks.api.intuit.com", "sandbox": "https://sandbox-quickbooks.api.intuit.com"}
MINOR_VERSION = "75"
TIMEOUT = (5.0, 30.0)  # seconds to connect, seconds to wait for the answer
RETRYABLE_STATUSES = {408, 429, 500, 502, 503, 504}
ADVISED_STATUSES = {429, 503}  # the answers whose Retry-After says when to ask again
MAX_RESULTS = 1000  # QuickBooks' own cap on a query page


def dumps(value: Any) -> str:
    """JSON with ``Decimal`` written as the exact number it is (``json`` would need a float on the way)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(key))}:{dumps(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value)


def quoted(value: str) -> str:
    """A string literal of QuickBooks' query language: single quotes, backslash escapes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def statement(entity: str, equals: Mapping[str, str], *, updated_since: datetime | None, start: int, limit: int) -> str:
    conditions = [f"{field} = {quoted(value)}" for field, value in equals.items()]
    order = ""
    if updated_since is not None:
        stamp = updated_since.astimezone(UTC).isoformat(timespec="seconds")
        conditions.append(f"Metadata.LastUpdatedTime >= {quoted(stamp)}")
        order = " ORDERBY Metadata.LastUpdatedTime"
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    # QuickBooks' own query language, sent as a URL parameter; every value in it is quoted above.
    page = f"STARTPOSITION {int(start)} MAXRESULTS {min(int(limit), MAX_RESULTS)}"
    return f"SELECT * FROM {entity}{where}{order} {page}"  # noqa: S608


def _body(response: requests.Response) -> Any:
    try:
        return response.json(parse_float=Decimal)
    except ValueError:
        return None


def _advice(response: requests.Response) -> timedelta | None:
    """The wait a 429 or 503 asks for in ``Retry-After``, if any."""
    return retry_after_header(response.headers) if response.status_code in ADVISED_STATUSES else None


def _fault(body: Any) -> QboError | None:
    """The error a ``Fault`` describes: ``{"Fault": {"Error": [{"Message", "Detail", "code"}], "type"}}``."""
    fault = (body.get("Fault") or body.get("fault")) if isinstance(body, dict) else None
    if not isinstance(fault, dict):
        return None
    errors = fault.get("Error") or fault.get("error") or [{}]
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    words = [str(first.get("Message") or fault.get("type") or "QuickBooks refused the request")]
    if first.get("Detail"):
        words.append(str(first["Detail"]))
    return QboError(": ".join(words)[:500], code=str(first.get("code") or ""))


class QuickBooksProvider:
    name = "quickbooks"

    def __init__(self, *, session: requests.Session | None = None) -> None:
        self._session = session or requests.Session()

    # -- OAuth 2 -------------------------------------------------------------------------------------------------------

    def authorize_url(self, *, state: str, redirect_uri: str) -> str:
        query = {
            "client_id": settings.QBO_CLIENT_ID,
            "response_type": "code",
            "scope": SCOPE,
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{AUTHORIZE_URL}?{urlencode(query)}"

    def exchange_code(self, *, code: str, redirect_uri: str) -> Tokens:
        return self._tokens({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})

    def refresh(self, *, refresh_token: str) -> Tokens:
        return self._tokens({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def revoke(self, *, token: str) -> None:
        response = self._send(
            "POST", REVOKE_URL, auth=self._client_auth(), headers={"Accept": "application/json",
            "Content-Type": "application/json"}, data=json.dumps({"token": token}),
        )  # fmt: skip
        if response.status_code != 200:
            status = response.status_code
            raise QboError(f"Intuit did not revoke the token (HTTP {status}).", retryable=status in RETRYABLE_STATUSES,
                           status=status, retry_after=_advice(response))  # fmt: skip

    def _client_auth(self) -> tuple[str, str]:
        return settings.QBO_CLIENT_ID, settings.QBO_CLIENT_SECRET

    def _tokens(self, form: dict[str, str]) -> Tokens:
        response = self._send("POST", TOKEN_URL, auth=self._client_auth(), headers={"Accept": "application/json"},
                              data=form)  # fmt: skip
        body = _body(response)
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            error = str(body.get("error") or "") if isinstance(body, dict) else ""
            raise QboError(
                f"Intuit's token endpoint refused: {error or f'HTTP {response.status_code}'}.",
                retryable=response.status_code in RETRYABLE_STATUSES,
                code=error,
                status=response.status_code,
                retry_after=_advice(response),
            )
        return Tokens(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or ""),
            expires_in=int(body.get("expires_in") or 3600),
            refresh_expires_in=int(body.get("x_refresh_token_expires_in") or 0),
        )

    # -- the accounting API --------------------------------------------------------------------------------------------

    def read(self, auth: TokenSource, entity: str, entity_id: str) -> Entity:
        body = self._api(auth, "GET", f"{entity}/{entity_id}")
        return self._entity(body, entity)

    def save(self, auth: TokenSource, entity: str, body: Entity) -> Entity:
        sent = {**body, "sparse": True} if body.get("Id") else body
        return self._entity(self._api(auth, "POST", entity, body=sent), entity)

    def void(self, auth: TokenSource, entity: str, entity_id: str, sync_token: str) -> Entity:
        body = {"Id": entity_id, "SyncToken": sync_token}
        return self._entity(self._api(auth, "POST", entity, params={"operation": "void"}, body=body), entity)

    def query(
        self,
        auth: TokenSource,
        entity: str,
        equals: Mapping[str, str],
        *,
        updated_since: datetime | None = None,
        start: int = 1,
        limit: int = 100,
    ) -> list[Entity]:
        text = statement(entity, equals, updated_since=updated_since, start=start, limit=limit)
        found = self._api(auth, "GET", "query", params={"query": text}).get("QueryResponse") or {}
        rows = found.get(entity) or []
        return [row for row in rows if isinstance(row, dict)]

    def _entity(self, body: dict[str, Any], entity: str) -> Entity:
        for key, value in body.items():
            if key.lower() == entity.lower() and isinstance(value, dict):
                return value
        raise QboError(f"QuickBooks answered without the {entity}.", retryable=True)

    def _api(self, auth: TokenSource, method: str, path: str, *, params: dict[str, str] | None = None,
             body: Entity | None = None) -> dict[str, Any]:  # fmt: skip
        url = f"{API_URLS.get(settings.QBO_ENVIRONMENT, API_URLS['production'])}/v3/company/{auth.realm_id}/{path}"
        query = {**(params or {}), "minorversion": MINOR_VERSION}
        token = auth.access_token()
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            response = self._send(method, url, params=query, headers=headers,
                                  data=dumps(body) if body is not None else None)  # fmt: skip
            if response.status_code == 401 and attempt == 1:
                token = auth.refreshed(token)
                continue
            break
        parsed = _body(response)
        fault = _fault(parsed)
        if response.status_code in RETRYABLE_STATUSES or response.status_code == 401:
            words = fault.message if fault else f"HTTP {response.status_code}"
            raise QboError(f"QuickBooks is unavailable ({words}).", retryable=True, status=response.status_code,
                           retry_after=_advice(response))  # fmt: skip
        if fault is not None:
            fault.status = response.status_code
            raise fault
        if response.status_code != 200 or not isinstance(parsed, dict):
            raise QboError(f"QuickBooks answered HTTP {response.status_code}.", status=response.status_code)
        return parsed

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.Timeout as error:
            raise QboError("QuickBooks did not answer in time.", retryable=True) from error
        except requests.RequestException as error:
            logger.warning("QuickBooks request failed: %s", error)
            raise QboError(f"QuickBooks could not be reached ({type(error).__name__}).", retryable=True) from error
