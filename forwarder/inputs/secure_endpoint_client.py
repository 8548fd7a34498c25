"""HTTP for the `cisco-secure-endpoint` input: Basic auth, gzip, and Cisco's hourly request quota.

Cisco counts requests per API credential per hour and says how many remain on
every answer (`X-RateLimit-*` in the answers seen, `X-Rate-Limit-*` in Cisco's
text; the reset is seconds until the quota renews, not an epoch time as
Filebeat's httpjson assumes). Spending the quota to 0 gets 429s for the rest of
the hour, so the client paces itself once few requests remain: the rest of the
window is spread over what is left, and at 0 it waits for the reset. A 429
waits for the reset it names. Server and network failures back off
exponentially with jitter; an answer only the user can fix (401, 403, 400, a
TLS failure) raises `SecureEndpointRefused`. Every wait ends when the
forwarder stops.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import requests

from forwarder.inputs.secure_endpoint_config import SecureEndpointConfig
from forwarder.net.http_client import HttpStats, StopRequested, parse_retry_after, redacted_url

# Below this share of the hourly quota the client starts spreading its requests over the rest of the hour.
RESERVE_SHARE = 0.05
MIN_RESERVE = 2
# A reset beyond an hour is not Cisco's hourly quota; it is capped so a bad header cannot stall the input.
MAX_QUOTA_WAIT = 3600.0
RATE_HEADERS = ("X-RateLimit-", "X-Rate-Limit-")


class SecureEndpointRefused(Exception):
    """An answer waiting will not change; `message` names the fix and never holds the API key."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def rate_header(headers: Any, name: str) -> float | None:
    """`Limit`, `Remaining` or `Reset` in either spelling (headers are case-insensitive); None when absent."""
    for prefix in RATE_HEADERS:
        value = headers.get(prefix + name)
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


