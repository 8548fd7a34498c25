"""Duo's Admin API log endpoints as a polling client sees them, for integration tests.

Served on a FakeHttpsServer. It checks every request's signature the way Duo
does: it rebuilds the canonical request from what it received (Date header,
method, host, path, the parameters re-encoded and sorted, for signature
version 5 also the body and X-Duo-* header hashes), computes the HMAC with the
integration's secret key and compares it with the one in `Authorization:
Basic ikey:hexsig`. A wrong key, parameters signed in another order or
encoding, a Date that is not the signed one or is more than 5 minutes off the
fake's clock: 401 with Duo's JSON error 40103. It withholds the last two
minutes of every log, pages as Duo does (v2 `next_offset`, v1 by `mintime`
seconds, Trust Monitor by surfaced time with an opaque offset) and answers
scripted 429s and a missing "Grant read log" permission (40301).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import email.utils
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from tests.fakes.https_server import FakeHttpsServer, Reply, Request

WITHHELD_MS = 120_000
MAX_DATE_SKEW = 300.0
MAX_LIMIT = 1000
V1_PAGE = 1000
MAX_AGE_MS = 180 * 86400 * 1000


def _iso_ms(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass(frozen=True)
class FakeLog:
    """One log endpoint: its path, how a record's time (ms) and id are read, and how it pages."""

    path: str
    time_ms: Callable[[dict[str, Any]], int]
    record_id: Callable[[dict[str, Any]], str]
    paging: str  # "v2_list" (auth: [ts, txid]), "v2_string" ("ts,id"), "v1" (mintime s), "trust_monitor"
    records_key: str


LOGS: dict[str, FakeLog] = {
    "auth": FakeLog("/admin/v2/logs/authentication", lambda r: _iso_ms(r["isotimestamp"]), lambda r: r["txid"],
                    "v2_list", "authlogs"),
    "telephony": FakeLog("/admin/v2/logs/telephony", lambda r: _iso_ms(r["ts"]), lambda r: r["telephony_id"],
                         "v2_string", "items"),
    "activity": FakeLog("/admin/v2/logs/activity", lambda r: _iso_ms(r["ts"]), lambda r: r["activity_id"],
                        "v2_string", "items"),
    "admin": FakeLog("/admin/v1/logs/administrator", lambda r: int(r["timestamp"]) * 1000,
                     lambda r: f"{r['timestamp']}|{r.get('action')}|{r.get('object')}", "v1", ""),
    "offline_enrollment": FakeLog("/admin/v1/logs/offline_enrollment", lambda r: int(r["timestamp"]) * 1000,
                                  lambda r: f"{r['timestamp']}|{r.get('action')}|{r.get('object')}", "v1", ""),
    "trust_monitor": FakeLog("/admin/v1/trust_monitor/events", lambda r: int(r["surfaced_timestamp"]),
                             lambda r: r["sbtid"], "trust_monitor", "events"),
}
ALLOWED_PARAMS = {
    "v2_list": {"mintime", "maxtime", "limit", "sort", "next_offset"},
    "v2_string": {"mintime", "maxtime", "limit", "sort", "next_offset"},
    "v1": {"mintime"},
    "trust_monitor": {"mintime", "maxtime", "limit", "offset", "type"},
}


class BadRequest(Exception):
    """A request Duo would refuse with 400 40002 (invalid request parameters)."""


def canonical_params(query: dict[str, list[str]]) -> str:
    """Duo's canonical parameter string: keys and values RFC 3986-encoded (`~` kept), sorted, `&`-joined."""
    pairs = sorted((quote(key, safe="~"), quote(value, safe="~")) for key, values in query.items() for value in values)
    return "&".join(f"{key}={value}" for key, value in pairs)


def canonical_x_duo_headers(headers: dict[str, str]) -> str:
    """Signature version 5's hash of the X-Duo-* headers: lower-cased names sorted, name NUL value NUL …"""
    parts: list[str] = []
    for name in sorted(name for name in headers if name.lower().startswith("x-duo-")):
        parts.extend([name.lower(), headers[name]])
    return hashlib.sha512("\x00".join(parts).encode()).hexdigest()


