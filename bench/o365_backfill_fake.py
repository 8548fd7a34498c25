"""An Office 365 Management Activity API backfill as large as a benchmark needs, served from its own process.

tests/fakes/management_api.py keeps every blob as a list of dicts and encodes
it with the standard json module on each fetch: right for tests, too slow and
too big for half a million records. Here a tenant's backlog is a fixed plan of
blobs (content type, creation time, first record, record count) spread over
the last six days, and blob `b`'s body is rendered from pre-encoded JSON
templates of the tests/fixtures/o365 shapes with per-record ids, users,
addresses and times, so nothing but the plan is stored. The blob a poller will
ask for next is rendered ahead on a helper thread while the current one is on
the wire, as the real service's latency would not depend on this process.

Tokens come from the real test identity platform (tests/fakes/identity_platform.py),
so MSAL in the forwarder negotiates them exactly as in the integration tests.
Every content type is subscribed; listings page every `--page-size` blobs with
a `NextPageUri` header and answer the same window checks as the real API.

Run as a script: it prints one JSON line (url, ca, records, blobs) and serves
until its stdin is closed. `GET /bench/stats` (no token needed) returns what it
has served: requests, blobs, records, and the times of the first and last API
request; `POST /bench/reset` sets them back to zero.
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import email.utils
import json
import os
import re
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import trustme

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.https_server import FakeHttpsServer, Reply, Request  # noqa: E402
from tests.fakes.identity_platform import FakeIdentityPlatform  # noqa: E402

TENANT = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
CLIENT = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
SECRET_VARIABLE = "BENCH_O365_CLIENT_SECRET"
FEED = r"/api/v1\.0/([^/]+)/activity/feed"
USERS = 20_000
RETENTION = 7 * 86400.0
BACKLOG_SECONDS = 6 * 86400.0
# Fixture shapes per content type, with how often each appears among consecutive records of that type.
CONTENT_SHAPES: dict[str, dict[str, int]] = {
    "Audit.AzureActiveDirectory": {"aad_sts_logon_success": 4, "aad_sts_logon_failed": 1},
    "Audit.Exchange": {"exchange_item_send": 2, "exchange_mail_items_accessed": 2, "exchange_admin_new_inbox_rule": 1},
    "Audit.SharePoint": {"sharepoint_file_downloaded": 1},
}
# Share of the backlog each content type holds: sign-ins dominate a real tenant's audit log.
CONTENT_SHARE = {"Audit.AzureActiveDirectory": 0.45, "Audit.Exchange": 0.35, "Audit.SharePoint": 0.20}
MIX = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def mixed(value: int) -> int:
    """A well-spread 64-bit number from an index (splitmix64's finaliser), so neighbours share nothing."""
    value = (value * MIX) & MASK
    value ^= value >> 31
    value = (value * 0xBF58476D1CE4E5B9) & MASK
    return value ^ (value >> 29)


def uuid_text(number: int) -> str:
    text = f"{number & ((1 << 128) - 1):032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-a{text[17:20]}-{text[20:]}"


def api_time(epoch: float) -> str:
    """contentCreated/contentExpiration as the API writes them: UTC, milliseconds, Z."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


class RecordTemplate:
    """One fixture encoded once, with `@@name@@` holes where each record's own values go."""

    HOLES = {"Id": "id", "CreationTime": "time", "UserId": "upn", "MailboxOwnerUPN": "upn", "ActorIpAddress": "ip",
             "ClientIPAddress": "ip", "ClientIP": "client"}

    def __init__(self, record: dict[str, Any]) -> None:
        # A shape whose ClientIP carries a port keeps one, as Exchange writes it.
        self.client_port = ":" in str(record.get("ClientIP", "")).replace("::", "").strip("[]")
        for key, hole in self.HOLES.items():
            if record.get(key) is not None:
                record[key] = f"@@{hole}@@"
        parts = orjson.dumps(record).split(b"@@")
        self.literals = parts[0::2]
        self.holes = [part.decode() for part in parts[1::2]]

    def render(self, values: dict[str, bytes]) -> bytes:
        out = [self.literals[0]]
        for hole, literal in zip(self.holes, self.literals[1:], strict=True):
            out.append(values[hole])
            out.append(literal)
        return b"".join(out)


@dataclass(frozen=True)
class PlannedBlob:
    content_type: str
    content_id: str
    created: float
    first: int
    count: int


class AuditBacklog:
    """`records` audit records in blobs of `blob_records`, spread evenly over the last six days per content type."""

    def __init__(self, records: int, blob_records: int, now: float, content_types: list[str] | None = None) -> None:
        fixtures = ROOT / "tests" / "fixtures" / "o365"
        self.templates: dict[str, list[RecordTemplate]] = {}
        for content_type, shapes in CONTENT_SHAPES.items():
            cycle: list[RecordTemplate] = []
            for name, weight in shapes.items():
                template = RecordTemplate(json.loads((fixtures / f"{name}.json").read_text()))
                cycle.extend([template] * weight)
            self.templates[content_type] = cycle
        self.users = [f"user{n:05d}@contoso.onmicrosoft.com".encode() for n in range(USERS)]
        self.blobs: dict[str, list[PlannedBlob]] = {}
        self.by_id: dict[str, PlannedBlob] = {}
        first = 0
        served = {name: share for name, share in CONTENT_SHARE.items() if name in (content_types or CONTENT_SHARE)}
        for number, (content_type, share) in enumerate(served.items()):
            total = records - first if number == len(served) - 1 else round(records * share / sum(served.values()))
            count = -(-total // blob_records)
            step = BACKLOG_SECONDS / max(count, 1)
            planned = []
            for index in range(count):
                created = now - BACKLOG_SECONDS + index * step + 0.123
                size = min(blob_records, total - index * blob_records)
                blob_id = f"{int(created * 1000)}${content_type}${index:06d}"
                planned.append(PlannedBlob(content_type, blob_id, created, first + index * blob_records, size))
            first += total
            self.blobs[content_type] = planned
            self.by_id.update((blob.content_id, blob) for blob in planned)
        self.records = first

    def in_window(self, content_type: str, start: float, end: float) -> list[PlannedBlob]:
        planned = self.blobs.get(content_type, [])
        times = [blob.created for blob in planned]
        return planned[bisect.bisect_left(times, start):bisect.bisect_left(times, end)]

    def body(self, blob: PlannedBlob) -> bytes:
        """The blob as the API serves it: a JSON array of its records, oldest first."""
        cycle = self.templates[blob.content_type]
        parts = []
        for offset in range(blob.count):
            index = blob.first + offset
            spread = mixed(index)
            moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(blob.created - (blob.count - offset) * 0.2))
            ip = f"{spread >> 8 & 127 | 64}.{spread >> 16 & 255}.{spread >> 24 & 255}.{(spread >> 32) % 254 + 1}"
            template = cycle[index % len(cycle)]
            client = f"{ip}:{(spread >> 40) % 60000 + 1024}" if template.client_port else ip
            parts.append(template.render({
                "id": uuid_text(spread << 64 | mixed(index ^ MASK)).encode(), "time": moment.encode(),
                "upn": self.users[spread % USERS], "ip": ip.encode(), "client": client.encode()}))
        return b"[" + b",".join(parts) + b"]"


class BackfillManagementApi:
    """Subscriptions, content listing and blobs of one tenant's AuditBacklog, plus a counter endpoint."""

    def __init__(self, server: FakeHttpsServer, identity: FakeIdentityPlatform, backlog: AuditBacklog,
                 page_size: int) -> None:
        self.server = server
        self.identity = identity
        self.backlog = backlog
        self.page_size = page_size
        self._lock = threading.Lock()
        self._ahead: dict[str, Future[bytes]] = {}
        self._renderer = ThreadPoolExecutor(1, thread_name_prefix="render-ahead")
        self._reset(None, None)
        server.route("GET", FEED + r"/subscriptions/list", self._subscriptions)
        server.route("POST", FEED + r"/subscriptions/start", self._start)
        server.route("GET", FEED + r"/subscriptions/content", self._content)
        server.route("GET", FEED + r"/audit/([^/]+)", self._blob)
        server.route("GET", r"/bench/stats", self._stats)
        server.route("POST", r"/bench/reset", self._reset)

    def _stats(self, request: Request, match: re.Match[str]) -> Reply:
        with self._lock:
            return Reply.json({"requests": self.requests, "blobs": self.blobs_served, "records": self.records_served,
                               "first_request": self.first_request, "last_request": self.last_request})

    def _reset(self, request: Request | None, match: re.Match[str] | None) -> Reply:
        """Counters start again from zero, so a second client is timed from its own first request."""
        with self._lock:
            self.requests = self.blobs_served = self.records_served = 0
            self.first_request: float | None = None
            self.last_request: float | None = None
        return Reply(204)

    def _counted(self, reply: Reply, received: float, blob: PlannedBlob | None = None) -> Reply:
        with self._lock:
            self.requests += 1
            if blob is not None:
                self.blobs_served += 1
                self.records_served += blob.count
            if self.first_request is None:
                self.first_request = received
            self.last_request = time.time()
        reply.headers.setdefault("Date", email.utils.formatdate(usegmt=True))
        return reply

    def _denied(self, request: Request, tenant_id: str) -> Reply | None:
        denied = self.identity.authorize(request, audience=self.server.url)
        if denied is None and tenant_id.lower() != TENANT:
            return self._error(400, "AF20011", f"Specified tenant ID ({tenant_id}) does not exist in the system.")
        return denied

    def _subscriptions(self, request: Request, match: re.Match[str]) -> Reply:
        received = time.time()
        denied = self._denied(request, match.group(1))
        body = [{"contentType": name, "status": "enabled", "webhook": None} for name in CONTENT_SHAPES]
        return self._counted(denied or Reply.json(body), received)

    def _start(self, request: Request, match: re.Match[str]) -> Reply:
        received = time.time()
        return self._counted(self._denied(request, match.group(1)) or self._error(
            400, "AF20024", "The subscription is already enabled. No property change."), received)

    def _content(self, request: Request, match: re.Match[str]) -> Reply:
        received = time.time()
        denied = self._denied(request, match.group(1))
        if denied is not None:
            return self._counted(denied, received)
        content_type = request.param("contentType") or ""
        try:
            start, end = (_parse_time(request.param("startTime")), _parse_time(request.param("endTime")))
        except (TypeError, ValueError):
            return self._counted(self._error(400, "AF20002", "startTime or endTime is not valid."), received)
        if end <= start or end - start > 86400.0 or start < received - RETENTION:
            return self._counted(self._error(400, "AF20055", "Start time and end time must be at most 24 hours "
                                             "apart, with the start time no more than 7 days in the past."), received)
        selected = self.backlog.in_window(content_type, start, end)
        token = request.param("nextPage") or "page0"
        offset = int(token[4:]) if token.startswith("page") and token[4:].isdigit() else 0
        page = selected[offset:offset + self.page_size]
        headers = {}
        if offset + self.page_size < len(selected):
            query = {"contentType": content_type, "startTime": request.param("startTime"),
                     "endTime": request.param("endTime"), "nextPage": f"page{offset + self.page_size}"}
            headers["NextPageUri"] = f"{self.server.url}{request.path}?{urlencode(query)}"
        feed = f"{self.server.url}/api/v1.0/{TENANT}/activity/feed/audit"
        body = [{"contentType": blob.content_type, "contentId": blob.content_id,
                 "contentUri": f"{feed}/{blob.content_id}", "contentCreated": api_time(blob.created),
                 "contentExpiration": api_time(blob.created + RETENTION)} for blob in page]
        if page:
            self._render_ahead(page[0])
        return self._counted(Reply(200, orjson.dumps(body), {"Content-Type": "application/json; charset=utf-8",
                                                               **headers}), received)

    def _blob(self, request: Request, match: re.Match[str]) -> Reply:
        received = time.time()
        denied = self._denied(request, match.group(1))
        if denied is not None:
            return self._counted(denied, received)
        blob = self.backlog.by_id.get(match.group(2))
        if blob is None:
            return self._counted(self._error(404, "AF20050", f"The specified content ({match.group(2)}) doesn't "
                                                            "exist."), received)
        with self._lock:
            ahead = self._ahead.pop(blob.content_id, None)
        body = ahead.result() if ahead is not None else self.backlog.body(blob)
        following = self._following(blob)
        if following is not None:
            self._render_ahead(following)
        return self._counted(Reply(200, body, {"Content-Type": "application/json; charset=utf-8"}), received, blob)

    def _following(self, blob: PlannedBlob) -> PlannedBlob | None:
        planned = self.backlog.blobs[blob.content_type]
        position = bisect.bisect_left([b.created for b in planned], blob.created) + 1
        return planned[position] if position < len(planned) else None

    def _render_ahead(self, blob: PlannedBlob) -> None:
        """Renders the blob a poller will fetch next while it is busy with this one."""
        with self._lock:
            if blob.content_id in self._ahead:
                return
            if len(self._ahead) >= 8:
                self._ahead.clear()
            self._ahead[blob.content_id] = self._renderer.submit(self.backlog.body, blob)

    @staticmethod
    def _error(status: int, code: str, message: str) -> Reply:
        return Reply.json({"error": {"code": code, "message": message}}, status)


def _parse_time(text: str | None) -> float:
    if text is None:
        raise ValueError("missing")
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--blob-records", type=int, default=1500)
    parser.add_argument("--page-size", type=int, default=20, help="blobs per content listing page")
    parser.add_argument("--content-type", action="append", choices=list(CONTENT_SHARE),
                        help="serve records of this content type only (repeatable; default: all three)")
    args = parser.parse_args()
    secret = os.environ[SECRET_VARIABLE]
    backlog = AuditBacklog(args.records, args.blob_records, time.time(), args.content_type)
    with FakeHttpsServer(trustme.CA()) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=secret)
        BackfillManagementApi(server, identity, backlog, args.page_size)
        print(json.dumps({"url": server.url, "ca": server.ca_path, "records": backlog.records,
                          "blobs": len(backlog.by_id)}), flush=True)
        sys.stdin.read()
        if server.handler_errors:
            print(json.dumps({"handler_errors": server.handler_errors[:5]}), flush=True)


if __name__ == "__main__":
    main()