class SecureEndpointClient:
    def __init__(self, config: SecureEndpointConfig, stop: threading.Event, logger: logging.Logger | Any,
                 jitter: Callable[[], float] = random.random) -> None:
        self._config = config
        self._stop = stop
        self._log = logger
        self._jitter = jitter
        self.stats = HttpStats()
        self.quota_waits = 0
        self.quota_wait_seconds = 0.0
        self.quota_remaining: float | None = None
        self._session = requests.Session()
        self._session.auth = (config.client_id, config.api_key)
        self._session.headers.update({"Accept": "application/json", "Accept-Encoding": "gzip",
                                      "User-Agent": "forwarder"})
        self._verify: str | bool = config.ca_bundle or True
        self._proxies = {"http": config.proxy_url, "https": config.proxy_url} if config.proxy_url else None
        self._pause = 0.0

    def close(self) -> None:
        self._session.close()

    def snapshot(self) -> dict[str, Any]:
        values = self.stats.snapshot()
        values.update(quota_waits=self.quota_waits, quota_wait_seconds=round(self.quota_wait_seconds, 1),
                      quota_remaining=self.quota_remaining)
        return values

    def get(self, url: str, params: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """The JSON answer of a GET; raises SecureEndpointRefused or StopRequested."""
        return self.get_page(url, params)[0]

    def get_page(self, url: str, params: list[tuple[str, str]] | None = None) -> tuple[dict[str, Any], bytes]:
        """`get`, with the answer's raw (gunzipped) bytes beside its body, which `decode_body` reads the same way."""
        attempt = 0
        while True:
            self._wait(self._pause, quota=True)
            self._pause = 0.0
            attempt += 1
            try:
                self.stats.count(requests=1)
                response = self._session.get(url, params=params, verify=self._verify, proxies=self._proxies,
                                             timeout=(10.0, 60.0))
            except requests.exceptions.SSLError as error:
                raise SecureEndpointRefused(f"TLS with {redacted_url(url)} failed ({_first_line(error)}): check "
                                            "ssl.certificate_authorities and the proxy") from None
            except (requests.ConnectionError, requests.Timeout) as error:
                self._back_off(url, attempt, _first_line(error))
                continue
            self.stats.last_status = response.status_code
            self._read_quota(response)
            status = response.status_code
            if status == 429:
                self._pause = 0.0  # the wait for the reset below is the pause
                self._wait_for_reset(url, response)
                continue
            if status >= 500 or status == 408:
                self._back_off(url, attempt, f"HTTP {status}")
                continue
            if status >= 400:
                raise SecureEndpointRefused(self._refusal(url, response))
            try:
                body = decode_body(response.content)
            except ValueError:
                self._back_off(url, attempt, "the answer is not JSON")
                continue
            if isinstance(body, dict):
                return body, response.content
            self._back_off(url, attempt, "the answer is not a JSON object")

    def _read_quota(self, response: requests.Response) -> None:
        """Sets the pause before the next request from the quota headers: none while plenty remains."""
        limit = rate_header(response.headers, "Limit")
        remaining = rate_header(response.headers, "Remaining")
        reset = rate_header(response.headers, "Reset")
        self.quota_remaining = remaining
        if remaining is None or reset is None:
            return
        reserve = max(MIN_RESERVE, (limit or 0) * RESERVE_SHARE)
        if remaining == 0:
            self._pause = min(reset, MAX_QUOTA_WAIT)
        elif remaining < reserve:
            self._pause = min(reset / remaining, MAX_QUOTA_WAIT)

    def _wait_for_reset(self, url: str, response: requests.Response) -> None:
        reset = rate_header(response.headers, "Reset")
        if reset is None:
            reset = parse_retry_after(response.headers.get("Retry-After"), 0.0)
        delay = min(reset if reset is not None else 60.0, MAX_QUOTA_WAIT)
        self.stats.count(retries=1, throttled=1, throttled_seconds=delay)
        self._log.warning("GET %s: HTTP 429, the hourly request quota is spent; waiting %.0f s for its reset",
                          redacted_url(url), delay)
        self._wait(delay, quota=False)

    def _back_off(self, url: str, attempt: int, reason: str) -> None:
        ceiling = min(self._config.backoff_max, self._config.backoff_init * 2 ** min(attempt - 1, 30))
        delay = self._jitter() * ceiling
        self.stats.count(retries=1, backoff_seconds=delay)
        self._log.warning("GET %s: %s, retrying in %.1f s (attempt %d)", redacted_url(url), reason, delay, attempt)
        self._wait(delay, quota=False)

    def _wait(self, seconds: float, quota: bool) -> None:
        if seconds > 0:
            if quota:
                self.quota_waits += 1
                self.quota_wait_seconds += seconds
            self._stop.wait(seconds)
        if self._stop.is_set():
            raise StopRequested()

    def _refusal(self, url: str, response: requests.Response) -> str:
        status = response.status_code
        detail = _error_detail(response)
        where = redacted_url(url)
        if status == 401:
            return (f"{where} refused client id {self._config.client_id!r} and its API key (HTTP 401{detail}): "
                    "check client_id and api_key (Secure Endpoint console → Administration → API Credentials) and "
                    "that url is your console's region")
        if status == 403:
            return (f"{where} denied client id {self._config.client_id!r} (HTTP 403{detail}): give the API "
                    "credential read access to events in the Secure Endpoint console")
        return f"{where} answered HTTP {status}{detail}: check event_types and limit"


def decode_body(raw: bytes) -> Any:
    """An answer's JSON with the standard library, which keeps integers beyond 64 bits exact (orjson would make
    them floats); raises ValueError when it is not JSON."""
    return json.loads(raw)


def _error_detail(response: requests.Response) -> str:
    """`: description (details)` from Cisco's error body, if it has one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        details = "; ".join(str(item) for item in first.get("details") or [])
        text = str(first.get("description") or "") + (f" ({details})" if details else "")
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
    return f": {text[:300]}" if text else ""


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
