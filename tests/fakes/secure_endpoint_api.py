"""Cisco Secure Endpoint's `GET /v1/events` as a polling client sees it, for integration tests.

Served on a FakeHttpsServer. It checks HTTP Basic auth (client id and API key;
anything else gets Cisco's 401 body), answers events newest first from an
inclusive `start_date`, filtered by `event_type[]`, `limit` at a time (at most
500) from `offset`, with `metadata.links.next` while more remain, gzipped when
the client accepts it. Every answer carries the hourly quota in both header
spellings the reference names (`X-RateLimit-*` as observed, `X-Rate-Limit-*`
as documented), the reset in seconds until the quota window ends; a request
past the quota, or one of the scripted throttles, gets 429.
"""

from __future__ import annotations

import base64
import gzip
import math
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from tests.fakes.https_server import FakeHttpsServer, Reply, Request

MAX_LIMIT = 500
ALLOWED_PARAMS = {"start_date", "limit", "offset", "event_type[]"}
UNAUTHORIZED = {"version": "v1.2.0", "data": {}, "errors": [
    {"error_code": 401, "description": "Unauthorized", "details": ["Unknown API key or Client ID"]}]}


def iso(epoch: float) -> str:
    """A time as Cisco writes `date` and reads `start_date`: whole seconds, `+00:00`."""
    return datetime.fromtimestamp(int(epoch), UTC).isoformat()


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class FakeSecureEndpointApi:
    def __init__(self, server: FakeHttpsServer, client_id: str, api_key: str, quota: int = 3000,
                 quota_window: float = 3600.0, header_style: str = "observed", page_latency: float = 0.0) -> None:
        self.server = server
        self.client_id = client_id
        self.api_key = api_key
        self.quota = quota
        self.quota_window = quota_window
        self.header_style = header_style  # "observed" (X-RateLimit-*) or "documented" (X-Rate-Limit-*)
        self.page_latency = page_latency  # seconds a page takes to answer, as a loaded API would
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._window_start = time.monotonic()
        self._used = 0
        self._throttles: list[float] = []
        self.answers: list[tuple[float, int, Request]] = []  # (monotonic time, status, request)
        self.over_quota = 0
        self.gzipped = 0
        server.route("GET", "/v1/events", self._answer)

    def add(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._events.append(event)
        return event

    def throttle(self, count: int, reset_seconds: float) -> None:
        """The next `count` requests get 429 with a reset `reset_seconds` from then."""
        with self._lock:
            self._throttles.extend([reset_seconds] * count)

    def event_requests(self) -> list[Request]:
        return self.server.requests_to("/v1/events")

    def statuses(self) -> list[int]:
        with self._lock:
            return [status for _, status, _ in self.answers]

    def _answer(self, request: Request, _: re.Match[str]) -> Reply:
        if self.page_latency:
            time.sleep(self.page_latency)
        with self._lock:
            reply = self._reply(request)
            self.answers.append((time.monotonic(), reply.status, request))
        if reply.status == 200 and "gzip" in (request.header("accept-encoding") or ""):
            reply.body = gzip.compress(reply.body)
            reply.headers["Content-Encoding"] = "gzip"
            self.gzipped += 1
        return reply

    def _reply(self, request: Request) -> Reply:
        expected = base64.b64encode(f"{self.client_id}:{self.api_key}".encode()).decode()
        if request.header("authorization") != f"Basic {expected}":
            return Reply.json(UNAUTHORIZED, 401)
        now = time.monotonic()
        if now - self._window_start >= self.quota_window:
            self._window_start, self._used = now, 0
        reset = self._window_start + self.quota_window - now
        if self._throttles:
            reset = self._throttles.pop(0)
            return Reply.json(self._error(429, "Too Many Requests"), 429, self._quota_headers(0, reset))
        if self._used >= self.quota:
            self.over_quota += 1
            return Reply.json(self._error(429, "Too Many Requests"), 429, self._quota_headers(0, reset))
        self._used += 1
        headers = self._quota_headers(self.quota - self._used, reset)
        unknown = set(request.query) - ALLOWED_PARAMS
        if unknown:
            return Reply.json(self._error(400, f"unexpected parameter(s) {sorted(unknown)}"), 400, headers)
        return Reply.json(self._page(request), 200, headers)

    def _page(self, request: Request) -> dict[str, Any]:
        start = request.param("start_date")
        limit = min(int(request.param("limit") or MAX_LIMIT), MAX_LIMIT)
        offset = int(request.param("offset") or 0)
        types = {int(value) for value in request.query.get("event_type[]", [])}
        matching = [event for event in self._events
                    if (start is None or _epoch(event["date"]) >= _epoch(start))
                    and (not types or event["event_type_id"] in types)]
        matching.sort(key=lambda event: (_epoch(event["date"]), str(event.get("id", ""))), reverse=True)
        page = matching[offset:offset + limit]
        links = {"self": self._link(request, offset, limit)}
        if offset + limit < len(matching):
            links["next"] = self._link(request, offset + limit, limit)
        return {"version": "v1.2.0",
                "metadata": {"links": links, "results": {"total": len(matching), "current_item_count": len(page),
                                                         "index": offset, "items_per_page": limit}},
                "data": page}

    def _link(self, request: Request, offset: int, limit: int) -> str:
        params = [(name, value) for name, values in request.query.items() if name not in ("offset", "limit")
                  for value in values]
        params += [("limit", str(limit)), ("offset", str(offset))]
        return f"{self.server.url}/v1/events?{urlencode(params)}"

    def _quota_headers(self, remaining: int, reset: float) -> dict[str, str]:
        prefix = "X-RateLimit-" if self.header_style == "observed" else "X-Rate-Limit-"
        headers = {f"{prefix}Limit": str(self.quota), f"{prefix}Remaining": str(max(0, remaining)),
                   f"{prefix}Reset": str(max(0, math.ceil(reset)))}
        if self.header_style == "observed":
            headers["X-RateLimit-ResetDate"] = iso(time.time() + reset)
        return headers

    @staticmethod
    def _error(status: int, description: str) -> dict[str, Any]:
        return {"version": "v1.2.0", "data": {}, "errors": [
            {"error_code": status, "description": description, "details": []}]}


def make_event(number: int, epoch: float, event_type_id: int = 1090519054, with_id: bool = True) -> dict[str, Any]:
    """A Threat Detected event like the reference's examples; `number` makes it unique."""
    event: dict[str, Any] = {
        "timestamp": int(epoch), "timestamp_nanoseconds": number % 1000 * 1000, "date": iso(epoch),
        "event_type": "Threat Detected", "event_type_id": event_type_id, "detection": "W32.Test.Detection",
        "detection_id": str(8000000000000000000 + number), "connector_guid": f"guid-{number % 7}",
        "severity": "Medium",
        "computer": {"connector_guid": f"guid-{number % 7}", "hostname": f"host{number % 7}.example.com",
                     "external_ip": "81.2.69.144", "active": True, "user": "jdoe@EXAMPLE",
                     "network_addresses": [{"ip": "10.0.0.7", "mac": "00:11:22:33:44:55"}]},
        "file": {"disposition": "Malicious", "file_name": f"bad{number}.exe", "file_path": f"C:\\tmp\\bad{number}.exe",
                 "identity": {"sha256": f"{number:064x}"}},
    }
    if with_id:
        event["id"] = 6761826132415096000 + number
    return event
