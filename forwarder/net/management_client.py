"""The Office 365 Management Activity API as the o365audit input uses it.

Four calls: list and start subscriptions, list available content for a time
window (following `NextPageUri`), fetch one content blob. Retries, throttling
(429, and AF429 which the API sends as a 403) and token renewal belong to
HttpClient; what reaches this module is an answer that waiting a few seconds
did not fix. Each one becomes a `ManagementApiError` whose `kind` tells the
poller what to do — start the subscription, move the window, record a content
gap, wait, or park the tenant — and whose message names the fix.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson

from forwarder.net.http_client import HttpClient, PermanentHttpError, redacted_url
from forwarder.pipeline.event import parse_timestamp

LIST_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
NEXT_PAGE_HEADERS = ("NextPageUri", "NextPageUrl")


class ErrorKind(StrEnum):
    NO_SUBSCRIPTION = "no_subscription"
    BAD_WINDOW = "bad_window"
    CONTENT_GONE = "content_gone"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


class ManagementApiError(Exception):
    """An answer of the API after HttpClient's retries; `tenant_wide` says it concerns every content type."""

    def __init__(self, message: str, code: str, kind: ErrorKind, status: int = 0, tenant_wide: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind
        self.status = status
        self.tenant_wide = tenant_wide


@dataclass(frozen=True)
class ContentBlob:
    """One entry of a content listing: a blob of audit records, listed by when it became available."""

    content_id: str
    content_uri: str
    content_type: str
    created: float
    expiration: float | None


# Codes of the API's error table, what they mean for a poller, and whether they concern the whole tenant.
_CODES: dict[str, tuple[ErrorKind, bool]] = {
    "AF10001": (ErrorKind.PERMANENT, True),
    "AF20001": (ErrorKind.PERMANENT, False),
    "AF20002": (ErrorKind.PERMANENT, False),
    "AF20003": (ErrorKind.PERMANENT, False),
    "AF20010": (ErrorKind.PERMANENT, True),
    "AF20011": (ErrorKind.PERMANENT, True),
    "AF20012": (ErrorKind.PERMANENT, True),
    "AF20013": (ErrorKind.PERMANENT, True),
    "AF20020": (ErrorKind.PERMANENT, False),
    "AF20022": (ErrorKind.NO_SUBSCRIPTION, False),
    "AF20023": (ErrorKind.NO_SUBSCRIPTION, False),
    "AF20030": (ErrorKind.BAD_WINDOW, False),
    "AF20055": (ErrorKind.BAD_WINDOW, False),
    "AF20031": (ErrorKind.TRANSIENT, False),
    "AF20050": (ErrorKind.CONTENT_GONE, False),
    "AF20051": (ErrorKind.CONTENT_GONE, False),
    "AF20052": (ErrorKind.CONTENT_GONE, False),
    "AF429": (ErrorKind.THROTTLED, False),
    "AF50000": (ErrorKind.TRANSIENT, False),
    "AF50005": (ErrorKind.TRANSIENT, False),
    "AF50006": (ErrorKind.TRANSIENT, False),
}


def classify(status: int, code: str, blob: bool = False) -> tuple[ErrorKind, bool]:
    """(kind, tenant_wide) of one error answer; `blob` marks a content fetch, where a bare 404 means gone."""
    known = _CODES.get(code)
    if known is not None:
        return known
    if status == 0:
        return ErrorKind.PERMANENT, True
    if status == 404 and blob:
        return ErrorKind.CONTENT_GONE, False
    if status in (429, 503, 504) or status >= 500 or status in (401, 408):
        return (ErrorKind.THROTTLED if status == 429 else ErrorKind.TRANSIENT), False
    return ErrorKind.PERMANENT, False


def list_time(epoch: float) -> str:
    """A listing bound as the API takes it: UTC, whole seconds, no zone suffix."""
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).strftime(LIST_TIME_FORMAT)


