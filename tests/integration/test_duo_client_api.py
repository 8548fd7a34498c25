"""DuoAdminClient against the signature-checking fake: signed with duo_client's signer, 429s waited out per key."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import trustme

from forwarder.net.duo_client_api import DuoAdminClient, DuoApiError, DuoBackoff, DuoCredentials, SharedThrottle
from forwarder.net.http_client import StopRequested
from tests.fakes.duo_admin_api import FakeDuoAdminApi
from tests.fakes.https_server import FakeHttpsServer

IKEY = "DIAB12CD34EF56GH78IJ"
SKEY = "q0dhYbW2cXzIvAp3uJk8LmN9oPrStUvWxYz01234"
LOG = logging.getLogger("test.duo")
QUICK = DuoBackoff(0.3, 0.3)


@pytest.fixture
def duo():
    with FakeHttpsServer(trustme.CA()) as server:
        yield FakeDuoAdminApi(server, IKEY, SKEY)


def client(api: FakeDuoAdminApi, ikey: str = IKEY, skey: str = SKEY, stop: threading.Event | None = None,
           backoff: DuoBackoff = QUICK) -> DuoAdminClient:
    credentials = DuoCredentials(f"127.0.0.1:{api.server.port}", ikey, skey)
    return DuoAdminClient(credentials, stop or threading.Event(), LOG, ca_bundle=api.server.ca_path,
                          backoff=backoff, jitter=lambda: 0.999)


def test_parameters_that_need_encoding_and_repeated_values_are_signed_as_duo_checks_them(duo):
    now_ms = int(time.time() * 1000)
    body = client(duo).get("/admin/v2/logs/authentication", {
        "mintime": str(now_ms - 60_000 - 120_000), "maxtime": str(now_ms - 120_000), "limit": "1000",
        "sort": "ts:asc"})
    assert body["stat"] == "OK" and duo.rejected_signatures == 0
    with pytest.raises(DuoApiError, match="next_offset names no record"):
        client(duo).get("/admin/v2/logs/authentication", {
            "mintime": str(now_ms - 180_000), "maxtime": str(now_ms - 120_000), "sort": "ts:asc",
            "next_offset": [str(now_ms - 150_000), "tx with spaces/and+plus"]})
    assert duo.rejected_signatures == 0


def test_a_429_holds_back_every_client_of_the_same_key_and_only_those(duo):
    first, second, other_key = client(duo), client(duo), client(duo, ikey="DIOTHERKEY0000000000")
    assert first.throttle is second.throttle and first.throttle is not other_key.throttle
    duo.throttle("admin", 1)
    started = time.monotonic()
    first.get("/admin/v1/logs/administrator", {"mintime": "1"})
    assert time.monotonic() - started >= 0.29
    assert first.stats.snapshot()["http_throttled"] == 1


def test_a_waiting_sharer_is_released_no_earlier_than_the_backoff():
    throttle = SharedThrottle()
    delay = throttle.throttled(DuoBackoff(0.4, 10.0), jitter=0.5)
    assert 0.2 <= delay <= 0.4
    started = time.monotonic()
    throttle.wait(threading.Event())
    assert time.monotonic() - started >= delay - 0.01
    second = throttle.throttled(DuoBackoff(0.4, 10.0), jitter=0.0)
    assert second == pytest.approx(0.4)  # doubled ceiling (0.8), lower half
    throttle.succeeded()
    assert throttle.throttled(DuoBackoff(0.4, 10.0), jitter=0.0) == pytest.approx(0.2)


def test_a_stop_ends_a_backoff_at_once(duo):
    stop = threading.Event()
    slow = client(duo, ikey="DISTOPKEY00000000000", stop=stop, backoff=DuoBackoff(30.0, 30.0))
    duo.integration_key = "DISTOPKEY00000000000"
    duo.throttle("admin", 1)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            slow.get("/admin/v1/logs/administrator", {"mintime": "1"})
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 10
    while slow.stats.throttled == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    worker.join(5)
    assert not worker.is_alive() and isinstance(outcome[0], StopRequested)
