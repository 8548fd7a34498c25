"""Cisco Secure Endpoint events as many as a benchmark needs, served over HTTPS from their own process.

tests/fakes/secure_endpoint_api.py keeps every event as a dict, filters and
sorts the whole list on each request and encodes pages with the json module:
right for tests, far too slow for a backfill of hundreds of thousands. Here it
is subclassed so every request still goes through its checks (HTTP Basic auth,
the hourly quota in the rate-limit headers, known parameters only), but the
events are computed: event `i` happened at `first_ms + i * step_ms` (Cisco's
`date` in whole seconds, `timestamp_nanoseconds` below), so an inclusive
`start_date` is an index, a page is an index range counted newest first from
`offset`, and it is rendered from a pre-encoded JSON template of a fully
populated Threat Detected event. Pages are gzipped when the client accepts it,
as Cisco's are (zlib's default level).

Run as a script with the API key in the environment (API_KEY_VARIABLE): it
prints one JSON line (url, ca, client_id, first_ms, step_ms, events) and serves
until its stdin is closed. `GET /bench/stats` (no auth) returns requests,
events served and the times of the first and last events request;
`POST /bench/reset` zeroes them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.https_server import FakeHttpsServer, Reply, Request, _RequestHandler  # noqa: E402
from tests.fakes.secure_endpoint_api import MAX_LIMIT, FakeSecureEndpointApi, _epoch, iso  # noqa: E402

CLIENT_ID = "0123456789abcdef0123"
API_KEY_VARIABLE = "BENCH_AMP_API_KEY"
# Enough for any run here: the client paces itself only when the remaining quota gets low.
QUOTA = 1_000_000
HOSTS = 500
MIX = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1
# (event_type, event_type_id, severity, disposition) of successive events.
KINDS = [("Threat Detected", 1090519054, "Medium", "Malicious"), ("Threat Quarantined", 553648143, "Low", "Malicious"),
         ("Executed malware", 1107296272, "High", "Malicious"), ("Threat Detected", 1090519054, "Critical", "Unknown")]


def mixed(value: int) -> int:
    """A well-spread 64-bit number from an index (splitmix64's finaliser)."""
    value = (value * MIX) & MASK
    value ^= value >> 31
    value = (value * 0xBF58476D1CE4E5B9) & MASK
    return value ^ (value >> 29)


def event_template() -> dict[str, Any]:
    """A Threat Detected event as `GET /v1/events` returns it; `@@name@@` marks each event's own values."""
    return {
        "id": "@@id@@",
        "timestamp": "@@timestamp@@",
        "timestamp_nanoseconds": "@@nanos@@",
        "date": "@@date@@",
        "event_type": "@@event_type@@",
        "event_type_id": "@@event_type_id@@",
        "detection": "W32.AgentWDCR:Gen.21gn.1201",
        "detection_id": "@@detection_id@@",
        "connector_guid": "@@guid@@",
        "group_guids": ["b077d6bc-bbdf-42f7-8838-a06053fbd98a"],
        "severity": "@@severity@@",
        "computer": {
            "connector_guid": "@@guid@@", "hostname": "@@hostname@@", "external_ip": "@@external_ip@@",
            "user": "@@user@@", "active": True,
            "network_addresses": [{"ip": "@@ip@@", "mac": "e6:80:50:1e:e5:20"}],
            "links": {"computer": "https://api.amp.cisco.com/v1/computers/@@guid@@",
                      "trajectory": "https://api.amp.cisco.com/v1/computers/@@guid@@/trajectory",
                      "group": "https://api.amp.cisco.com/v1/groups/b077d6bc-bbdf-42f7-8838-a06053fbd98a"},
        },
        "file": {
            "disposition": "@@disposition@@", "file_name": "@@file_name@@",
            "file_path": "C:\\Users\\@@user_name@@\\Downloads\\@@file_name@@",
            "identity": {"sha256": "@@sha256@@", "sha1": "@@sha1@@", "md5": "@@md5@@"},
            "parent": {"process_id": "@@process_id@@", "disposition": "Clean", "file_name": "explorer.exe",
                       "identity": {"sha256": "3b8dc6b3e4e2a0d4b1c4e7e8f6a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8"}},
        },
        "tactics": [{"name": "Execution", "external_id": "TA0002",
                     "mitre_url": "https://attack.mitre.org/tactics/TA0002"}],
        "techniques": [{"name": "User Execution", "external_id": "T1204",
                        "mitre_url": "https://attack.mitre.org/techniques/T1204"}],
    }


# Holes written as JSON numbers, not strings.
NUMBER_HOLES = ("id", "timestamp", "nanos", "event_type_id", "process_id")


class EventTemplate:
    """The event encoded once, split at its holes."""

    def __init__(self) -> None:
        encoded = orjson.dumps(event_template())
        for hole in NUMBER_HOLES:
            encoded = encoded.replace(f'"@@{hole}@@"'.encode(), f"@@{hole}@@".encode())
        parts = encoded.split(b"@@")
        self.literals = parts[0::2]
        self.holes = [part.decode() for part in parts[1::2]]

    def render(self, values: dict[str, bytes]) -> bytes:
        out = [self.literals[0]]
        for hole, literal in zip(self.holes, self.literals[1:], strict=True):
            out.append(values[hole])
            out.append(literal)
        return b"".join(out)


class EventLog:
    """`events` events, index 0 the oldest: event i at first_ms + i * step_ms."""

    def __init__(self, events: int, first_ms: int, step_ms: int) -> None:
        self.events = events
        self.first_ms = first_ms
        self.step_ms = step_ms
        self.template = EventTemplate()

    def first_index(self, start_date: str | None) -> int:
        """The oldest index whose `date` (whole seconds) is at or after the inclusive `start_date`."""
        if start_date is None:
            return 0
        start_ms = int(_epoch(start_date)) * 1000
        return min(self.events, max(0, -((self.first_ms - start_ms) // self.step_ms)))

    def render(self, index: int) -> bytes:
        spread = mixed(index)
        millis = self.first_ms + index * self.step_ms
        seconds = millis // 1000
        host = spread % HOSTS
        event_type, type_id, severity, disposition = KINDS[index % len(KINDS)]
        guid = f"{mixed(host):016x}"
        user = f"user{(spread >> 20) % 5000:04d}"
        digest = f"{spread:016x}{mixed(spread):016x}"
        return self.template.render({
            "id": str(6761826132415096000 + index).encode(),
            "timestamp": str(seconds).encode(),
            "nanos": str(millis % 1000 * 1_000_000).encode(),
            "date": iso(seconds).encode(),
            "event_type": event_type.encode(),
            "event_type_id": str(type_id).encode(),
            "detection_id": str(6159251516445163000 + index).encode(),
            "guid": f"{guid[:8]}-{guid[8:12]}-{guid[12:16]}-a5ae-{host:012x}".encode(),
            "severity": severity.encode(),
            "hostname": f"desktop-{host:04d}.corp.example.com".encode(),
            "external_ip": f"81.2.{spread >> 8 & 255}.{(spread >> 16) % 254 + 1}".encode(),
            "user": f"{user}@CORP".encode(),
            "user_name": user.encode(),
            "ip": f"10.{spread >> 24 & 255}.{spread >> 32 & 255}.{(spread >> 40) % 254 + 1}".encode(),
            "disposition": disposition.encode(),
            "file_name": f"invoice_{index % 9973}.exe".encode(),
            "sha256": (digest * 2).encode(),
            "sha1": digest[:40].ljust(40, "0").encode(),
            "md5": digest.encode(),
            "process_id": str(1000 + spread % 60000).encode(),
        })


class BackfillSecureEndpoint(FakeSecureEndpointApi):
    """The test fake's auth, quota and parameter checks in front of a computed event log, plus counters."""

    def __init__(self, server: FakeHttpsServer, api_key: str, log: EventLog) -> None:
        super().__init__(server, CLIENT_ID, api_key, quota=QUOTA)
        self.log = log
        self.counters: dict[str, Any] = {}
        self._counter_lock = threading.Lock()
        self.reset()
        server.route("GET", "/bench/stats", lambda request, match: Reply.json(self.snapshot()))
        server.route("POST", "/bench/reset", lambda request, match: self.reset() or Reply.json({}))

    def reset(self) -> None:
        with self._counter_lock:
            self.counters = {"requests": 0, "events": 0, "first_request": None, "last_request": None,
                             "refused": 0}

    def snapshot(self) -> dict[str, Any]:
        with self._counter_lock:
            return dict(self.counters)

    def _answer(self, request: Request, _: Any) -> Reply:
        now = time.time()
        with self._lock:
            reply = self._reply(request)
        count = 0
        if reply.status == 200:
            reply.body, count = self._rendered_page(request)
            if "gzip" in (request.header("accept-encoding") or ""):
                reply.body = gzip.compress(reply.body, compresslevel=6)
                reply.headers["Content-Encoding"] = "gzip"
        with self._counter_lock:
            counters = self.counters
            counters["requests"] += 1
            counters["events"] += count
            counters["refused"] += reply.status != 200
            counters["first_request"] = counters["first_request"] or now
            counters["last_request"] = now
        return reply

    def _page(self, request: Request) -> dict[str, Any]:
        """An empty stand-in: the parent encodes pages with the json module, `_rendered_page` writes the real one."""
        return {}

    def _rendered_page(self, request: Request) -> tuple[bytes, int]:
        if request.query.get("event_type[]"):
            raise ValueError("the bench fake serves every event type only")
        limit = min(int(request.param("limit") or MAX_LIMIT), MAX_LIMIT)
        offset = int(request.param("offset") or 0)
        first = self.log.first_index(request.param("start_date"))
        matching = self.log.events - first
        newest = self.log.events - 1 - offset
        oldest = max(first, newest - limit + 1)
        indices = range(newest, oldest - 1, -1)
        links = {"self": self._link(request, offset, limit)}
        if offset + limit < matching:
            links["next"] = self._link(request, offset + limit, limit)
        metadata = orjson.dumps({"links": links, "results": {"total": matching, "current_item_count": len(indices),
                                                             "index": offset, "items_per_page": limit}})
        page = b",".join(self.log.render(index) for index in indices)
        return b'{"version":"v1.2.0","metadata":' + metadata + b',"data":[' + page + b"]}", len(indices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--step-ms", type=int, default=10)
    args = parser.parse_args()
    api_key = os.environ[API_KEY_VARIABLE]
    # The newest event is a minute old.
    first_ms = int((time.time() - 60) * 1000) - (args.events - 1) * args.step_ms
    server = FakeHttpsServer().start()
    # The test server writes the headers and the body in two sends: with Nagle's algorithm on, the body's
    # last segment waits for the client's delayed ACK of the headers (≈ 40 ms a page), a stall of the fake
    # that a real API's server does not have. The tests do not mind it; a throughput figure would.
    _RequestHandler.disable_nagle_algorithm = True
    BackfillSecureEndpoint(server, api_key, EventLog(args.events, first_ms, args.step_ms))
    print(json.dumps({"url": server.url, "ca": server.ca_path, "client_id": CLIENT_ID, "first_ms": first_ms,
                      "step_ms": args.step_ms, "events": args.events}), flush=True)
    sys.stdin.read()
    errors = server.handler_errors
    server.close()
    if errors:
        print(json.dumps({"handler_errors": errors[:5]}), flush=True)


if __name__ == "__main__":
    main()
