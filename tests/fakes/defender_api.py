"""Microsoft Defender for Endpoint's alerts API (`GET /api/alerts`) as a polling client sees it, for tests.

Served on a FakeHttpsServer next to FakeIdentityPlatform, whose bearer tokens it
checks, including the audience (`https://api.securitycenter.microsoft.com`).
It is strict: a query option other than `$filter`, `$top`, `$skip` and
`$expand=evidence`, or a `$filter` clause other than `lastUpdateTime gt|ge|lt|le
<time>` joined by `and`, gets the API's 400. Alerts are listed by
`lastUpdateTime` (then id) from the data as it is at each request, so an alert
updated in place moves to the end of the listing between two pages, exactly
the hazard of `$skip` paging. It counts the alerts requests it answered, with
their arrival times, so a test can check the client's request budget.
"""

from __future__ import annotations

import bisect
import threading
import time
from typing import Any

import orjson

from tests.fakes.graph_api import BadRequest, time_ticks
from tests.fakes.https_server import FakeHttpsServer, Reply, Request
from tests.fakes.identity_platform import FakeIdentityPlatform

AUDIENCE = "https://api.securitycenter.microsoft.com"
MAX_TOP = 10_000
KNOWN_OPTIONS = frozenset({"$filter", "$top", "$skip", "$expand"})
COMPARISONS = {"gt", "ge", "lt", "le"}


class FakeDefenderApi:
    """Add alerts with `add`, change them with `update`; `arrivals` holds the monotonic time of each alerts request."""

    def __init__(self, server: FakeHttpsServer, identity: FakeIdentityPlatform, audience: str = AUDIENCE,
                 next_links: bool = False) -> None:
        self.server = server
        self.identity = identity
        self.audience = audience
        # When set, a full page carries @odata.nextLink (with $skip) as Graph-style APIs do.
        self.next_links = next_links
        self.arrivals: list[float] = []
        self.throttled_requests: list[int] = []  # indexes into `arrivals` and `queries`
        self.queries: list[dict[str, str]] = []
        self.denied = False
        self._throttled: list[str] = []  # Retry-After values of the next answers
        self._scheduled_updates: dict[int, list[tuple[str, str]]] = {}  # request number → (id, new update time)
        self._alerts: dict[str, dict[str, Any]] = {}
        self._order: list[tuple[int, str]] = []  # (lastUpdateTime ticks, id), sorted
        self._lock = threading.Lock()
        server.route("GET", r"/api/alerts", self._list)

    def add(self, alert: dict[str, Any]) -> dict[str, Any]:
        """Stores an alert (it needs `id` and `lastUpdateTime`); returns it."""
        with self._lock:
            self._store(alert)
        return alert

    def add_many(self, alerts: list[dict[str, Any]]) -> None:
        with self._lock:
            for alert in alerts:
                self._alerts[alert["id"]] = alert
            self._order = sorted((time_ticks(alert["lastUpdateTime"]), alert["id"]) for alert in self._alerts.values())

    def update(self, alert_id: str, last_update_time: str, **changes: Any) -> dict[str, Any]:
        """Changes an alert in place, as an analyst does: it moves to its new update time in the listing."""
        with self._lock:
            old = self._alerts[alert_id]
            self._order.remove((time_ticks(old["lastUpdateTime"]), alert_id))
            updated = {**old, **changes, "lastUpdateTime": last_update_time}
            self._store(updated)
        return updated

    def update_before_request(self, request_number: int, alert_id: str, last_update_time: str) -> None:
        """Updates the alert just before the `request_number`-th alerts request (1-based) is answered: mid-paging."""
        with self._lock:
            self._scheduled_updates.setdefault(request_number, []).append((alert_id, last_update_time))

    def deny(self) -> None:
        """The app lacks Alert.Read.All: every request answers 403."""
        self.denied = True

    def throttle(self, count: int, retry_after: str) -> None:
        """The next `count` alerts requests answer 429 with this Retry-After."""
        with self._lock:
            self._throttled.extend([retry_after] * count)

    def most_requests_within(self, seconds: float) -> int:
        """The largest number of alerts requests that arrived within any span of `seconds`."""
        with self._lock:
            ordered = sorted(self.arrivals)
        most = 0
        for index, first in enumerate(ordered):
            most = max(most, bisect.bisect_left(ordered, first + seconds, index) - index)
        return most

    def _store(self, alert: dict[str, Any]) -> None:
        self._alerts[alert["id"]] = alert
        bisect.insort(self._order, (time_ticks(alert["lastUpdateTime"]), alert["id"]))

    def _list(self, request: Request, match: Any) -> Reply:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.queries.append({name: values[0] for name, values in request.query.items()})
            retry_after = self._throttled.pop(0) if self._throttled else None
            if retry_after is not None:
                self.throttled_requests.append(len(self.arrivals) - 1)
            scheduled = self._scheduled_updates.pop(len(self.arrivals), [])
        for alert_id, last_update_time in scheduled:
            self.update(alert_id, last_update_time, status="InProgress")
        rejected = self.identity.authorize(request, self.audience)
        if rejected is not None:
            return rejected
        if retry_after is not None:
            return _error(429, "TooManyRequests", "Rate limit is exceeded.", {"Retry-After": retry_after})
        if self.denied:
            return _error(403, "Forbidden", "The application does not have any of the required application "
                                            "permissions (Alert.ReadWrite.All, Alert.Read.All) to access the resource.")
        try:
            return self._page(request)
        except BadRequest as error:
            return _error(400, "BadRequest", str(error))

    def _page(self, request: Request) -> Reply:
        query = {name: values[0] for name, values in request.query.items()}
        repeated = [name for name, values in request.query.items() if len(values) > 1]
        unknown = set(query) - KNOWN_OPTIONS
        if unknown or repeated:
            raise BadRequest(f"Query option(s) not supported: {', '.join(sorted(unknown | set(repeated)))}")
        expand = query.get("$expand")
        if expand is not None and expand != "evidence":
            raise BadRequest(f"Could not find a property named '{expand}' to expand on 'Alert'")
        top = _count(query.get("$top"), "$top", MAX_TOP, minimum=1)
        skip = _count(query.get("$skip"), "$skip", None, minimum=0)
        low, low_inclusive, high, high_inclusive = _parse_filter(query.get("$filter"))
        with self._lock:
            order = self._order
            start = 0 if low is None else (bisect.bisect_left if low_inclusive else bisect.bisect_right)(
                order, (low, "" if low_inclusive else "\U0010ffff"))
            end = len(order) if high is None else (bisect.bisect_right if high_inclusive else bisect.bisect_left)(
                order, (high, "\U0010ffff" if high_inclusive else ""))
            chosen = [self._alerts[alert_id] for _, alert_id in order[start:end][skip:skip + top]]
            more = end - start > skip + top
        if expand is None:
            chosen = [{key: value for key, value in alert.items() if key != "evidence"} for alert in chosen]
        body: dict[str, Any] = {"@odata.context": f"{self.server.url}/api/$metadata#Alerts", "value": chosen}
        if self.next_links and more:
            params = "&".join(f"{name}={value}" for name, value in {**query, "$skip": str(skip + top)}.items())
            body["@odata.nextLink"] = f"{self.server.url}/api/alerts?{params}"
        return Reply(200, orjson.dumps(body), {"Content-Type": "application/json; charset=utf-8"})