def duo_error(status: int, code: int, message: str, detail: str | None = None) -> Reply:
    body: dict[str, Any] = {"stat": "FAIL", "code": code, "message": message}
    if detail:
        body["message_detail"] = detail
    return Reply.json(body, status)


class FakeDuoAdminApi:
    """Add records with `add(log, record)`; `clock_offset` shifts the fake's clock (and its Date header)."""

    def __init__(self, server: FakeHttpsServer, integration_key: str, secret_key: str, clock_offset: float = 0.0):
        self.server = server
        self.integration_key = integration_key
        self.secret_key = secret_key
        self.clock_offset = clock_offset
        self.records: dict[str, list[tuple[int, str, dict[str, Any]]]] = {name: [] for name in LOGS}
        self.read_log_granted = True
        self.rejected_signatures = 0
        self.answered: dict[str, int] = {name: 0 for name in LOGS}
        self._throttle: dict[str, int] = {}
        self._lock = threading.Lock()
        for name, log in LOGS.items():
            server.route("GET", re.escape(log.path), self._handler(name))

    def now(self) -> float:
        return time.time() + self.clock_offset

    def add(self, log: str, record: dict[str, Any]) -> dict[str, Any]:
        spec = LOGS[log]
        entry = (spec.time_ms(record), spec.record_id(record), record)
        with self._lock:
            bisect.insort(self.records[log], entry, key=lambda item: (item[0], item[1]))
        return record

    def throttle(self, log: str, count: int) -> None:
        """The next `count` signed requests to `log` answer 429 (Duo sends no Retry-After)."""
        with self._lock:
            self._throttle[log] = self._throttle.get(log, 0) + count

    def requests_to(self, log: str) -> list[Request]:
        return self.server.requests_to(re.escape(LOGS[log].path))

    def _handler(self, log: str) -> Callable[[Request, re.Match[str]], Reply]:
        return lambda request, _match: self._answer(log, request)

    def _answer(self, log: str, request: Request) -> Reply:
        refused = self.check_signature(request)
        if refused is not None:
            with self._lock:
                self.rejected_signatures += 1
            return self._dated(refused)
        with self._lock:
            throttled = self._throttle.get(log, 0) > 0
            if throttled:
                self._throttle[log] -= 1
        if throttled:
            return self._dated(duo_error(429, 42901, "Too Many Requests"))
        if not self.read_log_granted:
            return self._dated(duo_error(403, 40301, "Access forbidden",
                                         "This integration is not permitted to access this resource"))
        try:
            body = self._page(log, request)
        except BadRequest as error:
            return self._dated(duo_error(400, 40002, "Invalid request parameters", str(error)))
        with self._lock:
            self.answered[log] += 1
        return self._dated(Reply.json({"stat": "OK", **body}))

    def _dated(self, reply: Reply) -> Reply:
        reply.headers["Date"] = email.utils.formatdate(self.now(), usegmt=True)
        return reply

    def check_signature(self, request: Request) -> Reply | None:
        """None when the request is signed with our key over exactly what was received, else Duo's 401."""
        date = request.header("Date")
        authorization = request.header("Authorization") or ""
        if not date or not authorization.startswith("Basic "):
            return duo_error(401, 40101, "Missing request credentials")
        try:
            ikey, _, signature = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
            signed_at = email.utils.parsedate_to_datetime(date).timestamp()
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
            return duo_error(401, 40103, "Invalid signature in request credentials")
        if ikey != self.integration_key:
            return duo_error(401, 40102, "Invalid integration key in request credentials")
        if abs(signed_at - self.now()) > MAX_DATE_SKEW:
            return duo_error(401, 40103, "Invalid signature in request credentials",
                             "The request date is more than 5 minutes off the server's time")
        if not any(hmac.compare_digest(signature, candidate) for candidate in self._signatures(request, date)):
            return duo_error(401, 40103, "Invalid signature in request credentials")
        return None

    def _signatures(self, request: Request, date: str) -> list[str]:
        """The valid signatures of this request: v2 (HMAC-SHA1 or SHA-512) and v5 (SHA-512), either host form."""
        key = self.secret_key.encode()
        host_header = (request.header("Host") or "").lower()
        hosts = {host_header, host_header.rsplit(":", 1)[0]}
        x_duo = {name: value for name, value in request.headers.items() if name.startswith("x-duo-")}
        found = []
        for host in hosts:
            v2 = "\n".join([date, request.method.upper(), host, request.path, canonical_params(request.query)])
            v5 = "\n".join([v2, hashlib.sha512(request.body).hexdigest(), canonical_x_duo_headers(x_duo)])
            found.append(hmac.new(key, v2.encode(), hashlib.sha1).hexdigest())
            found.append(hmac.new(key, v2.encode(), hashlib.sha512).hexdigest())
            found.append(hmac.new(key, v5.encode(), hashlib.sha512).hexdigest())
        return found

    def _page(self, log: str, request: Request) -> dict[str, Any]:
        spec = LOGS[log]
        unknown = set(request.query) - ALLOWED_PARAMS[spec.paging]
        if unknown:
            raise BadRequest(f"unknown parameter(s) {sorted(unknown)}")
        newest = int(self.now() * 1000) - WITHHELD_MS
        with self._lock:
            records = list(self.records[log])
        if spec.paging == "v1":
            mintime = _integer(request, "mintime", 0) * 1000
            listed = [entry for entry in records if mintime <= entry[0] <= newest][:V1_PAGE]
            return {"response": [record for _, _, record in listed]}
        mintime, maxtime, limit = _v2_window(request)
        listed = [entry for entry in records if mintime <= entry[0] <= min(maxtime, newest)]
        if request.param("sort") == "ts:desc" or (spec.paging != "trust_monitor" and request.param("sort") is None):
            listed.reverse()
        start = _offset_index(listed, spec.paging, request)
        page = listed[start:start + limit]
        more = start + limit < len(listed)
        last = page[-1] if page else None
        if spec.paging == "trust_monitor":
            return {"response": {"events": [record for _, _, record in page]},
                    "metadata": {"next_offset": f"{last[0]},{last[1]}" if more and last else None}}
        if spec.paging == "v2_list":
            next_offset: Any = [str(last[0]), last[1]] if more and last else None
        else:
            next_offset = f"{last[0]},{last[1]}" if more and last else None
        metadata = {"next_offset": next_offset, "total_objects": len(listed)}
        return {"response": {spec.records_key: [record for _, _, record in page], "metadata": metadata}}


