"""The HTTP client every polling input (Graph, O365, …) uses to talk to its API.

It owns the retry policy so inputs only see two outcomes: a response, or a
typed error that says whether waiting can help. Throttling answers (429, 503,
504, O365's AF429 on a 403) are waited out for as long as the server asks;
other server and network failures back off exponentially with full jitter; a
401 gets one fresh token; anything else the user must fix raises
`PermanentHttpError`. Every wait ends early when the forwarder stops.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests

from forwarder.net.request_pacer import RequestPacer, Sleeper, wait_on_stop
from forwarder.net.tokens import CredentialError

THROTTLE_STATUSES = frozenset({429, 503, 504})
THROTTLE_CODES = frozenset({"AF429"})
log = logging.getLogger(__name__)


class StopRequested(Exception):
    """The forwarder is stopping; the caller should return without treating this as an error."""


class PermanentHttpError(Exception):
    """An answer that retrying will not change (bad request, missing permission, unknown resource)."""

    def __init__(self, status: int, code: str, message: str, url: str, inner_code: str = "") -> None:
        self.status = status
        self.code = code
        self.message = message
        self.url = url
        self.inner_code = inner_code
        super().__init__(f"HTTP {status} {code or 'error'}: {message} ({url})" if status else f"{message} ({url})")


class RetriesExhausted(Exception):
    """Raised only when the client was built with `max_attempts` (one-shot tools, not inputs)."""


class BearerTokenSource(Protocol):
    def token(self) -> str: ...

    def refresh(self) -> str: ...


@dataclass(frozen=True)
class HttpSettings:
    ca_bundle: str | None = None
    proxy_url: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    user_agent: str = "forwarder"
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 300.0
    max_attempts: int | None = None


class HttpStats:
    """Counters for /stats and progress displays; `server_date` is the last Date header (epoch seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.throttled = 0
        self.throttled_seconds = 0.0
        self.backoff_seconds = 0.0
        self.last_status = 0
        self.server_date: float | None = None

    def count(self, **increments: float) -> None:
        with self._lock:
            for name, amount in increments.items():
                setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, Any]:
        return {
            "http_requests": self.requests,
            "http_retries": self.retries,
            "http_throttled": self.throttled,
            "http_throttled_seconds": round(self.throttled_seconds, 1),
            "http_backoff_seconds": round(self.backoff_seconds, 1),
            "http_last_status": self.last_status,
        }


def redacted_url(url: str) -> str:
    """The URL as logged and put in errors: no query string, no user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def parse_error_body(response: requests.Response) -> tuple[str, str, str]:
    """(code, message, inner code) from Graph's, O365's or an OAuth error body; empty code when none."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return "", text[:200] or response.reason or "", ""
    if not isinstance(body, dict):
        return "", str(body)[:200], ""
    error = body.get("error")
    if isinstance(error, dict):
        inner = error.get("innerError") or error.get("innererror") or {}
        inner_code = inner.get("code", "") if isinstance(inner, dict) else ""
        return str(error.get("code") or ""), str(error.get("message") or ""), str(inner_code or "")
    if isinstance(error, str):
        return error, str(body.get("error_description") or ""), ""
    return "", str(body)[:200], ""


