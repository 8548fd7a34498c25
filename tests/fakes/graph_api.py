"""Microsoft Graph's Entra ID log endpoints as a polling client sees them, for integration tests.

Served on a FakeHttpsServer next to FakeIdentityPlatform, whose bearer tokens it
checks. It is deliberately strict: a `$filter` or parameter the real client is
not meant to send gets Graph's 400 `invalidRequest`, so a client bug fails a
test instead of passing silently. Records are listed by their own time, newest
first, whatever order the test added them in, so a record added after a read
(Microsoft publishing late) shows up in the next read of an overlapping window.
"""

from __future__ import annotations

import calendar
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.https_server import FakeHttpsServer, Reply, Request
from tests.fakes.identity_platform import FakeIdentityPlatform

VERSIONS = ("v1.0", "beta")
NON_PREMIUM_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
SIGN_IN_TYPES = ("interactiveUser", "nonInteractiveUser", "servicePrincipal", "managedIdentity")
ISO_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?Z")
TYPE_TERM = re.compile(r"t eq '([A-Za-z]+)'")
ANY_TYPE = re.compile(r"signInEventTypes/any\(t: (t eq '[A-Za-z]+'(?: or t eq '[A-Za-z]+')*)\)")


@dataclass(frozen=True)
class FakeEndpoint:
    time_field: str
    max_top: int
    default_top: int
    permission: str
    denied_code: str
    premium: bool
    expandable: str | None = None  # the one `$expand` it accepts; without it that key is left out of records


ENDPOINTS: dict[str, FakeEndpoint] = {
    "auditLogs/signIns": FakeEndpoint(
        "createdDateTime", 1000, 1000, "AuditLog.Read.All", "Authorization_RequestDenied", premium=True
    ),
    "auditLogs/directoryAudits": FakeEndpoint(
        "activityDateTime", 999, 100, "AuditLog.Read.All", "Authorization_RequestDenied", premium=False
    ),
    "auditLogs/provisioning": FakeEndpoint(
        "activityDateTime", 999, 100, "AuditLog.Read.All", "Authorization_RequestDenied", premium=False
    ),
    "identityProtection/riskDetections": FakeEndpoint(
        "lastUpdatedDateTime", 500, 20, "IdentityRiskEvent.Read.All", "accessDenied", premium=True
    ),
    "identityProtection/riskyUsers": FakeEndpoint(
        "riskLastUpdatedDateTime", 999, 20, "IdentityRiskyUser.Read.All", "accessDenied", premium=True
    ),
    "security/alerts_v2": FakeEndpoint(
        "lastUpdateDateTime", 999, 100, "SecurityAlert.Read.All", "accessDenied", premium=False
    ),
    "security/incidents": FakeEndpoint(
        "lastUpdateDateTime", 999, 100, "SecurityIncident.Read.All", "accessDenied", premium=False,
        expandable="alerts",
    ),
}


class BadRequest(Exception):
    """A query the real Graph would refuse; becomes a 400 invalidRequest."""


@dataclass
class ScriptedFailure:
    endpoint: str
    status: int
    code: str
    remaining: int
    skip: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Listing:
    """What a $skiptoken stands for: the rest of one query's result, fixed when the query was first asked."""

    version: str
    endpoint: str
    records: list[dict[str, Any]]
    top: int


def time_ticks(value: str) -> int:
    """An ISO 8601 UTC time as 100 ns ticks since the epoch (Graph's 7-digit precision, compared exactly)."""
    match = ISO_TIME.fullmatch(value)
    if not match:
        raise BadRequest(f"'{value}' is not a valid DateTimeOffset")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    fraction = (match.group(7) or "").ljust(7, "0")
    return seconds * 10_000_000 + int(fraction)