def _integer(request: Request, name: str, default: int | None = None) -> int:
    value = request.param(name)
    if value is None:
        if default is None:
            raise BadRequest(f"{name} is required")
        return default
    if not value.isdigit():
        raise BadRequest(f"{name} must be an integer")
    return int(value)


def _v2_window(request: Request) -> tuple[int, int, int]:
    """(mintime, maxtime, limit) of a v2 or Trust Monitor request: 13-digit ms times, mintime < maxtime."""
    mintime, maxtime = _integer(request, "mintime"), _integer(request, "maxtime")
    if len(str(mintime)) != 13 or len(str(maxtime)) != 13:
        raise BadRequest("mintime and maxtime must be 13-digit millisecond times")
    if mintime >= maxtime:
        raise BadRequest("mintime must be before maxtime")
    if mintime < time.time() * 1000 - MAX_AGE_MS:
        raise BadRequest("mintime is more than 180 days ago")
    limit = _integer(request, "limit", 100)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    sort = request.param("sort")
    if sort not in (None, "ts:asc", "ts:desc"):
        raise BadRequest("sort must be ts:asc or ts:desc")
    return mintime, maxtime, limit


def _offset_index(listed: list[tuple[int, str, dict[str, Any]]], paging: str, request: Request) -> int:
    """Where the page starts: just after the record the offset names (auth sends [ts, txid] as two values)."""
    name = "offset" if paging == "trust_monitor" else "next_offset"
    values = request.query.get(name)
    if not values:
        return 0
    if paging == "v2_list":
        if len(values) != 2:
            raise BadRequest("next_offset must be the two values of metadata.next_offset")
        ts, record_id = sorted(values, key=lambda value: not value.isdigit())
    else:
        ts, _, record_id = values[0].partition(",")
    for index, (when, key, _record) in enumerate(listed):
        if str(when) == ts and key == record_id:
            return index + 1
    raise BadRequest(f"{name} names no record of this query")