class HttpClient:
    """A requests.Session with our TLS, proxy, pacing, auth and retry policy applied to every call."""

    def __init__(
        self,
        settings: HttpSettings,
        token_provider: BearerTokenSource | None = None,
        pacer: RequestPacer | None = None,
        stop: threading.Event | None = None,
        logger: logging.Logger | logging.LoggerAdapter = log,
        sleep: Sleeper = wait_on_stop,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.token_provider = token_provider
        self.pacer = pacer
        self.stop = stop or threading.Event()
        self.stats = HttpStats()
        self._log = logger
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self._verify: str | bool = settings.ca_bundle or True
        self._proxies = {"http": settings.proxy_url, "https": settings.proxy_url} if settings.proxy_url else None
        self._session = requests.Session()
        self._session.headers["User-Agent"] = settings.user_agent

    def close(self) -> None:
        self._session.close()

    def get_json(
        self, url: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        response = self.request("GET", url, params=params, headers=headers)
        try:
            return response.json()
        except ValueError:
            raise PermanentHttpError(
                response.status_code, "invalid_json", "the answer is not JSON", redacted_url(url)
            ) from None

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
    ) -> requests.Response:
        """Sends until a 2xx/3xx answer arrives; raises PermanentHttpError, StopRequested or RetriesExhausted."""
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            if self.stop.is_set():
                raise StopRequested()
            if self.pacer is not None and not self.pacer.acquire(self.stop):
                raise StopRequested()
            try:
                response = self._send(method, url, params, headers, json, data, refreshed)
            except requests.exceptions.SSLError as error:
                reason = f"TLS handshake failed: {_first_line(error)}"
                raise PermanentHttpError(0, "tls", reason, redacted_url(url)) from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
                self._retry(method, url, attempt, _first_line(error), None, throttled=False)
                continue
            except CredentialError as error:
                if error.permanent:
                    raise
                self._retry(method, url, attempt, str(error), None, throttled=False)
                continue
            status = response.status_code
            if status < 400:
                return response
            code, message, inner = parse_error_body(response)
            if status == 401 and self.token_provider is not None and not refreshed:
                refreshed = True
                attempt -= 1
                self._log.info("%s %s: HTTP 401, renewing the access token once", method, redacted_url(url))
                continue
            if status in THROTTLE_STATUSES or code in THROTTLE_CODES:
                self._retry(method, url, attempt, _describe(status, code), response.headers.get("Retry-After"), True)
                continue
            if status >= 500 or status == 408:
                self._retry(method, url, attempt, _describe(status, code), None, throttled=False)
                continue
            raise PermanentHttpError(status, code, message or response.reason or "", redacted_url(url), inner)

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        json: Any,
        data: Any,
        fresh_token: bool,
    ) -> requests.Response:
        merged = dict(headers or {})
        if self.token_provider is not None:
            token = self.token_provider.refresh() if fresh_token else self.token_provider.token()
            merged["Authorization"] = f"Bearer {token}"
        self.stats.count(requests=1)
        response = self._session.request(
            method,
            url,
            params=params,
            headers=merged,
            json=json,
            data=data,
            verify=self._verify,
            proxies=self._proxies,
            timeout=(self.settings.connect_timeout, self.settings.read_timeout),
        )
        self.stats.last_status = response.status_code
        date = response.headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                self.stats.server_date = email.utils.parsedate_to_datetime(date).timestamp()
        return response

    def _retry(
        self, method: str, url: str, attempt: int, reason: str, retry_after: str | None, throttled: bool
    ) -> None:
        limit = self.settings.max_attempts
        if limit is not None and attempt >= limit:
            raise RetriesExhausted(f"{method} {redacted_url(url)}: {reason} (gave up after {attempt} attempts)")
        server_wait = parse_retry_after(retry_after, self._clock()) if throttled else None
        if server_wait is not None:
            delay = min(server_wait, self.settings.retry_after_max)
        else:
            ceiling = min(self.settings.backoff_max, self.settings.backoff_initial * 2 ** min(attempt - 1, 30))
            delay = self._jitter() * ceiling
        if throttled:
            self.stats.count(retries=1, throttled=1, throttled_seconds=delay)
            if self.pacer is not None:
                self.pacer.defer(delay)
        else:
            self.stats.count(retries=1, backoff_seconds=delay)
        self._log.warning(
            "%s %s: %s, retrying in %.1f s (attempt %d)", method, redacted_url(url), reason, delay, attempt
        )
        self._sleep(self.stop, delay)
        if self.stop.is_set():
            raise StopRequested()


def _describe(status: int, code: str) -> str:
    return f"HTTP {status} {code}" if code else f"HTTP {status}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