class FakeGraphApi:
    """Add records with `add(endpoint, record)`; `request_log` holds (path, query) of every request it received."""

    def __init__(
        self, server: FakeHttpsServer, identity: FakeIdentityPlatform, audience: str = "https://graph.microsoft.com"
    ) -> None:
        self.server = server
        self.identity = identity
        self.audience = audience
        self.records: dict[str, list[dict[str, Any]]] = {name: [] for name in ENDPOINTS}
        self.non_premium_tenants: set[str] = set()
        self.denied: set[str] = set()
        self.request_log: list[tuple[str, dict[str, str]]] = []
        self.applications: dict[str, list[dict[str, Any]]] = {}
        self._requests_until_tokens_expire: int | None = None
        self._failures: list[ScriptedFailure] = []
        self._listings: dict[str, _Listing] = {}
        self._lock = threading.Lock()
        versions = "|".join(re.escape(version) for version in VERSIONS)
        names = "|".join(re.escape(name) for name in ENDPOINTS)
        server.route("GET", rf"/({versions})/({names})", self._list)
        server.route("GET", r"/v1\.0/applications\(appId='([^']*)'\)", self._application)

    def add(self, endpoint: str, record: dict[str, Any]) -> dict[str, Any]:
        """Stores a record; it must carry the endpoint's time field. Returns it for convenience."""
        spec = ENDPOINTS[endpoint]
        time_ticks(record[spec.time_field])
        with self._lock:
            self.records[endpoint].append(record)
        return record

    def add_app_secret(self, client_id: str, secret: str, end: float, name: str = "forwarder") -> None:
        """A password credential on the app registration, shown as Graph shows it: a hint, never the secret."""
        with self._lock:
            self.applications.setdefault(client_id, []).append({
                "customKeyIdentifier": None,
                "displayName": name,
                "endDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)),
                "hint": secret[:3],
                "keyId": str(uuid.uuid4()),
                "secretText": None,
                "startDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - 365 * 86400)),
            })

    def expire_tokens_after(self, requests: int) -> None:
        """Every token issued so far expires once `requests` more log requests were answered (mid-paging)."""
        with self._lock:
            self._requests_until_tokens_expire = requests

    def make_non_premium(self, tenant_id: str) -> None:
        """This tenant has no P1/P2 licence: sign-ins and Identity Protection answer 403."""
        self.non_premium_tenants.add(tenant_id.lower())

    def deny(self, endpoint: str) -> None:
        """The app lacks this endpoint's application permission: 403 naming it."""
        self.denied.add(endpoint)

    def fail(
        self, endpoint: str, status: int, count: int = 1, after: int = 0, retry_after: str | None = None,
        code: str | None = None,
    ) -> None:
        """The `count` requests to `endpoint` (either version) that come after the next `after` ones fail."""
        default_code = {429: "TooManyRequests", 503: "serviceNotAvailable", 504: "gatewayTimeout"}.get(status, "error")
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._failures.append(ScriptedFailure(endpoint, status, code or default_code, count, after, headers))

    def requests_to(self, endpoint: str) -> list[dict[str, str]]:
        """Queries of the requests that reached `endpoint`, in order."""
        with self._lock:
            return [query for path, query in self.request_log if path.split("/", 2)[2] == endpoint]

    def _list(self, request: Request, match: re.Match[str]) -> Reply:
        version, endpoint = match.group(1), match.group(2)
        query = {name: values[0] for name, values in request.query.items()}
        with self._lock:
            self.request_log.append((request.path, query))
            expire_now = self._requests_until_tokens_expire == 0
            if self._requests_until_tokens_expire is not None:
                self._requests_until_tokens_expire -= 1
        if expire_now:
            self.identity.advance(self.identity.token_lifetime + 1)
        denied = self.identity.authorize(request, self.audience)
        if denied is not None:
            return denied
        failure = self._scripted_failure(endpoint)
        if failure is not None:
            return failure
        spec = ENDPOINTS[endpoint]
        tenant = self._tenant_of(request)
        if spec.premium and tenant in self.non_premium_tenants:
            return self._error(403, NON_PREMIUM_CODE, "Neither tenant is B2C or tenant doesn't have premium license")
        if endpoint in self.denied:
            message = f"Missing application roles. API required roles: {spec.permission}."
            if spec.denied_code == "Authorization_RequestDenied":
                message = "Insufficient privileges to complete the operation."
            return self._error(403, spec.denied_code, message)
        try:
            listing, offset_token = self._listing(version, endpoint, query)
        except BadRequest as error:
            return self._error(400, "invalidRequest", str(error))
        return self._page(listing, offset_token)

    def _application(self, request: Request, match: re.Match[str]) -> Reply:
        denied = self.identity.authorize(request, self.audience)
        if denied is not None:
            return denied
        if "applications" in self.denied:
            return self._error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        with self._lock:
            credentials = self.applications.get(match.group(1))
        if credentials is None:
            return self._error(404, "Request_ResourceNotFound",
                               f"Resource '{match.group(1)}' does not exist or one of its queried reference-property "
                               "objects are not present.")
        return Reply.json({"@odata.context": f"{self.server.url}/v1.0/$metadata#applications/$entity",
                           "displayName": "forwarder", "passwordCredentials": list(credentials)})

    def _listing(self, version: str, endpoint: str, query: dict[str, str]) -> tuple[_Listing, str | None]:
        unknown = set(query) - {"$filter", "$top", "$skiptoken", "$expand"}
        if unknown:
            raise BadRequest(f"Unsupported query option(s): {', '.join(sorted(unknown))}")
        spec = ENDPOINTS[endpoint]
        expand = query.get("$expand")
        if expand is not None and expand != spec.expandable:
            raise BadRequest(f"Could not find a property named '{expand}' to expand on {endpoint}")
        token = query.get("$skiptoken")
        if token is not None:
            with self._lock:
                listing = self._listings.get(token)
            if listing is None or (listing.version, listing.endpoint) != (version, endpoint):
                raise BadRequest("Invalid or expired $skiptoken")
            return listing, token
        top = self._top(spec, query.get("$top"))
        low, high, types = self._parse_filter(version, endpoint, query.get("$filter"))
        with self._lock:
            candidates = list(self.records[endpoint])
        chosen = []
        for record in candidates:
            ticks = time_ticks(record[spec.time_field])
            if (low is not None and ticks < low) or (high is not None and ticks > high):
                continue
            record_types = set(record.get("signInEventTypes") or ["interactiveUser"])
            if endpoint == "auditLogs/signIns" and not record_types & types:
                continue
            chosen.append((ticks, record))
        chosen.sort(key=lambda pair: pair[0], reverse=True)
        records = [record for _, record in chosen]
        if spec.expandable is not None and expand is None:
            records = [{k: v for k, v in record.items() if k != spec.expandable} for record in records]
        return _Listing(version, endpoint, records, top), None

    def _top(self, spec: FakeEndpoint, value: str | None) -> int:
        if value is None:
            return spec.default_top
        if not value.isdigit() or int(value) < 1:
            raise BadRequest(f"Invalid $top value '{value}'")
        if int(value) > spec.max_top:
            raise BadRequest(f"$top must be at most {spec.max_top}")
        return int(value)

    def _parse_filter(self, version: str, endpoint: str, text: str | None) -> tuple[int | None, int | None, set[str]]:
        """Only `<time> ge <ISO>`, `<time> le <ISO>` and (beta sign-ins) signInEventTypes, joined by `and`."""
        low: int | None = None
        high: int | None = None
        types: set[str] | None = None
        time_field = ENDPOINTS[endpoint].time_field
        for clause in (text.split(" and ") if text else []):
            parts = clause.split(" ")
            if len(parts) == 3 and parts[0] == time_field and parts[1] in ("ge", "le"):
                if parts[1] == "ge" and low is None:
                    low = time_ticks(parts[2])
                    continue
                if parts[1] == "le" and high is None:
                    high = time_ticks(parts[2])
                    continue
            if clause.startswith("signInEventTypes/") and endpoint == "auditLogs/signIns" and types is None:
                if version != "beta":
                    raise BadRequest("Could not find a property named 'signInEventTypes' on 'microsoft.graph.signIn'.")
                types = self._parse_types(clause)
                continue
            raise BadRequest(f"Invalid filter clause: {clause}")
        return low, high, types if types is not None else {"interactiveUser"}

    def _parse_types(self, clause: str) -> set[str]:
        match = ANY_TYPE.fullmatch(clause)
        if not match:
            raise BadRequest(f"Invalid filter clause: {clause}")
        types = set(TYPE_TERM.findall(match.group(1)))
        unknown = types - set(SIGN_IN_TYPES)
        if unknown:
            raise BadRequest(f"Requested value '{sorted(unknown)[0]}' was not found.")
        return types

    def _page(self, listing: _Listing, used_token: str | None) -> Reply:
        page, rest = listing.records[: listing.top], listing.records[listing.top:]
        prefix = f"{self.server.url}/{listing.version}"
        body: dict[str, Any] = {"@odata.context": f"{prefix}/$metadata#{listing.endpoint}", "value": page}
        if rest:
            token = secrets.token_urlsafe(24)
            with self._lock:
                self._listings[token] = _Listing(listing.version, listing.endpoint, rest, listing.top)
            body["@odata.nextLink"] = f"{prefix}/{listing.endpoint}?$top={listing.top}&$skiptoken={token}"
        return Reply.json(body)

    def _scripted_failure(self, endpoint: str) -> Reply | None:
        chosen: ScriptedFailure | None = None
        with self._lock:
            for failure in self._failures:
                if failure.endpoint != endpoint or failure.remaining <= 0:
                    continue
                if failure.skip > 0:
                    failure.skip -= 1
                elif chosen is None:
                    failure.remaining -= 1
                    chosen = failure
        if chosen is None:
            return None
        return self._error(chosen.status, chosen.code, f"scripted HTTP {chosen.status}", chosen.headers)

    def _tenant_of(self, request: Request) -> str:
        header = request.header("Authorization") or ""
        issued = self.identity.issued.get(header.removeprefix("Bearer "))
        return issued.tenant_id if issued else ""

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
        inner = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            "request-id": str(uuid.uuid4()),
            "client-request-id": str(uuid.uuid4()),
        }
        return Reply.json({"error": {"code": code, "message": message, "innerError": inner}}, status, headers)
