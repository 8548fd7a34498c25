"""Listing Defender for Endpoint alerts by last update time: `GET /api/alerts?$expand=evidence`.

A window is read with `$filter=lastUpdateTime gt <start> and lastUpdateTime le
<end>` and `$top`, page after page with `$skip` (or the `@odata.nextLink` the
API gives, when it gives one) until a page comes back short. An alert updated
while the window is being read leaves it (its new update time is past the
end), which moves every later alert one place forward: a plain `$skip` would
step over one of them. So each `$skip` steps a tenth of a page less than a full
page; the repeated alerts are dropped by their dedupe keys, and an update is
read again by a later window anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson

from forwarder.net.graph_client import graph_time
from forwarder.net.http_client import HttpClient, PermanentHttpError, redacted_url

ALERTS_PATH = "/api/alerts"
PERMISSION = "Alert.Read.All"


class DefenderApiError(Exception):
    """An answer only the user can fix (a missing permission, a refused query); `message` says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def page_step(top: int) -> int:
    """How far `$skip` moves after a full page: a tenth less than the page, so alerts that shift are not missed."""
    return max(1, top - top // 10)


class AlertsClient:
    """Reads alert pages from one API host (`https://api.securitycenter.microsoft.com` or another)."""

    def __init__(self, http: HttpClient, api_url: str) -> None:
        self.http = http
        self.api_url = api_url.rstrip("/")
        self._host = urlsplit(self.api_url).netloc.lower()

    def pages(self, start: float, end: float, top: int) -> Iterator[list[dict[str, Any]]]:
        """Yields the alerts updated in (start, end] (epoch seconds), one list per page; repeats are possible."""
        base = {
            "$expand": "evidence",
            "$filter": f"lastUpdateTime gt {graph_time(start)} and lastUpdateTime le {graph_time(end, round_up=True)}",
            "$top": str(top),
        }
        url = f"{self.api_url}{ALERTS_PATH}"
        params: dict[str, str] | None = base
        skip = 0
        while True:
            body = self._get(url, params)
            alerts = body.get("value") if isinstance(body, dict) else None
            if not isinstance(alerts, list):
                raise DefenderApiError(f"Defender API {ALERTS_PATH}: the answer has no 'value' list")
            yield [alert for alert in alerts if isinstance(alert, dict)]
            next_link = body.get("@odata.nextLink")
            if next_link is not None:
                url, params = self._checked_link(next_link), None
                continue
            if len(alerts) < top:
                return
            skip += page_step(top)
            url, params = f"{self.api_url}{ALERTS_PATH}", {**base, "$skip": str(skip)}

    def _get(self, url: str, params: dict[str, str] | None) -> Any:
        try:
            response = self.http.request("GET", url, params=params)
        except PermanentHttpError as error:
            raise self._explain(error) from None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise DefenderApiError(f"Defender API {redacted_url(url)}: the answer is not JSON "
                                   f"(HTTP {response.status_code})") from None

    def _checked_link(self, link: Any) -> str:
        """The next page's URL, only on the configured host: our bearer token goes with it."""
        if not isinstance(link, str) or urlsplit(link).scheme != "https" or urlsplit(link).netloc.lower() != self._host:
            shown = redacted_url(link) if isinstance(link, str) else repr(link)
            raise DefenderApiError(f"Defender API: refusing to follow @odata.nextLink to {shown}: it is not on "
                                   f"{self.api_url}")
        return link

    def _explain(self, error: PermanentHttpError) -> DefenderApiError:
        where = f"Defender API {ALERTS_PATH} ({self.api_url})"
        if error.status == 403:
            return DefenderApiError(
                f"{where}: HTTP 403: the app lacks the application permission {PERMISSION} (WindowsDefenderATP): "
                "add it under API permissions of the app registration and grant admin consent "
                f"({error.code or 'Forbidden'})")
        if error.status == 404:
            return DefenderApiError(f"{where}: HTTP 404: is api_host a Defender for Endpoint API host?")
        return DefenderApiError(f"{where}: {error}")
