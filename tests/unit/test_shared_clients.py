"""The process-wide token providers and request budgets: shared per API + authority + tenant + app, not beyond."""

from __future__ import annotations

import threading

from forwarder.net import shared_clients
from forwarder.net.shared_clients import WindowedPacer
from forwarder.net.tokens import ClientCredential

TENANT = "0b6e2c4a-8d1f-4a3c-9e5b-7d9f1b3d5f67"


def test_two_apps_of_one_tenant_have_their_own_budget_and_token() -> None:
    windows = [(2, 3600.0)]
    first = shared_clients.request_pacer("test-api", "https://login.example.test", TENANT, "app-one", windows)
    second = shared_clients.request_pacer("test-api", "https://login.example.test", TENANT, "app-two", windows)
    assert first is not second
    stop = threading.Event()
    assert first.acquire(stop) and first.acquire(stop)
    stop.set()  # an exhausted budget would now refuse; the other app's is untouched
    assert not first.acquire(stop)
    assert second._delay(0.0) <= 0 and len(second._granted) == 0
    credential = ClientCredential.from_secret("s")
    tokens_one = shared_clients.token_provider("test-api", "https://login.example.test", TENANT, "app-one",
                                               credential, "https://api.example.test/.default")
    tokens_two = shared_clients.token_provider("test-api", "https://login.example.test", TENANT, "app-two",
                                               credential, "https://api.example.test/.default")
    assert tokens_one is not tokens_two


def test_one_app_shares_across_inputs_and_the_tightest_budget_wins() -> None:
    first = shared_clients.request_pacer("test-api-2", "login.example.test", TENANT.upper(), "App", [(100, 60.0)])
    second = shared_clients.request_pacer("test-api-2", "https://login.example.test/", TENANT, "app",
                                          [(40, 60.0), (1500, 3600.0)])
    assert first is second
    assert first.windows == {60.0: 40, 3600.0: 1500}
    other_api = shared_clients.request_pacer("test-api-3", "https://login.example.test", TENANT, "app", [(5, 10.0)])
    assert other_api is not first


def test_windowed_pacer_keeps_every_window() -> None:
    now = [0.0]
    pacer = WindowedPacer([(3, 1.0), (5, 10.0)])
    pacer._clock = lambda: now[0]
    pacer._sleep = lambda stop, seconds: now.__setitem__(0, now[0] + seconds)
    stop = threading.Event()
    grants = []
    for _ in range(12):
        assert pacer.acquire(stop)
        grants.append(round(now[0], 3))
    assert grants == [0.0, 0.0, 0.0, 1.0, 1.0, 10.0, 10.0, 10.0, 11.0, 11.0, 20.0, 20.0]
