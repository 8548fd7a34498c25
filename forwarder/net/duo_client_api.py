"""Signed GET requests to Duo's Admin API, with Duo's throttling and refusals turned into what an input can act on.

The signature is Duo's own code: `duo_client.client.sign` (signature version 5,
HMAC-SHA512 over the Date, method, host, path, canonical parameters and body
hash) over the parameters as `duo_client.client.normalize_params` prepares
them, and the query string built the same way its `Admin.api_call` builds it.
The request itself goes through our requests session instead of
`duo_client.Admin`, because Admin sleeps through its 429 retries where a stop
cannot interrupt it, pins its own CA bundle and counts nothing for /stats.

A 429 backs off exponentially with jitter, and the wait is shared by every
stream signed with the same integration key (Duo's limit is per key). Each
attempt is signed anew, so a long backoff never sends a stale Date. A refusal
only the user can fix (signature, key, permission) raises DuoApiError with one
line naming the fix; the secret key never appears in a message or a counter.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
import requests
from duo_client.client import normalize_params, sign

from forwarder.net.http_client import HttpStats, StopRequested

SIGNATURE_VERSION = 5
# Duo refuses a request whose Date is more than 5 minutes off its clock; a server Date further off than this
# explains a 40103 better than a wrong secret key does (the margin allows for latency and a Date rounded to s).
CLOCK_SKEW_SUSPECT = 240.0
READ_LOG_FIX = 'give the Admin API application the "Grant read log" permission in the Duo Admin Panel'


class DuoApiError(Exception):
    """An answer that retrying soon will not change; `message` is one line naming the fix."""

    def __init__(self, message: str, code: int | str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class DuoBackoff:
    initial: float = 1.0
    maximum: float = 60.0


class SharedThrottle:
    """The 429 backoff of one integration key, shared by every stream (and input) that signs with it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._throttled_in_a_row = 0
        self._blocked_until = 0.0

    def wait(self, stop: threading.Event) -> None:
        """Blocks until the key may be used again; raises StopRequested when the forwarder stops first."""
        while True:
            with self._lock:
                delay = self._blocked_until - self._clock()
            if delay <= 0:
                return
            if stop.wait(delay):
                raise StopRequested()

    def throttled(self, backoff: DuoBackoff, jitter: float) -> float:
        """Records a 429; returns the wait before the next request with this key (`jitter` in [0, 1))."""
        with self._lock:
            self._throttled_in_a_row += 1
            ceiling = min(backoff.maximum, backoff.initial * 2 ** min(self._throttled_in_a_row - 1, 30))
            delay = ceiling / 2 + ceiling / 2 * jitter
            self._blocked_until = max(self._blocked_until, self._clock() + delay)
            return delay

    def succeeded(self) -> None:
        with self._lock:
            self._throttled_in_a_row = 0


_THROTTLES: dict[tuple[str, str], SharedThrottle] = {}
_THROTTLES_LOCK = threading.Lock()


def shared_throttle(api_hostname: str, integration_key: str) -> SharedThrottle:
    """The one SharedThrottle of this key in this process."""
    with _THROTTLES_LOCK:
        return _THROTTLES.setdefault((api_hostname.lower(), integration_key), SharedThrottle())


@dataclass(frozen=True)
class DuoCredentials:
    api_hostname: str
    integration_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"DuoCredentials({self.api_hostname!r}, {self.integration_key!r}, secret_key=<redacted>)"


