"""A Microsoft Graph sign-in log as large as a benchmark needs, served over HTTPS from its own process.

tests/fakes/graph_api.py keeps every record as a dict and filters and sorts the
whole list on each query: right for tests, far too slow and too big for a
million records. Here record `i` is a function of `i` alone: its time is
`t0 - i * step`, so a `createdDateTime ge/le` filter is an index range, a
nextLink carries the next index, and nothing is stored. Records are the shapes
of tests/fixtures/entraid/signin_*.json with per-record ids, users, IP
addresses and times, written into pre-encoded JSON templates, so building a
1000-record page costs a few milliseconds and the fake stays well ahead of the
forwarder it serves.

Tokens come from the real test identity platform (tests/fakes/identity_platform.py),
so MSAL in the forwarder negotiates them exactly as in the integration tests.

Run as a script: it prints one JSON line (url, ca, t0, step, records) and
serves until its stdin is closed. `GET /bench/stats` (no token needed) returns
what it has served: requests, records, and the times of the first and last
sign-in request; `POST /bench/reset` sets them back to zero.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import trustme

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.graph_api import BadRequest, time_ticks  # noqa: E402
from tests.fakes.https_server import FakeHttpsServer, Reply, Request  # noqa: E402
from tests.fakes.identity_platform import FakeIdentityPlatform  # noqa: E402

TENANT = "7f3c1a2b-4d5e-4f60-8a9b-0c1d2e3f4a5b"
CLIENT = "2b4d6f80-1a3c-4e5f-9a7b-8c9d0e1f2a3b"
SECRET_VARIABLE = "BENCH_ENTRA_CLIENT_SECRET"
TICKS = 10_000_000
SIGN_IN_TYPES = frozenset({"interactiveUser", "nonInteractiveUser", "servicePrincipal", "managedIdentity"})
TYPE_TERM = re.compile(r"t eq '([A-Za-z]+)'")
ANY_TYPE = re.compile(r"signInEventTypes/any\(t: (t eq '[A-Za-z]+'(?: or t eq '[A-Za-z]+')*)\)")
# How often each fixture shape appears among 20 consecutive records (non-interactive sign-ins dominate real logs).
SHAPES = {
    "signin_noninteractive": 8,
    "signin_interactive_success": 5,
    "signin_failed_password": 2,
    "signin_service_principal": 2,
    "signin_managed_identity": 1,
    "signin_no_location_device": 2,
}
USERS = 20_000
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


class SignInTemplate:
    """One fixture encoded once, with `@@name@@` holes where each record's own values go."""

    HOLES = {
        "id": "id", "createdDateTime": "time", "correlationId": "correlation", "userId": "user_id",
        "userPrincipalName": "upn", "userDisplayName": "user_name", "ipAddress": "ip",
        "originalRequestId": "request_id",
    }

    def __init__(self, record: dict[str, Any]) -> None:
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


