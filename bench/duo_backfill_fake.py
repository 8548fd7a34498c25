"""A Duo authentication log as large as a benchmark needs, served over HTTPS from its own process.

tests/fakes/duo_admin_api.py keeps every record as a dict, copies and filters
the whole list on each request and encodes pages with the json module: right
for tests, far too slow for hundreds of thousands of records. Here it is
subclassed so every request is still checked by its signature verification
(Duo's canonical request, HMAC with the secret key, Date within 5 minutes), but
the auth log is computed: record `i` happened at `first_ms + i * step_ms`, so a
mintime/maxtime window is an index range, a `next_offset` names the index in
its txid, and pages are rendered from a pre-encoded JSON template of an Admin
API authentication record. Duo's last two minutes stay withheld.

Run as a script with the secret key in the environment (SECRET_VARIABLE): it
prints one JSON line (url, ca, host, integration_key, first_ms, step_ms,
records) and serves until its stdin is closed. `GET /bench/stats` (unsigned)
returns requests, records served and the times of the first and last auth
request; `POST /bench/reset` zeroes them.
"""

from __future__ import annotations

import argparse
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

from tests.fakes.duo_admin_api import WITHHELD_MS, BadRequest, FakeDuoAdminApi, _v2_window, duo_error  # noqa: E402
from tests.fakes.https_server import FakeHttpsServer, Reply, Request, _RequestHandler  # noqa: E402

INTEGRATION_KEY = "DIBENCH0000000000001"
SECRET_VARIABLE = "BENCH_DUO_SECRET_KEY"
USERS = 20_000
MIX = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1
# (result, reason, factor) of successive records: mostly approved pushes, some failures, as a real account.
OUTCOMES = [("success", "user_approved", "duo_push")] * 14 + [
    ("success", "valid_passcode", "passcode"), ("success", "user_approved", "phone_call"),
    ("failure", "invalid_passcode", "passcode"), ("denied", "user_mistake", "duo_push"),
    ("fraud", "user_marked_fraud", "duo_push"), ("failure", "no_response", "duo_push"),
]
CITIES = [("Linköping", "Sweden", "Östergötland County"), ("Ann Arbor", "United States", "Michigan"),
          ("London", "United Kingdom", "England"), ("Tokyo", "Japan", "Tokyo")]


def mixed(value: int) -> int:
    """A well-spread 64-bit number from an index (splitmix64's finaliser)."""
    value = (value * MIX) & MASK
    value ^= value >> 31
    value = (value * 0xBF58476D1CE4E5B9) & MASK
    return value ^ (value >> 29)


def auth_template() -> dict[str, Any]:
    """An Admin API v2 authentication record; `@@name@@` marks each record's own values."""
    return {
        "access_device": {
            "browser": "Chrome", "browser_version": "124.0.6367.91", "epkey": "EP18JX1A10AB102M2T2X",
            "flash_version": "uninstalled", "hostname": None, "ip": "@@ip@@", "is_encryption_enabled": True,
            "is_firewall_enabled": False, "is_password_set": True, "java_version": "uninstalled",
            "location": {"city": "@@city@@", "country": "@@country@@", "state": "@@state@@"},
            "os": "Mac OS X", "os_version": "14.4.1", "security_agents": [],
        },
        "adaptive_trust_assessments": {
            "more_secure_auth": {"features_version": "3.0", "model_version": "2022.07.19.001",
                                 "policy_enabled": False,
                                 "reason": "Normal level of trust; no detection of known attack pattern",
                                 "trust_level": "NORMAL"},
        },
        "alias": "",
        "application": {"key": "DIY231J8BR23QK4UKBY8", "name": "Microsoft Azure Active Directory"},
        "auth_device": {"ip": "192.168.225.254:8443", "key": "DPFZRS9FB0D46QFTM891",
                        "location": {"city": "Ann Arbor", "country": "United States", "state": "Michigan"},
                        "name": "My iPhone X (734-555-2342)"},
        "email": "@@user@@",
        "event_type": "authentication",
        "factor": "@@factor@@",
        "isotimestamp": "@@isotimestamp@@",
        "ood_software": None,
        "reason": "@@reason@@",
        "result": "@@result@@",
        "timestamp": "@@timestamp@@",
        "trusted_endpoint_status": "not trusted",
        "txid": "@@txid@@",
        "user": {"groups": ["Duo Users", "CorpHQ Users"], "key": "@@user_key@@", "name": "@@user@@"},
    }


class AuthTemplate:
    """The record encoded once, split at its holes; `timestamp` is a number, so its quotes go."""

    def __init__(self) -> None:
        encoded = orjson.dumps(auth_template()).replace(b'"@@timestamp@@"', b"@@timestamp@@")
        parts = encoded.split(b"@@")
        self.literals = parts[0::2]
        self.holes = [part.decode() for part in parts[1::2]]

    def render(self, values: dict[str, bytes]) -> bytes:
        out = [self.literals[0]]
        for hole, literal in zip(self.holes, self.literals[1:], strict=True):
            out.append(values[hole])
            out.append(literal)
        return b"".join(out)


def txid(index: int) -> str:
    """A txid that names its record: the last 12 hex digits are the index."""
    spread = f"{mixed(index):016x}"
    return f"{spread[:8]}-{spread[8:12]}-4{spread[13:16]}-a{mixed(index ^ MASK) % 4096:03x}-{index:012x}"


