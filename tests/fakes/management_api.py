"""The Office 365 Management Activity API as a polling client sees it, for integration tests.

Served on a FakeHttpsServer next to FakeIdentityPlatform, whose bearer tokens it
checks (audience = this server's URL, the `api.resource`). It is strict where
the real service is: listing windows longer than 24 h, starting more than 7 days
ago (on the fake's own clock, which can run ahead of or behind the client's and
is told in every `Date` header) or inverted are refused with AF20055; listing a
content type without an enabled subscription answers AF20022/AF20023; blobs
older than 7 days answer AF20051. Listings are paged with a `NextPageUri`
header; every request's `PublisherIdentifier` is recorded.
"""

from __future__ import annotations

import datetime
import email.utils
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.fakes.https_server import FakeHttpsServer, Reply, Request
from tests.fakes.identity_platform import FakeIdentityPlatform

CONTENT_TYPES = ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All")
FEED = r"/api/v1\.0/([^/]+)/activity/feed"
RETENTION = 7 * 86400.0
WINDOW_MESSAGE = ("Start time and end time must both be specified (or both omitted) and must be less than or equal "
                  "to 24 hours apart, with the start time no more than 7 days in the past.")
TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
PATHS = {
    "list": FEED + r"/subscriptions/content",
    "blob": FEED + r"/audit/[^/]+",
    "start": FEED + r"/subscriptions/start",
    "subscriptions": FEED + r"/subscriptions/list",
}


@dataclass
class FakeBlob:
    tenant_id: str
    content_type: str
    content_id: str
    created: float
    records: list[Any]
    expired: bool = False
    missing: bool = False
    fetches: int = 0


@dataclass
class FakeTenant:
    tenant_id: str
    subscriptions: dict[str, str] = field(default_factory=dict)
    blobs: list[FakeBlob] = field(default_factory=list)
    permission: bool = True
    starts: int = 0


def audit_record(created: float, record_id: str | None = None, operation: str = "UserLoggedIn",
                 workload: str = "AzureActiveDirectory", record_type: int = 15, **extra: Any) -> dict[str, Any]:
    """An audit record in the common schema; CreationTime without a zone suffix, as Microsoft writes it."""
    moment = datetime.datetime.fromtimestamp(int(created), datetime.UTC)
    record = {
        "CreationTime": moment.strftime("%Y-%m-%dT%H:%M:%S"),
        "Id": record_id or str(uuid.uuid4()),
        "Operation": operation,
        "OrganizationId": "b2e0a3c4-1d5f-4e6a-9b7c-8d9e0f1a2b3c",
        "RecordType": record_type,
        "ResultStatus": "Success",
        "UserKey": "10032001A1B2C3D4",
        "UserType": 0,
        "Workload": workload,
        "ClientIP": "203.0.113.7",
        "ObjectId": "alice@contoso.example",
        "UserId": "alice@contoso.example",
    }
    record.update(extra)
    return record


