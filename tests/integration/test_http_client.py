"""HttpClient against a real HTTPS server speaking Graph's and O365's error and throttling answers."""

from __future__ import annotations

import email.utils
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from forwarder.net.http_client import (
    HttpClient,
    HttpSettings,
    PermanentHttpError,
    RetriesExhausted,
    StopRequested,
    parse_retry_after,
    redacted_url,
)
from forwarder.net.request_pacer import RequestPacer
from tests.fakes.https_server import FakeHttpsServer, Reply

NOW = 1_800_000_000.0


@pytest.fixture
def server() -> Iterator[FakeHttpsServer]:
    with FakeHttpsServer() as fake:
        fake.route("GET", r"/v1.0/ping", lambda request, match: Reply.json({"value": [1, 2, 3]}))
        yield fake
    assert fake.handler_errors == []


class RecordedWaits:
    """A sleeper that only records, so backoff tests take no real time."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, stop: threading.Event, seconds: float) -> None:
        self.waits.append(seconds)


def make_client(server: FakeHttpsServer, waits: RecordedWaits | None = None, **overrides) -> HttpClient:
    settings = HttpSettings(ca_bundle=server.ca_path, connect_timeout=2.0, read_timeout=5.0, **overrides)
    return HttpClient(settings, sleep=waits or RecordedWaits(), jitter=lambda: 1.0, clock=lambda: NOW)


def test_get_json_with_the_configured_ca_despite_requests_ca_bundle(
    server: FakeHttpsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(wrong))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(wrong))
    client = make_client(server, user_agent="forwarder-test/1")
    assert client.get_json(f"{server.url}/v1.0/ping") == {"value": [1, 2, 3]}
    assert server.requests[0].header("User-Agent") == "forwarder-test/1"
    assert client.stats.requests == 1
    assert client.stats.last_status == 200


def test_untrusted_server_is_a_permanent_tls_error(server: FakeHttpsServer, tmp_path: Path) -> None:
    wrong = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong))
    client = HttpClient(HttpSettings(ca_bundle=str(wrong)), sleep=RecordedWaits())
    with pytest.raises(PermanentHttpError) as raised:
        client.get_json(f"{server.url}/v1.0/ping")
    assert raised.value.code == "tls"
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)


def test_retry_after_seconds_is_honoured(server: FakeHttpsServer) -> None:
    server.fail_next(r"/v1.0/ping", 1, status=429, headers={"Retry-After": "7"})
    waits = RecordedWaits()
    client = make_client(server, waits)
    assert client.get_json(f"{server.url}/v1.0/ping")["value"] == [1, 2, 3]
    assert waits.waits == [7.0]
    assert (client.stats.throttled, client.stats.throttled_seconds, client.stats.retries) == (1, 7.0, 1)
    assert len(server.requests_to(r"/v1.0/ping")) == 2


def test_retry_after_really_waits_one_second(server: FakeHttpsServer) -> None:
    server.fail_next(r"/v1.0/ping", 1, status=429, headers={"Retry-After": "1"})
    client = HttpClient(HttpSettings(ca_bundle=server.ca_path))
    started = time.monotonic()
    assert client.get_json(f"{server.url}/v1.0/ping")["value"] == [1, 2, 3]
    assert time.monotonic() - started >= 1.0


def test_retry_after_http_date_is_honoured_and_capped(server: FakeHttpsServer) -> None:
    soon = email.utils.formatdate(NOW + 42, usegmt=True)
    far = email.utils.formatdate(NOW + 86_400, usegmt=True)
    server.fail_next(r"/v1.0/ping", 1, status=503, headers={"Retry-After": soon})
    waits = RecordedWaits()
    client = make_client(server, waits, retry_after_max=120.0)
    client.get_json(f"{server.url}/v1.0/ping")
    server.fail_next(r"/v1.0/ping", 1, status=504, headers={"Retry-After": far})
    client.get_json(f"{server.url}/v1.0/ping")
    assert waits.waits == [42.0, 120.0]


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("3", NOW) == 3.0
    assert parse_retry_after(email.utils.formatdate(NOW - 10, usegmt=True), NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_429_storm_on_a_middle_page_loses_nothing(server: FakeHttpsServer) -> None:
    pages = {str(n): [{"id": f"{n}-{i}"} for i in range(3)] for n in range(4)}

    def page(request, match) -> Reply:
        number = request.param("$skiptoken") or "0"
        body: dict = {"value": pages[number]}
        if int(number) < 3:
            body["@odata.nextLink"] = f"{server.url}/v1.0/auditLogs/signIns?$skiptoken={int(number) + 1}"
        return Reply.json(body)

    server.route("GET", r"/v1.0/auditLogs/signIns", page)
    waits = RecordedWaits()
    client = make_client(server, waits)
    url: str | None = f"{server.url}/v1.0/auditLogs/signIns"
    records = []
    while url:
        body = client.get_json(url)
        records.extend(body["value"])
        url = body.get("@odata.nextLink")
        if len(records) == 3:
            server.fail_next(r"/v1.0/auditLogs/signIns", 5, status=429, headers={"Retry-After": "1"})
    assert [r["id"] for r in records] == [r["id"] for n in range(4) for r in pages[str(n)]]
    assert waits.waits == [1.0] * 5
    assert client.stats.throttled == 5


def test_503_without_retry_after_backs_off_exponentially_up_to_the_cap(server: FakeHttpsServer) -> None:
    server.fail_next(r"/v1.0/ping", 6, status=503)
    waits = RecordedWaits()
    client = make_client(server, waits, backoff_initial=1.0, backoff_max=4.0)
    assert client.get_json(f"{server.url}/v1.0/ping")["value"] == [1, 2, 3]
    assert waits.waits == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_backoff_uses_full_jitter(server: FakeHttpsServer) -> None:
    server.fail_next(r"/v1.0/ping", 2, status=500)
    waits = RecordedWaits()
    settings = HttpSettings(ca_bundle=server.ca_path, backoff_initial=2.0)
    client = HttpClient(settings, sleep=waits, jitter=lambda: 0.25)
    client.get_json(f"{server.url}/v1.0/ping")
    assert waits.waits == [0.5, 1.0]
    assert client.stats.backoff_seconds == 1.5


def test_dropped_connection_is_retried(server: FakeHttpsServer) -> None:
    server.drop_next(r"/v1.0/ping", 2)
    waits = RecordedWaits()
    client = make_client(server, waits)
    assert client.get_json(f"{server.url}/v1.0/ping")["value"] == [1, 2, 3]
    assert len(waits.waits) == 2


def test_connection_refused_until_the_server_comes_up() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    late = FakeHttpsServer(port=port)
    late.route("GET", r"/up", lambda request, match: Reply.json({"up": True}))

    def start_on_second_wait(stop: threading.Event, seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            late.start()

    waits: list[float] = []
    client = HttpClient(HttpSettings(ca_bundle=late.ca_path, connect_timeout=2.0), sleep=start_on_second_wait)
    try:
        assert client.get_json(f"https://127.0.0.1:{port}/up") == {"up": True}
    finally:
        late.close()
    assert len(waits) == 2
    assert client.stats.retries == 2


def test_stop_interrupts_a_long_wait_promptly(server: FakeHttpsServer) -> None:
    server.fail_next(r"/v1.0/ping", 100, status=429, headers={"Retry-After": "3600"})
    stop = threading.Event()
    client = HttpClient(HttpSettings(ca_bundle=server.ca_path), stop=stop)
    outcome: list[BaseException] = []

    def poll() -> None:
        try:
            client.get_json(f"{server.url}/v1.0/ping")
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=poll)
    worker.start()
    deadline = time.monotonic() + 5.0
    while client.stats.throttled == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.stats.throttled_seconds == 300.0
    started = time.monotonic()
    stop.set()
    worker.join(5.0)
    assert time.monotonic() - started < 1.0
    assert len(outcome) == 1 and isinstance(outcome[0], StopRequested)


def test_graph_error_body_becomes_a_typed_permanent_error(server: FakeHttpsServer) -> None:
    body = {
        "error": {
            "code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "message": "Neither tenant is B2C or tenant doesn't have premium license",
            "innerError": {"code": "licenseRequired", "date": "2026-11-01T00:00:00", "request-id": "r1"},
        }
    }
    server.fail_next(r"/v1.0/auditLogs/signIns", 1, status=403, body=body)
    client = make_client(server)
    with pytest.raises(PermanentHttpError) as raised:
        client.get_json(f"{server.url}/v1.0/auditLogs/signIns", params={"$top": "1000"})
    error = raised.value
    assert (error.status, error.code, error.inner_code) == (403, body["error"]["code"], "licenseRequired")
    assert error.message == body["error"]["message"]
    assert error.url == f"{server.url}/v1.0/auditLogs/signIns"
    assert len(server.requests) == 1


def test_o365_error_body_and_af429_throttling(server: FakeHttpsServer) -> None:
    content = r"/api/v1.0/tenant/activity/feed/subscriptions/content"
    server.route("GET", content, lambda request, match: Reply.json([], headers={"NextPageUri": "next"}))
    server.fail_next(content, 2, status=403, body={"error": {"code": "AF429", "message": "Too many requests."}})
    waits = RecordedWaits()
    client = make_client(server, waits)
    response = client.request("GET", f"{server.url}{content.replace(chr(92), '')}")
    assert response.headers["NextPageUri"] == "next"
    assert client.stats.throttled == 2
    server.fail_next(content, 1, status=400, body={"error": {"code": "AF20055", "message": "Start time and end time"}})
    with pytest.raises(PermanentHttpError) as raised:
        client.get_json(f"{server.url}{content.replace(chr(92), '')}")
    assert (raised.value.status, raised.value.code) == (400, "AF20055")


def test_404_with_a_plain_text_body(server: FakeHttpsServer) -> None:
    server.route("GET", r"/gone", lambda request, match: Reply(404, b"<html><body>Not\nhere</body></html>"))
    with pytest.raises(PermanentHttpError) as raised:
        make_client(server).get_json(f"{server.url}/gone")
    assert (raised.value.status, raised.value.code) == (404, "")
    assert "\n" not in str(raised.value)


class CountingTokens:
    """A bearer token source for the resource side; the real MSAL provider is tested in test_tokens.py."""

    def __init__(self) -> None:
        self.current = "token-1"
        self.refreshes = 0

    def token(self) -> str:
        return self.current

    def refresh(self) -> str:
        self.refreshes += 1
        self.current = f"token-{self.refreshes + 1}"
        return self.current


def test_401_refreshes_the_token_once_and_retries(server: FakeHttpsServer, caplog: pytest.LogCaptureFixture) -> None:
    def protected(request, match) -> Reply:
        if request.header("Authorization") != "Bearer token-2":
            return Reply.json({"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}, 401)
        return Reply.json({"value": []})

    server.route("GET", r"/v1.0/protected", protected)
    tokens = CountingTokens()
    client = HttpClient(HttpSettings(ca_bundle=server.ca_path), token_provider=tokens, sleep=RecordedWaits())
    caplog.set_level(logging.DEBUG)
    assert client.get_json(f"{server.url}/v1.0/protected") == {"value": []}
    assert tokens.refreshes == 1
    assert [r.header("Authorization") for r in server.requests] == ["Bearer token-1", "Bearer token-2"]
    assert "token-1" not in caplog.text and "token-2" not in caplog.text


def test_second_401_is_permanent(server: FakeHttpsServer) -> None:
    body = {"error": {"code": "InvalidAuthenticationToken", "message": "Access token validation failure."}}
    server.route("GET", r"/v1.0/protected", lambda request, match: Reply.json(body, 401))
    tokens = CountingTokens()
    client = HttpClient(HttpSettings(ca_bundle=server.ca_path), token_provider=tokens, sleep=RecordedWaits())
    with pytest.raises(PermanentHttpError) as raised:
        client.get_json(f"{server.url}/v1.0/protected")
    assert (raised.value.status, raised.value.code) == (401, "InvalidAuthenticationToken")
    assert tokens.refreshes == 1
    assert len(server.requests) == 2


class SimulatedTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, stop: threading.Event, seconds: float) -> None:
        self.now += seconds


def test_pacer_spaces_requests_and_429_holds_it_back(server: FakeHttpsServer) -> None:
    sim = SimulatedTime()
    pacer = RequestPacer(5, 10.0, clock=sim.clock, sleep=sim.sleep)
    client = HttpClient(HttpSettings(ca_bundle=server.ca_path), pacer=pacer, sleep=RecordedWaits())
    sent_at = []
    for _ in range(11):
        client.get_json(f"{server.url}/v1.0/ping")
        sent_at.append(sim.now)
    assert sent_at == [0.0] * 5 + [10.0] * 5 + [20.0]
    assert len(server.requests) == 11
    server.fail_next(r"/v1.0/ping", 1, status=429, headers={"Retry-After": "30"})
    client.get_json(f"{server.url}/v1.0/ping")
    assert sim.now == 50.0


def test_server_date_is_exposed_for_clock_skew(server: FakeHttpsServer) -> None:
    stamp = email.utils.formatdate(NOW, usegmt=True)
    server.route("GET", r"/dated", lambda request, match: Reply.json({}, headers={"Date": stamp}))
    client = make_client(server)
    client.get_json(f"{server.url}/dated")
    assert client.stats.server_date == NOW


def test_max_attempts_gives_up(server: FakeHttpsServer) -> None:
    server.fail_next(r"/v1.0/ping", 10, status=502)
    client = make_client(server, max_attempts=3)
    with pytest.raises(RetriesExhausted, match="HTTP 502"):
        client.get_json(f"{server.url}/v1.0/ping")
    assert len(server.requests) == 3


def test_retry_log_names_the_url_without_query_or_headers(
    server: FakeHttpsServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.fail_next(r"/v1.0/ping", 1, status=503)
    settings = HttpSettings(ca_bundle=server.ca_path)
    client = HttpClient(settings, token_provider=CountingTokens(), sleep=RecordedWaits(), jitter=lambda: 1.0)
    caplog.set_level(logging.DEBUG)
    client.get_json(f"{server.url}/v1.0/ping?$filter=secretish", headers={"X-Api-Key": "hidden-value"})
    retry_lines = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retry_lines == [f"GET {server.url}/v1.0/ping: HTTP 503 scriptedFailure, retrying in 1.0 s (attempt 1)"]
    assert "hidden-value" not in caplog.text and "token-1" not in caplog.text
    assert redacted_url("https://user:pw@host:8443/p?q=1") == "https://host:8443/p"
