"""One token provider and one request budget per API, authority, tenant and app for the whole process.

Microsoft counts requests per app and tenant, not per poller: six `entraid`
filesets of one app share Graph's 5 requests per 10 s, and every Defender for
Endpoint poller of an app shares its 100 calls per minute and 1,500 per hour.
Every input that talks to a Microsoft API (graph, o365audit, defender-atp) takes
its TokenProvider and its pacer from here, so the budget holds whichever inputs
and modules ask, and the app's token is fetched once.

When sharers configure different budgets, the tightest applies to all of them:
going over the real limit costs every sharer (a 429 holds them all back).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from forwarder.net.request_pacer import RequestPacer
from forwarder.net.tokens import ClientCredential, TokenProvider

# The APIs whose budgets are kept apart (each has its own limits at Microsoft).
GRAPH = "graph"
O365_MANAGEMENT = "o365-management"
DEFENDER_ENDPOINT = "defender-endpoint"

Window = tuple[int, float]  # at most `requests` in any `seconds`


class WindowedPacer(RequestPacer):
    """A RequestPacer that keeps several windows at once (per minute and per hour, say) over the same grants."""

    def __init__(self, windows: Sequence[Window]) -> None:
        longest = max(windows, key=lambda window: window[1])
        super().__init__(longest[0], longest[1])
        self.windows: dict[float, int] = {}
        self.tighten(windows)

    def tighten(self, windows: Sequence[Window]) -> None:
        """Lowers a window's budget to `requests` when a sharer asks for less; never raises one."""
        with self._lock:
            for requests, seconds in windows:
                if requests < 1 or seconds <= 0:
                    raise ValueError("a request window needs at least 1 request and a positive length")
                self.windows[seconds] = min(requests, self.windows.get(seconds, requests))
            self.per_seconds = max(self.per_seconds, *self.windows)
            self.requests = self.windows.get(self.per_seconds, self.requests)

    def _delay(self, now: float) -> float:
        delay = super()._delay(now)
        granted = self._granted
        for seconds, requests in self.windows.items():
            if len(granted) >= requests:
                delay = max(delay, granted[-requests] + seconds - now)
        return delay


_lock = threading.Lock()
_token_providers: dict[tuple[str, ...], TokenProvider] = {}
_pacers: dict[tuple[str, str, str, str], WindowedPacer] = {}


def _app_key(api: str, authority_host: str, tenant_id: str, client_id: str) -> tuple[str, str, str, str]:
    authority = authority_host.rstrip("/").lower()
    if "://" not in authority:
        authority = f"https://{authority}"
    return api, authority, tenant_id.lower(), client_id.lower()


def token_provider(
    api: str,
    authority_host: str,
    tenant_id: str,
    client_id: str,
    credential: ClientCredential,
    scope: str,
    ca_bundle: str | None = None,
    proxy_url: str | None = None,
) -> TokenProvider:
    """The process's token provider for this app's `scope`; created (and checked) on first use."""
    key = (*_app_key(api, authority_host, tenant_id, client_id), scope, credential.fingerprint(), ca_bundle or "",
           proxy_url or "")
    with _lock:
        provider = _token_providers.get(key)
        if provider is None:
            provider = TokenProvider(authority_host, tenant_id, client_id, credential, scope, ca_bundle, proxy_url)
            _token_providers[key] = provider
        return provider


def request_pacer(api: str, authority_host: str, tenant_id: str, client_id: str,
                  windows: Sequence[Window]) -> WindowedPacer:
    """The process's request budget for this app at this API, tightened to `windows` if they are lower."""
    key = _app_key(api, authority_host, tenant_id, client_id)
    with _lock:
        pacer = _pacers.get(key)
        if pacer is None:
            pacer = WindowedPacer(windows)
            _pacers[key] = pacer
        else:
            pacer.tighten(windows)
        return pacer