class ManagementClient:
    """One tenant's Activity API feed at `resource` (https://manage.office.com or a government cloud's)."""

    def __init__(self, http: HttpClient, resource: str, tenant_id: str, application_id: str,
                 publisher_id: str | None = None) -> None:
        root = resource.rstrip("/")
        if urlsplit(root).scheme != "https" or not urlsplit(root).hostname:
            raise ValueError(f"the Management API resource {resource!r} must be an https:// URL")
        self.http = http
        self.tenant_id = tenant_id
        self.application_id = application_id
        # Requests carrying a PublisherIdentifier get their own throttling pool instead of the shared one.
        self.publisher_id = publisher_id or tenant_id
        self._feed = f"{root}/api/v1.0/{tenant_id}/activity/feed"
        self._origin = _origin(root)

    def subscriptions(self) -> dict[str, str]:
        """{content type: status} of the tenant's subscriptions (status `enabled` or `disabled`)."""
        body = self._call("GET", f"{self._feed}/subscriptions/list", {}, "listing subscriptions")
        if not isinstance(body, list):
            raise _invalid(self.tenant_id, "listing subscriptions", "a list")
        return {str(entry.get("contentType")): str(entry.get("status", "")).lower()
                for entry in body if isinstance(entry, dict)}

    def start_subscription(self, content_type: str) -> str:
        """Starts (or re-enables) the subscription; returns its status, `enabled` when it worked."""
        try:
            body = self._call("POST", f"{self._feed}/subscriptions/start", {"contentType": content_type},
                              f"starting the {content_type} subscription")
        except ManagementApiError as error:
            if error.code == "AF20024":
                return "enabled"
            raise
        return str(body.get("status", "")).lower() if isinstance(body, dict) else ""

    def content_pages(self, content_type: str, start: float, end: float) -> Iterator[list[ContentBlob]]:
        """Yields the blobs with `start <= contentCreated < end`, one list per page, until no NextPageUri is left."""
        what = f"listing {content_type} content"
        url = f"{self._feed}/subscriptions/content"
        params: dict[str, str] = {"contentType": content_type, "startTime": list_time(start),
                                  "endTime": list_time(end)}
        while True:
            response = self._send("GET", url, params, what)
            body = _json(response, what, self.tenant_id)
            if not isinstance(body, list):
                raise _invalid(self.tenant_id, what, "a list")
            yield [self._blob(entry, content_type, what) for entry in body]
            next_page = next((response.headers[h] for h in NEXT_PAGE_HEADERS if response.headers.get(h)), None)
            if not next_page:
                return
            url, params = self._own_url(next_page, what)

    def fetch(self, blob: ContentBlob) -> list[Any]:
        """The audit records of one blob; CONTENT_GONE when it expired or never existed."""
        what = f"fetching {blob.content_type} content {blob.content_id}"
        url, params = self._own_url(blob.content_uri, what)
        response = self._send("GET", url, params, what, blob=True)
        body = _json(response, what, self.tenant_id)
        if not isinstance(body, list):
            raise _invalid(self.tenant_id, what, "a list of records")
        return body

    def server_clock_skew(self, local_now: float | None = None) -> float | None:
        """Seconds the API's clock (its last Date header) is ahead of ours; None before any answer."""
        server = self.http.stats.server_date
        if server is None:
            return None
        return server - (time.time() if local_now is None else local_now)

    def _call(self, method: str, url: str, params: dict[str, str], what: str) -> Any:
        return _json(self._send(method, url, params, what), what, self.tenant_id)

    def _send(self, method: str, url: str, params: dict[str, str], what: str, blob: bool = False) -> Any:
        query = dict(params)
        query.setdefault("PublisherIdentifier", self.publisher_id)
        try:
            return self.http.request(method, url, params=query)
        except PermanentHttpError as error:
            raise self._explain(error, what, blob) from None

    def _own_url(self, url: str, what: str) -> tuple[str, dict[str, str]]:
        """Splits a URL the API gave us, refusing other hosts: our bearer token would travel with the request."""
        if _origin(url) != self._origin:
            raise ManagementApiError(
                f"{what}: refusing to follow {redacted_url(url)}: it is not on the configured api.resource",
                "foreignUrl", ErrorKind.PERMANENT)
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), dict(parse_qsl(parts.query))

    def _blob(self, entry: Any, content_type: str, what: str) -> ContentBlob:
        if not isinstance(entry, dict) or not entry.get("contentId") or not entry.get("contentUri"):
            raise _invalid(self.tenant_id, what, "entries with contentId and contentUri")
        try:
            created = parse_timestamp(entry.get("contentCreated"))
            expiration = parse_timestamp(entry["contentExpiration"]) if entry.get("contentExpiration") else None
        except (TypeError, ValueError):
            raise _invalid(self.tenant_id, what, "readable contentCreated times") from None
        return ContentBlob(str(entry["contentId"]), str(entry["contentUri"]),
                           str(entry.get("contentType") or content_type), created, expiration)

    def _explain(self, error: PermanentHttpError, what: str, blob: bool) -> ManagementApiError:
        kind, tenant_wide = classify(error.status, error.code, blob)
        code = error.code or (f"http_{error.status}" if error.status else "network")
        tenant, app = self.tenant_id, self.application_id
        if code == "AF10001":
            text = (f"app {app} may not read activity data of tenant {tenant}: add the Office 365 Management "
                    "APIs application permission ActivityFeed.Read (and ActivityFeed.ReadDlp for DLP.All) "
                    "and grant admin consent")
        elif code in ("AF20010", "AF20011", "AF20012", "AF20013"):
            text = (f"tenant {tenant} is not usable with the Management Activity API ({error.message}): check "
                    "tenant_id, and that audit log search is enabled in the tenant")
        elif code == "tls":
            text = f"{what}: {error.message} (check ssl.certificate_authorities)"
        elif kind is ErrorKind.PERMANENT and not error.code and error.status in (400, 403):
            text = f"{what} in tenant {tenant} was refused (HTTP {error.status}): {error.message}"
        else:
            text = f"{what} in tenant {tenant}: {error.message or 'HTTP ' + str(error.status)}"
        return ManagementApiError(f"{text} ({code})", code, kind, error.status, tenant_wide)


def _json(response: Any, what: str, tenant_id: str) -> Any:
    """The answer's JSON, decoded by orjson: a blob of 1,500 records is ~2 MB, and the standard decoder
    takes ~1.7x as long over it. A body orjson refuses (not UTF-8, NaN, huge integers) gets requests'
    more lenient decoding."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pass
    try:
        return response.json()
    except ValueError:
        raise _invalid(tenant_id, what, "JSON") from None


def _invalid(tenant_id: str, what: str, expected: str) -> ManagementApiError:
    return ManagementApiError(f"{what} in tenant {tenant_id}: the answer is not {expected}",
                              "invalidResponse", ErrorKind.TRANSIENT)


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or 443
    except ValueError:
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower(), port