def _count(value: str | None, name: str, maximum: int | None, minimum: int) -> int:
    if value is None:
        return MAX_TOP if name == "$top" else 0
    if not value.isdigit() or int(value) < minimum or (maximum is not None and int(value) > maximum):
        raise BadRequest(f"Invalid {name} value '{value}'")
    return int(value)


def _parse_filter(text: str | None) -> tuple[int | None, bool, int | None, bool]:
    """(low, inclusive, high, inclusive) from `lastUpdateTime <op> <time>` clauses joined by ` and `."""
    low: int | None = None
    high: int | None = None
    low_inclusive = high_inclusive = True
    for clause in (text.split(" and ") if text else []):
        parts = clause.split(" ")
        if len(parts) != 3 or parts[0] != "lastUpdateTime" or parts[1] not in COMPARISONS:
            raise BadRequest(f"Invalid filter clause: {clause}")
        ticks = time_ticks(parts[2])
        if parts[1] in ("gt", "ge"):
            if low is not None:
                raise BadRequest(f"Two lower bounds in $filter: {text}")
            low, low_inclusive = ticks, parts[1] == "ge"
        else:
            if high is not None:
                raise BadRequest(f"Two upper bounds in $filter: {text}")
            high, high_inclusive = ticks, parts[1] == "le"
    return low, low_inclusive, high, high_inclusive


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = {"error": {"code": code, "message": message, "target": "forwarder-test"}}
    return Reply.json(body, status, headers)
