"""Reads one time window of one Entra ID log from Microsoft Graph, page by page.

The Graph input decides which windows to read and what was already delivered
(forwarder/inputs/graph_cursor.py); this module only knows how Graph wants to
be asked: which endpoint, API version and time field serve each record type,
how to write the `$filter`, and that paging means following `@odata.nextLink`
exactly as given. Retries, throttling and token renewal belong to HttpClient;
what is left to translate here are the permanent answers the user must act on
(a missing licence or permission), so they read as one line naming the fix.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from forwarder.net.http_client import HttpClient, PermanentHttpError, redacted_url

SIGN_IN_TYPES = ("interactiveUser", "nonInteractiveUser", "servicePrincipal", "managedIdentity")
NON_PREMIUM_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
ACCESS_DENIED_CODES = frozenset({"accessDenied", "Authorization_RequestDenied", "Forbidden"})


@dataclass(frozen=True)
class GraphEndpoint:
    path: str
    version: str
    time_field: str
    max_page_size: int
    permission: str
    expand: str | None = None  # `$expand`: related resources Graph lists only when asked


# Record types of entraid_ecs.RECORD_TYPES that Graph lists. Page-size caps are
# Microsoft's documented maxima (999 where a page states none). The time field
# is the one an incremental poll filters on: last-update time for records that
# Microsoft updates in place, so an update is read again.
ENDPOINTS: dict[str, GraphEndpoint] = {
    "signinlogs": GraphEndpoint("auditLogs/signIns", "v1.0", "createdDateTime", 1000, "AuditLog.Read.All"),
    "auditlogs": GraphEndpoint("auditLogs/directoryAudits", "v1.0", "activityDateTime", 999, "AuditLog.Read.All"),
    "provisioning": GraphEndpoint("auditLogs/provisioning", "v1.0", "activityDateTime", 999, "AuditLog.Read.All"),
    "risk_detection": GraphEndpoint(
        "identityProtection/riskDetections", "v1.0", "lastUpdatedDateTime", 500, "IdentityRiskEvent.Read.All"
    ),
    "risky_user": GraphEndpoint(
        "identityProtection/riskyUsers", "v1.0", "riskLastUpdatedDateTime", 999, "IdentityRiskyUser.Read.All"
    ),
    "alert": GraphEndpoint("security/alerts_v2", "v1.0", "lastUpdateDateTime", 999, "SecurityAlert.Read.All"),
    "incident": GraphEndpoint(
        "security/incidents", "v1.0", "lastUpdateDateTime", 999, "SecurityIncident.Read.All", expand="alerts"
    ),
}


class GraphPermanentError(Exception):
    """Graph refused in a way only the user can fix; `code` is Graph's error code for /stats and branching."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def graph_time(epoch: float, round_up: bool = False) -> str:
    """An OData DateTimeOffset literal in UTC with milliseconds; rounding outwards keeps the window inclusive."""
    millis = math.ceil(epoch * 1000) if round_up else math.floor(epoch * 1000)
    moment = datetime.datetime.fromtimestamp(millis // 1000, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def sign_in_filter(sign_in_types: list[str]) -> str:
    """The beta-only clause selecting sign-ins by event type; unknown types are refused before any request."""
    unknown = [name for name in sign_in_types if name not in SIGN_IN_TYPES]
    if unknown:
        raise GraphPermanentError(
            f"unknown sign-in type {unknown[0]!r}: use one of {', '.join(SIGN_IN_TYPES)}", "invalidSignInType"
        )
    terms = " or ".join(f"t eq '{name}'" for name in dict.fromkeys(sign_in_types))
    return f"signInEventTypes/any(t: {terms})"


class GraphClient:
    """Lists Entra ID records from one Graph root (https://graph.microsoft.com or a national cloud's host)."""

    def __init__(self, http: HttpClient, graph_root: str) -> None:
        root = graph_root.rstrip("/")
        parts = urlsplit(root)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"the Graph endpoint {graph_root!r} must be an https:// URL")
        self.http = http
        self.graph_root = root
        self._origin = _origin(root)

    def pages(
        self,
        record_type: str,
        start: float,
        end: float,
        page_size: int | None = None,
        sign_in_types: list[str] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yields the records with time in [start, end] (epoch seconds), one list per page, newest first.

        Raises GraphPermanentError for answers the user must fix, ValueError for
        a caller's mistake (unknown record type, sign-in types on another type),
        and lets HttpClient's StopRequested and CredentialError through unchanged.
        """
        endpoint = ENDPOINTS.get(record_type)
        if endpoint is None:
            raise ValueError(f"Graph does not list record type {record_type!r}")
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be at least 1")
        version = endpoint.version
        clauses = [
            f"{endpoint.time_field} ge {graph_time(start)}",
            f"{endpoint.time_field} le {graph_time(end, round_up=True)}",
        ]
        if sign_in_types is not None and record_type != "signinlogs":
            raise ValueError("sign_in_types applies to signinlogs only")
        if sign_in_types is not None and set(sign_in_types) != {"interactiveUser"}:
            if not sign_in_types:
                raise GraphPermanentError("no sign-in types are selected", "invalidSignInType")
            clauses.append(sign_in_filter(sign_in_types))
            version = "beta"
        top = min(page_size or endpoint.max_page_size, endpoint.max_page_size)
        url: str | None = f"{self.graph_root}/{version}/{endpoint.path}"
        params: dict[str, str] | None = {"$filter": " and ".join(clauses), "$top": str(top)}
        if endpoint.expand is not None:
            params["$expand"] = endpoint.expand
        while url is not None:
            body = self._get(record_type, endpoint, url, params)
            records = body.get("value") if isinstance(body, dict) else None
            if not isinstance(records, list):
                raise GraphPermanentError(
                    f"Graph {endpoint.path}: the answer has no 'value' list ({redacted_url(url)})", "invalidResponse"
                )
            yield records
            url = self._next_link(endpoint, body.get("@odata.nextLink"))
            params = None

    def _get(
        self, record_type: str, endpoint: GraphEndpoint, url: str, params: dict[str, str] | None
    ) -> Any:
        try:
            response = self.http.request("GET", url, params=params)
            return _decode_page(response, url)
        except PermanentHttpError as error:
            raise self._explain(record_type, endpoint, error) from None

    def _next_link(self, endpoint: GraphEndpoint, link: Any) -> str | None:
        """The next page's URL, only if it stays on the configured Graph host: our bearer token goes with it."""
        if link is None:
            return None
        if not isinstance(link, str) or _origin(link) != self._origin:
            shown = redacted_url(link) if isinstance(link, str) else repr(link)
            raise GraphPermanentError(
                f"Graph {endpoint.path}: refusing to follow @odata.nextLink to {shown}: it is not on {self.graph_root}",
                "foreignNextLink",
            )
        return link

    def _explain(self, record_type: str, endpoint: GraphEndpoint, error: PermanentHttpError) -> GraphPermanentError:
        where = f"Graph {endpoint.path}"
        if error.status == 403 and NON_PREMIUM_CODE in (error.code, error.inner_code):
            return GraphPermanentError(
                f"{where}: the tenant needs a Microsoft Entra ID P1 or P2 licence to read {record_type} "
                f"through Graph ({NON_PREMIUM_CODE})",
                NON_PREMIUM_CODE,
            )
        if error.status == 403 and (error.code in ACCESS_DENIED_CODES or error.inner_code in ACCESS_DENIED_CODES):
            return GraphPermanentError(
                f"{where}: the app lacks the application permission {endpoint.permission}: add it under API "
                f"permissions of the app registration and grant admin consent ({error.code or 'HTTP 403'})",
                error.code or "accessDenied",
            )
        code = error.code or f"http_{error.status}"
        return GraphPermanentError(f"{where}: {error}", code)


def _decode_page(response: requests.Response, url: str) -> Any:
    """The page's JSON, decoded by orjson: a 1000-record sign-in page is ~2 MB, and decoding it is
    a sixth of the forwarder's work per record in a backfill; the standard decoder is ~1.5x slower.
    A body orjson refuses (not UTF-8, NaN, huge integers) gets requests' more lenient decoding."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pass
    try:
        return response.json()
    except ValueError:
        raise PermanentHttpError(
            response.status_code, "invalid_json", "the answer is not JSON", redacted_url(url)
        ) from None


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or 443
    except ValueError:
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower(), port