class SignInLog:
    """`records` sign-ins, newest first: record i happened at t0 - i * step (100 ns ticks)."""

    def __init__(self, records: int, t0_ticks: int, step_ticks: int) -> None:
        self.records = records
        self.t0_ticks = t0_ticks
        self.step_ticks = step_ticks
        fixtures = ROOT / "tests" / "fixtures" / "entraid"
        self._last_second = (-1, "")
        self._templates: list[SignInTemplate] = []
        for name, weight in SHAPES.items():
            template = SignInTemplate(json.loads((fixtures / f"{name}.json").read_text()))
            self._templates.extend([template] * weight)
        self._users = [(f"user{n:05d}@contoso.onmicrosoft.com".encode(), f"User {n:05d}".encode(),
                        uuid_text(mixed(n + (1 << 40))).encode()) for n in range(USERS)]

    def record(self, index: int) -> bytes:
        spread = mixed(index)
        upn, name, user_id = self._users[spread % USERS]
        ticks = self.t0_ticks - index * self.step_ticks
        seconds, fraction = divmod(ticks, TICKS)
        cached_second, when = self._last_second
        if cached_second != seconds:
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            self._last_second = (seconds, when)  # one tuple: pages are rendered on two threads
        ip = f"{spread >> 8 & 127 | 64}.{spread >> 16 & 255}.{spread >> 24 & 255}.{(spread >> 32) % 254 + 1}"
        values = {
            "id": uuid_text(spread << 64 | mixed(index ^ MASK)).encode(), "time": f"{when}.{fraction:07d}Z".encode(),
            "correlation": uuid_text(mixed(index + 1) << 64 | spread).encode(), "user_id": user_id, "upn": upn,
            "user_name": name, "ip": ip.encode(), "request_id": uuid_text(mixed(index + 2)).encode(),
        }
        return self._templates[index % len(self._templates)].render(values)

    def page(self, first: int, stop: int) -> bytes:
        """Records first … stop - 1, comma-separated, as they go inside a page's `value` array."""
        return b",".join(self.record(index) for index in range(first, stop))

    def index_range(self, low: int | None, high: int | None) -> tuple[int, int]:
        """[first, end) of the indices whose time lies in [low, high] (ticks, either bound optional)."""
        first = 0 if high is None else max(0, -((high - self.t0_ticks) // self.step_ticks))
        end = self.records if low is None else min(self.records, (self.t0_ticks - low) // self.step_ticks + 1)
        return first, max(first, end)


class BackfillGraph:
    """The sign-ins endpoint of Graph (v1.0 and beta) over one SignInLog, plus a counter endpoint."""

    def __init__(self, server: FakeHttpsServer, identity: FakeIdentityPlatform, log: SignInLog) -> None:
        self.server = server
        self.identity = identity
        self.log = log
        self.requests = 0
        self.records_served = 0
        self.first_request: float | None = None
        self.last_request: float | None = None
        self._lock = threading.Lock()
        self._ahead: dict[tuple[int, int], Future[bytes]] = {}
        self._renderer = ThreadPoolExecutor(1, thread_name_prefix="render-ahead")
        server.route("GET", r"/(v1\.0|beta)/auditLogs/signIns", self._list)
        server.route("GET", r"/bench/stats", self._stats)
        server.route("POST", r"/bench/reset", self._reset)

    def _stats(self, request: Request, match: re.Match[str]) -> Reply:
        with self._lock:
            return Reply.json({"requests": self.requests, "records": self.records_served,
                               "first_request": self.first_request, "last_request": self.last_request})

    def _reset(self, request: Request, match: re.Match[str]) -> Reply:
        """Counters start again from zero, so a second client is timed from its own first request."""
        with self._lock:
            self.requests = self.records_served = 0
            self.first_request = self.last_request = None
        return Reply(204)

    def _list(self, request: Request, match: re.Match[str]) -> Reply:
        received = time.time()
        denied = self.identity.authorize(request, "https://graph.microsoft.com")
        if denied is not None:
            return denied
        version = match.group(1)
        query = {name: values[0] for name, values in request.query.items()}
        try:
            top, first, end = self._query(version, query)
        except BadRequest as error:
            return Reply.json({"error": {"code": "invalidRequest", "message": str(error)}}, 400)
        stop = min(end, first + top)
        prefix = f"{self.server.url}/{version}"
        head = b'{"@odata.context":"' + f"{prefix}/$metadata#auditLogs/signIns".encode() + b'","value":['
        body = [head, self._records(first, stop), b"]"]
        if stop < end:
            link = f"{prefix}/auditLogs/signIns?$top={top}&$skiptoken={stop}.{end}"
            body.append(b',"@odata.nextLink":"' + link.encode() + b'"')
            self._render_ahead(stop, min(end, stop + top))
        body.append(b"}")
        with self._lock:
            self.requests += 1
            self.records_served += stop - first
            if self.first_request is None:
                self.first_request = received
            self.last_request = time.time()
        return Reply(200, b"".join(body), {"Content-Type": "application/json; charset=utf-8"})

    def _records(self, first: int, stop: int) -> bytes:
        with self._lock:
            ahead = self._ahead.pop((first, stop), None)
        if ahead is not None:
            return ahead.result()
        return self.log.page(first, stop)

    def _render_ahead(self, first: int, stop: int) -> None:
        """Renders the page a nextLink points at while the client is busy with this one, as Graph's
        own latency would not depend on how fast this process can format JSON."""
        with self._lock:
            if len(self._ahead) >= 4:
                self._ahead.clear()
            self._ahead[(first, stop)] = self._renderer.submit(self.log.page, first, stop)

    def _query(self, version: str, query: dict[str, str]) -> tuple[int, int, int]:
        """(page size, first index, end index) of a first request or of a followed nextLink."""
        unknown = set(query) - {"$filter", "$top", "$skiptoken"}
        if unknown:
            raise BadRequest(f"Unsupported query option(s): {', '.join(sorted(unknown))}")
        top_text = query.get("$top", "1000")
        if not top_text.isdigit() or not 1 <= int(top_text) <= 1000:
            raise BadRequest(f"Invalid $top value '{top_text}'")
        token = query.get("$skiptoken")
        if token is not None:
            first, _, end = token.partition(".")
            if not (first.isdigit() and end.isdigit()):
                raise BadRequest("Invalid or expired $skiptoken")
            return int(top_text), int(first), int(end)
        low, high = self._time_bounds(version, query.get("$filter", ""))
        return int(top_text), *self.log.index_range(low, high)

    def _time_bounds(self, version: str, text: str) -> tuple[int | None, int | None]:
        """`createdDateTime ge/le` clauses; a signInEventTypes clause (beta) must select every type served."""
        bounds: dict[str, int] = {}
        for clause in text.split(" and ") if text else []:
            parts = clause.split(" ")
            if len(parts) == 3 and parts[0] == "createdDateTime" and parts[1] in ("ge", "le"):
                bounds[parts[1]] = time_ticks(parts[2])
                continue
            types = ANY_TYPE.fullmatch(clause)
            if types and version == "beta":
                if set(TYPE_TERM.findall(types.group(1))) != SIGN_IN_TYPES:
                    raise BadRequest("this benchmark fake serves all four sign-in types: ask for all of them")
                continue
            raise BadRequest(f"Invalid filter clause: {clause}")
        return bounds.get("ge"), bounds.get("le")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--step", type=float, required=True, help="seconds between two consecutive sign-ins")
    parser.add_argument("--newest-age", type=float, default=60.0, help="seconds between now and the newest record")
    args = parser.parse_args()
    secret = os.environ[SECRET_VARIABLE]
    t0_ticks = int((time.time() - args.newest_age) * TICKS)
    log = SignInLog(args.records, t0_ticks, round(args.step * TICKS))
    with FakeHttpsServer(trustme.CA()) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=secret)
        BackfillGraph(server, identity, log)
        print(json.dumps({"url": server.url, "ca": server.ca_path, "t0": t0_ticks / TICKS, "step": args.step,
                          "records": args.records}), flush=True)
        sys.stdin.read()
        if server.handler_errors:
            print(json.dumps({"handler_errors": server.handler_errors[:5]}), flush=True)


if __name__ == "__main__":
    main()