class AuthLog:
    """`records` authentications, oldest first: record i at first_ms + i * step_ms."""

    def __init__(self, records: int, first_ms: int, step_ms: int) -> None:
        self.records = records
        self.first_ms = first_ms
        self.step_ms = step_ms
        self.template = AuthTemplate()
        self.users = [(f"user{n:05d}@example.com".encode(), f"DU{mixed(n):018X}"[:20].encode()) for n in range(USERS)]

    def time_ms(self, index: int) -> int:
        return self.first_ms + index * self.step_ms

    def record(self, index: int) -> bytes:
        spread = mixed(index)
        user, user_key = self.users[spread % USERS]
        result, reason, factor = OUTCOMES[index % len(OUTCOMES)]
        city, country, state = CITIES[(spread >> 40) % len(CITIES)]
        millis = self.time_ms(index)
        seconds, fraction = divmod(millis, 1000)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:03d}000+00:00"
        ip = f"{spread >> 8 & 127 | 64}.{spread >> 16 & 255}.{spread >> 24 & 255}.{(spread >> 32) % 254 + 1}"
        return self.template.render({
            "ip": ip.encode(), "city": city.encode(), "country": country.encode(), "state": state.encode(),
            "user": user, "user_key": user_key, "factor": factor.encode(), "reason": reason.encode(),
            "result": result.encode(), "isotimestamp": iso.encode(), "timestamp": str(seconds).encode(),
            "txid": txid(index).encode(),
        })

    def index_range(self, low_ms: int, high_ms: int) -> tuple[int, int]:
        """[first, end) of the indices whose time lies in [low_ms, high_ms]."""
        first = max(0, -((self.first_ms - low_ms) // self.step_ms))
        end = min(self.records, (high_ms - self.first_ms) // self.step_ms + 1)
        return first, max(first, end)


class BackfillDuo(FakeDuoAdminApi):
    """The test fake's signature check in front of a computed auth log, plus counters for the bench."""

    def __init__(self, server: FakeHttpsServer, secret_key: str, log: AuthLog) -> None:
        super().__init__(server, INTEGRATION_KEY, secret_key)
        self.log = log
        self.counters: dict[str, Any] = {}
        self._counter_lock = threading.Lock()
        self.reset()
        server.route("GET", "/bench/stats", lambda request, match: Reply.json(self.snapshot()))
        server.route("POST", "/bench/reset", lambda request, match: self.reset() or Reply.json({}))

    def reset(self) -> None:
        with self._counter_lock:
            self.counters = {"requests": 0, "records": 0, "first_request": None, "last_request": None,
                             "rejected_signatures": 0}

    def snapshot(self) -> dict[str, Any]:
        with self._counter_lock:
            return {**self.counters, "rejected_signatures": self.rejected_signatures}

    def _answer(self, log: str, request: Request) -> Reply:
        if log != "auth":
            return super()._answer(log, request)
        now = time.time()
        refused = self.check_signature(request)
        if refused is not None:
            with self._lock:
                self.rejected_signatures += 1
            return self._dated(refused)
        try:
            body, count = self._auth_page(request)
        except BadRequest as error:
            return self._dated(duo_error(400, 40002, "Invalid request parameters", str(error)))
        with self._counter_lock:
            counters = self.counters
            counters["requests"] += 1
            counters["records"] += count
            counters["first_request"] = counters["first_request"] or now
            counters["last_request"] = now
        return self._dated(Reply(200, body, {"Content-Type": "application/json"}))

    def _auth_page(self, request: Request) -> tuple[bytes, int]:
        if request.param("sort") != "ts:asc":
            raise BadRequest("the bench fake serves sort=ts:asc only")
        mintime, maxtime, limit = _v2_window(request)
        first, end = self.log.index_range(mintime, min(maxtime, int(self.now() * 1000) - WITHHELD_MS))
        offset = request.query.get("next_offset")
        if offset:
            named = next((value for value in offset if not value.isdigit()), "")
            index = int(named[-12:], 16) if len(named) >= 12 else -1
            if not first <= index < end or str(self.log.time_ms(index)) not in offset:
                raise BadRequest("next_offset names no record of this query")
            first = index + 1
        stop = min(end, first + limit)
        page = b",".join(self.log.record(index) for index in range(first, stop))
        more = stop < end
        last = stop - 1
        next_offset = [str(self.log.time_ms(last)), txid(last)] if more else None
        metadata = orjson.dumps({"next_offset": next_offset, "total_objects": end - first})
        body = b'{"stat":"OK","response":{"authlogs":[' + page + b'],"metadata":' + metadata + b"}}"
        return body, stop - first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--step-ms", type=int, default=10)
    args = parser.parse_args()
    secret = os.environ[SECRET_VARIABLE]
    # The newest record is three minutes old: past Duo's two withheld minutes from the start.
    first_ms = int((time.time() - 180) * 1000) - (args.records - 1) * args.step_ms
    server = FakeHttpsServer().start()
    # The test server writes the headers and the body in two sends: with Nagle's algorithm on, the body's
    # last segment waits for the client's delayed ACK of the headers (≈ 40 ms a page), a stall of the fake
    # that a real API's server does not have. The tests do not mind it; a throughput figure would.
    _RequestHandler.disable_nagle_algorithm = True
    BackfillDuo(server, secret, AuthLog(args.records, first_ms, args.step_ms))
    print(json.dumps({"url": server.url, "ca": server.ca_path, "host": f"127.0.0.1:{server.port}",
                      "integration_key": INTEGRATION_KEY, "first_ms": first_ms, "step_ms": args.step_ms,
                      "records": args.records}), flush=True)
    sys.stdin.read()
    errors = server.handler_errors
    server.close()
    if errors:
        print(json.dumps({"handler_errors": errors[:5]}), flush=True)


if __name__ == "__main__":
    main()