class DuoAdminClient:
    """GETs from one Duo account's Admin API; `get` returns the decoded JSON body of a `"stat": "OK"` answer."""

    def __init__(
        self,
        credentials: DuoCredentials,
        stop: threading.Event,
        logger: logging.Logger | logging.LoggerAdapter,
        ca_bundle: str | None = None,
        proxy_url: str | None = None,
        backoff: DuoBackoff = DuoBackoff(),
        timeout: float = 60.0,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self.host = credentials.api_hostname.lower()
        self.stop = stop
        self.stats = HttpStats()
        # Duo's clock minus ours (seconds) at the last answer, from its Date header; None before the first.
        self.clock_offset: float | None = None
        self.throttle = shared_throttle(self.host, credentials.integration_key)
        self._log = logger
        self._backoff = backoff
        self._timeout = timeout
        self._jitter = jitter
        self._clock = clock
        self._verify: str | bool = ca_bundle or True
        self._proxies = {"http": proxy_url, "https": proxy_url} if proxy_url else None
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "forwarder"

    def close(self) -> None:
        self._session.close()

    def get(self, path: str, params: Mapping[str, str | list[str]]) -> dict[str, Any]:
        """Raises DuoApiError for refusals the user must fix and StopRequested when the forwarder stops."""
        return self.get_page(path, params)[0]

    def get_page(self, path: str, params: Mapping[str, str | list[str]]) -> tuple[dict[str, Any], bytes]:
        """`get`, with the answer's raw bytes beside its decoded body (a worker process decodes them again)."""
        failures = 0
        where = f"Duo Admin API {self.host}{path}"
        while True:
            self.throttle.wait(self.stop)
            try:
                response = self._send(path, params)
            except requests.exceptions.SSLError as error:
                raise DuoApiError(f"{where}: TLS handshake failed: {_first_line(error)}; check "
                                  "ssl.certificate_authorities and proxy_url", "tls") from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
                failures += 1
                self._wait_after_failure(where, _first_line(error), failures)
                continue
            body = _json_body(response)
            code = body.get("code", "") if isinstance(body, dict) else ""
            if response.status_code == 200 and isinstance(body, dict) and body.get("stat") == "OK":
                self.throttle.succeeded()
                return body, response.content
            if response.status_code == 429:
                delay = self.throttle.throttled(self._backoff, self._jitter())
                self.stats.count(retries=1, throttled=1, throttled_seconds=delay)
                self._log.warning("%s: HTTP 429 (rate limited), every request with integration key %s waits "
                                  "%.1f s", where, self._credentials.integration_key, delay)
                continue
            if response.status_code >= 500 or response.status_code == 408:
                failures += 1
                self._wait_after_failure(where, f"HTTP {response.status_code} {code}".strip(), failures)
                continue
            raise self._refusal(where, response, body)

    def _send(self, path: str, params: Mapping[str, str | list[str]]) -> requests.Response:
        """One attempt, signed now: the Date header is exactly the string that was signed."""
        credentials = self._credentials
        normalized = normalize_params(dict(params))
        date = email.utils.formatdate()
        authorization = sign(credentials.integration_key, credentials.secret_key, "GET", self.host, path, date,
                             SIGNATURE_VERSION, normalized, body="", digestmod=hashlib.sha512)
        url = f"https://{self.host}{path}?{urlencode(normalized, doseq=True)}"
        self.stats.count(requests=1)
        response = self._session.get(url, headers={"Date": date, "Authorization": authorization},
                                     verify=self._verify, proxies=self._proxies, timeout=(10.0, self._timeout))
        self.stats.last_status = response.status_code
        server_date = response.headers.get("Date")
        if server_date:
            try:
                self.stats.server_date = email.utils.parsedate_to_datetime(server_date).timestamp()
                self.clock_offset = self.stats.server_date - self._clock()
            except (TypeError, ValueError, IndexError):
                self.stats.server_date = None
        return response

    def _wait_after_failure(self, where: str, reason: str, failures: int) -> None:
        """Server errors and network failures: this stream alone backs off (exponential, full jitter)."""
        ceiling = min(self._backoff.maximum, self._backoff.initial * 2 ** min(failures - 1, 30))
        delay = ceiling * self._jitter()
        self.stats.count(retries=1, backoff_seconds=delay)
        self._log.warning("%s: %s, retrying in %.1f s (attempt %d)", where, reason, delay, failures)
        if self.stop.wait(delay):
            raise StopRequested()

    def _refusal(self, where: str, response: requests.Response, body: Any) -> DuoApiError:
        status = response.status_code
        code = body.get("code", "") if isinstance(body, dict) else ""
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        ikey = self._credentials.integration_key
        if code == 40103:
            skew = None if self.stats.server_date is None else self.stats.server_date - self._clock()
            if skew is not None and abs(skew) > CLOCK_SKEW_SUSPECT:
                return DuoApiError(
                    f"{where}: request signature refused (40103) because this host's clock is {abs(skew):.0f} s "
                    f"{'behind' if skew > 0 else 'ahead of'} Duo's (its Date header); Duo allows 5 minutes: "
                    "synchronise the clock (NTP)", code)
            return DuoApiError(
                f"{where}: request signature refused (40103): the secret key does not belong to integration key "
                f"{ikey}, or the host name is wrong: check secret_key and api_hostname (clock in sync with Duo's)",
                code)
        if code in (40101, 40102):
            return DuoApiError(f"{where}: integration key {ikey} refused ({code} {message}): check "
                               "integration_key and api_hostname (an Admin API application's keys)", code)
        if code == 40301 or status == 403:
            return DuoApiError(f"{where}: access forbidden ({code or 403}): {READ_LOG_FIX}", code or 403)
        detail = body.get("message_detail", "") if isinstance(body, dict) else ""
        text = " ".join(str(part) for part in (code, message, detail) if part) or response.reason or ""
        return DuoApiError(f"{where}: HTTP {status} {text}", code or status)


def _json_body(response: requests.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