def api_time(epoch: float) -> str:
    """contentCreated/contentExpiration as the API writes them: UTC, milliseconds, Z."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


class FakeManagementApi:
    """Add tenants and blobs, then point the input's `api.resource` at `resource`."""

    def __init__(self, server: FakeHttpsServer, identity: FakeIdentityPlatform, page_size: int = 100,
                 clock: Callable[[], float] = time.time) -> None:
        self.server = server
        self.identity = identity
        self.page_size = page_size
        self.clock = clock
        # Seconds this service's clock runs ahead of the test host's (negative: behind).
        self.clock_offset = 0.0
        self.tenants: dict[str, FakeTenant] = {}
        self.publishers: list[str | None] = []
        self.list_windows: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        server.route("POST", PATHS["start"], self._start)
        server.route("GET", PATHS["subscriptions"], self._subscriptions)
        server.route("GET", PATHS["list"], self._content)
        server.route("GET", FEED + r"/audit/([^/]+)", self._blob)

    @property
    def resource(self) -> str:
        return self.server.url

    def now(self) -> float:
        return self.clock() + self.clock_offset

    def add_tenant(self, tenant_id: str, subscribed: tuple[str, ...] = ()) -> FakeTenant:
        tenant = self.tenants.setdefault(tenant_id.lower(), FakeTenant(tenant_id.lower()))
        for content_type in subscribed:
            tenant.subscriptions[content_type] = "enabled"
        return tenant

    def add_blob(self, tenant_id: str, content_type: str, records: list[Any], age: float | None = None,
                 created: float | None = None, content_id: str | None = None, expired: bool = False,
                 missing: bool = False) -> FakeBlob:
        """A blob created `age` seconds ago on the fake's clock (or at `created`)."""
        when = created if created is not None else self.now() - (age or 0.0)
        blob_id = content_id or f"{int(when)}{next(self._ids):06d}${content_type}$blob"
        blob = FakeBlob(tenant_id.lower(), content_type, blob_id, when, list(records), expired, missing)
        with self._lock:
            self.tenants[tenant_id.lower()].blobs.append(blob)
        return blob

    def fail(self, kind: str, count: int, status: int, code: str = "", message: str = "",
             headers: dict[str, str] | None = None, tenant_id: str | None = None) -> None:
        """The next `count` requests of `kind` (list, blob, start, subscriptions) answer this error."""
        pattern = PATHS[kind] if tenant_id is None else PATHS[kind].replace("([^/]+)", tenant_id, 1)
        body = {"error": {"code": code, "message": message or f"scripted {code or status}"}}
        self.server.fail_next(pattern, count, status, {"Date": self._date(), **(headers or {})}, body)

    def throttle(self, kind: str, count: int, af429: bool = False, retry_after: str | None = "0") -> None:
        """429s, or the API's own throttling answer: 403 with AF429."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if af429:
            self.fail(kind, count, 403, "AF429", "Too many requests. Method=GetBlob, PublisherId=00000000-0000-0000-"
                      "0000-000000000000", headers)
        else:
            self.fail(kind, count, 429, "AF429", "Too many requests.", headers)

    def requests(self, kind: str) -> list[Request]:
        return self.server.requests_to(PATHS[kind])

    # --- handlers -------------------------------------------------------------------------------

    def _authorized(self, request: Request, tenant_id: str) -> tuple[FakeTenant | None, Reply | None]:
        with self._lock:
            self.publishers.append(request.param("PublisherIdentifier"))
        denied = self.identity.authorize(request, audience=self.resource)
        if denied is not None:
            return None, denied
        token = (request.header("Authorization") or "")[7:]
        issued = self.identity.issued.get(token)
        if issued is None or issued.tenant_id != tenant_id.lower():
            return None, self._error(401, "AF20010", f"The tenant ID in the URL ({tenant_id}) does not match the "
                                                     "tenant ID in the access token.")
        tenant = self.tenants.get(tenant_id.lower())
        if tenant is None:
            return None, self._error(400, "AF20011", f"Specified tenant ID ({tenant_id}) does not exist in the "
                                                     "system or has been deleted.")
        if not tenant.permission:
            return None, self._error(401, "AF10001", "The permission set () sent in the request does not include "
                                                     "the expected permission.")
        return tenant, None

    def _content_type(self, request: Request) -> tuple[str, Reply | None]:
        content_type = request.param("contentType") or ""
        if content_type not in CONTENT_TYPES:
            return content_type, self._error(400, "AF20020", f"The specified content type is not valid: "
                                                             f"{content_type!r}.")
        return content_type, None

    def _start(self, request: Request, match: Any) -> Reply:
        tenant, problem = self._authorized(request, match.group(1))
        content_type, bad = self._content_type(request)
        if tenant is None or bad:
            return problem or bad  # type: ignore[return-value]
        if tenant.subscriptions.get(content_type) == "enabled":
            return self._error(400, "AF20024", "The subscription is already enabled. No property change.")
        tenant.subscriptions[content_type] = "enabled"
        tenant.starts += 1
        return self._json({"contentType": content_type, "status": "enabled", "webhook": None})

    def _subscriptions(self, request: Request, match: Any) -> Reply:
        tenant, problem = self._authorized(request, match.group(1))
        if tenant is None:
            return problem  # type: ignore[return-value]
        return self._json([{"contentType": name, "status": status, "webhook": None}
                           for name, status in tenant.subscriptions.items()])

    def _content(self, request: Request, match: Any) -> Reply:
        tenant, problem = self._authorized(request, match.group(1))
        content_type, bad = self._content_type(request)
        if tenant is None or bad:
            return problem or bad  # type: ignore[return-value]
        status = tenant.subscriptions.get(content_type)
        if status is None:
            return self._error(400, "AF20022", f"No subscription found for the specified content type: "
                                               f"{content_type}.")
        if status != "enabled":
            return self._error(400, "AF20023", "The subscription was disabled by the tenant admin or service admin.")
        window = self._window(request)
        if isinstance(window, Reply):
            return window
        start, end = window
        with self._lock:
            self.list_windows.append((start, end))
            selected = sorted((b for b in tenant.blobs if b.content_type == content_type and start <= b.created < end),
                              key=lambda b: (b.created, b.content_id))
        offset = 0
        token = request.param("nextPage")
        if token is not None:
            if not token.startswith("page") or not token[4:].isdigit():
                return self._error(400, "AF20031", "Invalid nextPage Input.")
            offset = int(token[4:])
        page = selected[offset:offset + self.page_size]
        headers = {}
        if offset + self.page_size < len(selected):
            query = {key: values[0] for key, values in request.query.items() if key not in ("nextPage",
                                                                                            "PublisherIdentifier")}
            query["nextPage"] = f"page{offset + self.page_size}"
            headers["NextPageUri"] = f"{self.resource}{request.path}?{urlencode(query)}"
        return self._json([self._listing(blob) for blob in page], headers)

    def _window(self, request: Request) -> tuple[float, float] | Reply:
        start_text, end_text = request.param("startTime"), request.param("endTime")
        now = self.now()
        if start_text is None and end_text is None:
            return now - 86400.0, now
        if start_text is None or end_text is None:
            return self._error(400, "AF20055", WINDOW_MESSAGE)
        try:
            start, end = _parse_time(start_text), _parse_time(end_text)
        except ValueError:
            return self._error(400, "AF20002", "The value for parameter startTime or endTime is not valid.")
        if end <= start or end - start > 86400.0 or start < now - RETENTION:
            return self._error(400, "AF20055", WINDOW_MESSAGE)
        return start, end

    def _listing(self, blob: FakeBlob) -> dict[str, Any]:
        return {
            "contentType": blob.content_type,
            "contentId": blob.content_id,
            "contentUri": f"{self.resource}/api/v1.0/{blob.tenant_id}/activity/feed/audit/{blob.content_id}",
            "contentCreated": api_time(blob.created),
            "contentExpiration": api_time(blob.created + RETENTION),
        }

    def _blob(self, request: Request, match: Any) -> Reply:
        tenant, problem = self._authorized(request, match.group(1))
        if tenant is None:
            return problem  # type: ignore[return-value]
        blob = next((b for b in tenant.blobs if b.content_id == match.group(2)), None)
        if blob is None or blob.missing:
            return self._error(404, "AF20050", f"The specified content ({match.group(2)}) doesn't exist.")
        if blob.expired or blob.created < self.now() - RETENTION:
            return self._error(400, "AF20051", f"Content requested with the key {blob.content_id} has already "
                                               "expired. Content older than 7 days cannot be retrieved.")
        with self._lock:
            blob.fetches += 1
        return self._json(blob.records)

    def _date(self) -> str:
        return email.utils.formatdate(self.now(), usegmt=True)

    def _json(self, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        return Reply.json(payload, headers={"Date": self._date(), **(headers or {})})

    def _error(self, status: int, code: str, message: str) -> Reply:
        return Reply.json({"error": {"code": code, "message": message}}, status, {"Date": self._date()})


def _parse_time(text: str) -> float:
    for layout in TIME_FORMATS:
        try:
            return datetime.datetime.strptime(text, layout).replace(tzinfo=datetime.UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(text)
