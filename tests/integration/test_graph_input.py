"""The graph input end to end: real MSAL and HttpClient against the fake identity platform and Graph, real pipeline."""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from forwarder.inputs.base import InputContext, PermanentInputError
from forwarder.inputs.graph import CHUNK_RECORDS, INPUT_TYPE, MAX_CHUNK, MIN_CHUNK, GraphInput, next_chunk
from forwarder.inputs.graph_config import GraphConfig, parse_config
from forwarder.net.graph_client import graph_time
from forwarder.pipeline.client import PipelineClient, Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section
from tests.conftest import PipelineHarness
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform

TENANT = "3f1a5c7e-9b2d-4e6f-8a0c-2d4f6a8c0e21"
CLIENT = "7b9d1f3a-5c7e-4a9b-8d0f-1a3c5e7a9c32"
SECRET = "input~Client.Secret-Must_Not_Leak"
SIGN_INS = "auditLogs/signIns"
ALERTS = "security/alerts_v2"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[FakeHttpsServer]:
    with FakeHttpsServer(ca) as fake:
        yield fake
    assert fake.handler_errors == []


@pytest.fixture
def identity(server: FakeHttpsServer) -> FakeIdentityPlatform:
    platform = FakeIdentityPlatform(server)
    platform.register_app(TENANT, CLIENT, secret=SECRET)
    return platform


@pytest.fixture
def graph(server: FakeHttpsServer, identity: FakeIdentityPlatform) -> FakeGraphApi:
    return FakeGraphApi(server, identity)


def graph_config(server: FakeHttpsServer, **overrides: Any) -> GraphConfig:
    data = {
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "client_secret": SECRET,
        "api": {"login_endpoint": server.url, "graph_endpoint": server.url},
        "ssl": {"certificate_authorities": [server.ca_path]},
        "record_types": ["signinlogs"],
        "poll_interval": "50ms",
        "initial_lookback": "1h",
        "late_arrival_window": "10m",
        "requests_per_10s": 10000,
        **overrides,
    }
    data = {key: value for key, value in data.items() if value is not None}
    problems: list = []
    section = Section(data, "", "test.yml", problems)
    config = parse_config(section)
    section.finish()
    assert problems == []
    return config


def standalone_mapping(config: GraphConfig) -> list[Processor]:
    """The processors a `graph` input configured on its own maps its records with, built as config loading does."""
    items = INPUT_TYPE.standalone_processors(config)
    problems: list = []
    processors = build_processors([Section(item, "processors", "test.yml", problems) for item in items])
    assert problems == []
    return processors


def connect(harness: PipelineHarness, config: GraphConfig, input_id: str,
            module_processors: list[Processor] | None = None) -> PipelineClient:
    mapping = standalone_mapping(config) if module_processors is None else module_processors
    return harness.connect("graph", input_id=input_id, module_processors=mapping)


class RunningInput:
    """One graph input on its own thread, as the supervisor runs it."""

    def __init__(self, harness: PipelineHarness, config: GraphConfig, input_id: str = "entra",
                 module_processors: list[Processor] | None = None) -> None:
        self.client: PipelineClient = connect(harness, config, input_id, module_processors)
        self.stop = threading.Event()
        self.context = InputContext(
            input_id, self.client, self.stop, logging.getLogger("test.graph"), self.client.stats, harness.data_path
        )
        self.input = GraphInput(config, self.context)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.input.run()
        except BaseException as error:  # handed to the test
            self.failure = error

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert self.failure is None


@pytest.fixture
def start(harness: PipelineHarness) -> Iterator[Callable[..., RunningInput]]:
    started: list[RunningInput] = []

    def start_input(config: GraphConfig, input_id: str = "entra",
                    module_processors: list[Processor] | None = None) -> RunningInput:
        running = RunningInput(harness, config, input_id, module_processors)
        started.append(running)
        return running

    yield start_input
    for running in started:
        running.stop.set()
        running.thread.join(10)


def add_sign_in(graph: FakeGraphApi, record_id: str, age: float) -> dict[str, Any]:
    return graph.add(SIGN_INS, {
        "id": record_id,
        "createdDateTime": graph_time(time.time() - age),
        "signInEventTypes": ["interactiveUser"],
        "userPrincipalName": f"{record_id}@contoso.example",
        "ipAddress": "203.0.113.7",
        "status": {"errorCode": 0},
    })


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def ids(events: list) -> list[str]:
    return [event.meta["_id"] for event in events]


def test_paging_delivers_every_record_once_with_ecs_fields(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput]
) -> None:
    records = {f"s-{n:03d}": add_sign_in(graph, f"s-{n:03d}", 1000 - n * 10) for n in range(23)}
    running = start(graph_config(server, page_size=5))
    events = harness.take(23)
    assert sorted(ids(events)) == sorted(records)
    first = events[0]
    assert orjson.loads(first.fields["message"]) == records[first.meta["_id"]]
    assert first.fields["input"]["type"] == "graph"
    assert first.fields["cloud"]["provider"] == "Azure"
    assert first.fields["source"]["ip"] == "203.0.113.7"
    assert "original" not in first.fields.get("event", {})
    assert abs(first.timestamp - (time.time() - 1000)) < 300
    queries = graph.requests_to(SIGN_INS)
    assert graph.request_log[0][0] == "/beta/auditLogs/signIns"
    assert queries[0]["$top"] == "5"
    marker = add_sign_in(graph, "marker", 5)
    assert ids(harness.take(1)) == [marker["id"]]
    running.halt()


def test_late_record_is_delivered_once_and_the_overlap_never_twice(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput]
) -> None:
    for n in range(4):
        add_sign_in(graph, f"early-{n}", 120 + n)
    running = start(graph_config(server))
    assert sorted(ids(harness.take(4))) == [f"early-{n}" for n in range(4)]
    polls = len(graph.requests_to(SIGN_INS))
    wait_for(lambda: len(graph.requests_to(SIGN_INS)) > polls + 1)
    add_sign_in(graph, "late", 100)
    assert ids(harness.take(1)) == ["late"]
    polls = len(graph.requests_to(SIGN_INS))
    wait_for(lambda: len(graph.requests_to(SIGN_INS)) > polls + 2)
    add_sign_in(graph, "marker", 1)
    assert ids(harness.take(1)) == ["marker"]
    running.halt()


def test_restart_resumes_from_the_committed_cursor(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput]
) -> None:
    for n in range(12):
        add_sign_in(graph, f"old-{n:02d}", 300 + n)
    config = graph_config(server, page_size=4)
    first = start(config)
    assert len(set(ids(harness.take(12)))) == 12
    assert first.client.wait_acked(5)
    first.halt()
    assert "signinlogs" in harness.registry.with_prefix("graph::entra::")

    add_sign_in(graph, "new-1", 60)
    add_sign_in(graph, "new-0", 30)
    second = start(config)
    assert ids(harness.take(2)) == ["new-0", "new-1"]
    add_sign_in(graph, "marker", 1)
    assert ids(harness.take(1)) == ["marker"]
    second.halt()


def test_unacknowledged_page_is_delivered_again_after_restart(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput]
) -> None:
    for n in range(6):
        add_sign_in(graph, f"r-{n}", 200 + n)
    config = graph_config(server, page_size=3)
    first = start(config)
    unacked = harness.take(6, ack=False)
    assert len(unacked) == 6
    first.halt()

    second = start(config)
    assert sorted(ids(harness.take(6))) == sorted(ids(unacked))
    second.halt()


def test_updated_alert_is_forwarded_again(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput]
) -> None:
    created = graph_time(time.time() - 500)
    alert = graph.add(ALERTS, {"id": "da-1", "createdDateTime": created, "lastUpdateDateTime": created,
                               "status": "new", "severity": "high"})
    running = start(graph_config(server, record_types=["alert"], preserve_original_event=True))
    [first] = harness.take(1)
    assert first.meta["_id"] == f"da-1|{created}"
    assert first.fields["event"]["original"] == first.fields["message"]

    updated = graph_time(time.time() - 2)
    with graph._lock:
        graph.records[ALERTS].remove(alert)
        graph.records[ALERTS].append({**alert, "lastUpdateDateTime": updated, "status": "resolved"})
    [second] = harness.take(1)
    assert second.meta["_id"] == f"da-1|{updated}"
    assert orjson.loads(second.fields["message"])["status"] == "resolved"
    running.halt()


def run_once(harness: PipelineHarness, config: GraphConfig) -> None:
    client = connect(harness, config, "once")
    context = InputContext("once", client, threading.Event(), logging.getLogger("test.graph"), client.stats,
                           harness.data_path)
    GraphInput(config, context).run()


def test_expired_secret_parks_the_input_without_showing_it(
    harness: PipelineHarness, server: FakeHttpsServer, identity: FakeIdentityPlatform, graph: FakeGraphApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    identity.expire_secret(TENANT, CLIENT, SECRET)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermanentInputError) as raised:
        run_once(harness, graph_config(server))
    assert "AADSTS7000222" in str(raised.value) and "expired" in str(raised.value)
    assert raised.value.retry_after == 1800
    assert SECRET not in caplog.text and SECRET not in str(raised.value)
    assert graph.request_log == []


def test_tenant_without_licence_parks_the_input_with_the_reason(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi
) -> None:
    graph.make_non_premium(TENANT)
    with pytest.raises(PermanentInputError) as raised:
        run_once(harness, graph_config(server))
    assert "P1 or P2 licence" in str(raised.value)
    assert raised.value.retry_after == 1800


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"certificate": "/x.pem"}, "client_secret: give either client_secret or certificate + key, not both"),
        ({"client_secret": None, "certificate": "/x.pem"}, "key: is required"),
        ({"record_types": ["signins"]}, "record_types: unknown record type 'signins'"),
        ({"sign_in_types": ["robot"]}, "sign_in_types: unknown sign-in type 'robot'"),
        ({"api": {"graph_endpoint": "http://graph.example"}}, "api.graph_endpoint: must be an https:// URL"),
    ],
)
def test_config_mistakes_name_the_key(overrides: dict[str, Any], message: str) -> None:
    data = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET, "record_types": ["auditlogs"]}
    data.update(overrides)
    data = {key: value for key, value in data.items() if value is not None}
    problems: list = []
    parse_config(Section(data, "", "inputs.d/entra.yml", problems))
    assert any(message in str(problem) for problem in problems), problems
    assert all(str(problem).startswith("inputs.d/entra.yml") for problem in problems)


def test_unreadable_stored_cursor_is_reported_and_the_lookback_read_again(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness.registry.commit({"graph::entra::signinlogs": {"until": "yesterday"}})
    add_sign_in(graph, "kept", 600)
    caplog.set_level(logging.WARNING)
    running = start(graph_config(server))
    assert ids(harness.take(1)) == ["kept"]
    assert "cursor of signinlogs is unreadable" in caplog.text
    running.halt()


def test_certificate_credential_reads_pem_files(
    harness: PipelineHarness, server: FakeHttpsServer, identity: FakeIdentityPlatform, graph: FakeGraphApi,
    start: Callable[..., RunningInput], tmp_path: Any,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forwarder-test-app")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256())
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    identity.register_app(TENANT, CLIENT, certificate_pem=certificate_pem)
    (tmp_path / "app.crt").write_text(certificate_pem)
    (tmp_path / "app.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass-phrase"),
    ))
    add_sign_in(graph, "by-certificate", 60)
    config = graph_config(server, client_secret=None, certificate=str(tmp_path / "app.crt"),
                          key=str(tmp_path / "app.key"), key_passphrase="pass-phrase")
    running = start(config)
    assert ids(harness.take(1)) == ["by-certificate"]
    assert running.context.stats.extra["credential_expires"] == certificate.not_valid_after_utc.strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    running.halt()


def test_429_storm_is_waited_out_by_the_input_with_nothing_lost(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput]
) -> None:
    records = {f"t-{n:02d}": add_sign_in(graph, f"t-{n:02d}", 900 - n * 10) for n in range(20)}
    graph.fail(SIGN_INS, 429, count=3, after=1, retry_after="1")
    graph.fail(SIGN_INS, 503, count=1, after=2)
    running = start(graph_config(server, page_size=4))
    events = harness.take(20, timeout=30)
    assert sorted(ids(events)) == sorted(records)
    wait_for(lambda: running.context.stats.extra.get("http_throttled", 0) >= 3)
    marker = add_sign_in(graph, "marker", 1)
    assert ids(harness.take(1)) == [marker["id"]]
    running.halt()


def test_token_expiring_mid_paging_is_renewed_and_no_page_is_lost(
    harness: PipelineHarness, server: FakeHttpsServer, identity: FakeIdentityPlatform, graph: FakeGraphApi,
    start: Callable[..., RunningInput],
) -> None:
    records = {f"x-{n:02d}": add_sign_in(graph, f"x-{n:02d}", 900 - n * 10) for n in range(23)}
    graph.expire_tokens_after(2)
    running = start(graph_config(server, page_size=5))
    events = harness.take(23)
    assert sorted(ids(events)) == sorted(records)
    assert identity.token_requests == 2
    running.halt()


def expiry_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if "expire" in record.getMessage()]


def test_secret_expiring_within_30_days_is_warned_about_and_shown_in_stats(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ends = time.time() + 9.5 * 86400
    graph.add_app_secret(CLIENT, "zzz-other-secret", time.time() + 400 * 86400, name="someone else's")
    graph.add_app_secret(CLIENT, SECRET, ends, name="forwarder prod")
    add_sign_in(graph, "s-1", 60)
    caplog.set_level(logging.INFO)
    running = start(graph_config(server))
    harness.take(1)
    [warning] = [record for record in caplog.records if "expires on" in record.getMessage()]
    assert warning.levelno == logging.WARNING
    assert f"client secret 'forwarder prod' of app {CLIENT} expires on {time.strftime('%Y-%m-%d', time.gmtime(ends))}" \
        in warning.getMessage()
    assert "(in 9 days)" in warning.getMessage()
    assert running.context.stats.extra["credential_expires"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends))
    assert SECRET not in caplog.text and SECRET[:3] not in caplog.text
    running.halt()


def test_secret_far_from_expiry_is_only_shown_in_stats(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    graph.add_app_secret(CLIENT, SECRET, time.time() + 200 * 86400)
    add_sign_in(graph, "s-1", 60)
    caplog.set_level(logging.INFO)
    running = start(graph_config(server))
    harness.take(1)
    assert running.context.stats.extra["credential_expires"].startswith(
        time.strftime("%Y-%m-%d", time.gmtime(time.time() + 200 * 86400)))
    assert expiry_log(caplog) == []
    running.halt()


def test_app_that_cannot_read_its_registration_says_why_and_keeps_forwarding(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    graph.add_app_secret(CLIENT, SECRET, time.time() + 5 * 86400)
    graph.deny("applications")
    add_sign_in(graph, "s-1", 60)
    caplog.set_level(logging.INFO)
    running = start(graph_config(server))
    assert ids(harness.take(1)) == ["s-1"]
    [line] = expiry_log(caplog)
    assert "cannot tell when the client secret expires" in line and "Application.Read.All" in line
    assert running.context.stats.extra["credential_expires"] == "unknown"
    running.halt()


def test_input_restarted_in_the_same_process_resumes_from_what_was_acknowledged(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi
) -> None:
    for n in range(6):
        add_sign_in(graph, f"before-{n}", 300 + n)
    config = graph_config(server, page_size=4)
    client = connect(harness, config, "restarted")

    def run_until_stopped(stop: threading.Event) -> threading.Thread:
        context = InputContext("restarted", client, stop, logging.getLogger("test.graph"), client.stats,
                               harness.data_path)
        thread = threading.Thread(target=GraphInput(config, context).run, daemon=True)
        thread.start()
        return thread

    first_stop = threading.Event()
    first = run_until_stopped(first_stop)
    assert len(set(ids(harness.take(6)))) == 6
    assert client.wait_acked(5)
    first_stop.set()
    first.join(10)

    add_sign_in(graph, "after-0", 30)
    second_stop = threading.Event()
    second = run_until_stopped(second_stop)
    assert ids(harness.take(1)) == ["after-0"]
    add_sign_in(graph, "marker", 1)
    assert ids(harness.take(1)) == ["marker"]
    second_stop.set()
    second.join(10)


def test_backfill_chunks_shrink_for_a_dense_tenant_and_grow_back():
    assert next_chunk(MAX_CHUNK, 5 * CHUNK_RECORDS) == MAX_CHUNK / 5
    assert next_chunk(MAX_CHUNK, 10_000 * CHUNK_RECORDS) == MIN_CHUNK
    assert next_chunk(MAX_CHUNK / 5, CHUNK_RECORDS // 10) == MAX_CHUNK
    assert next_chunk(MAX_CHUNK, 0) == MAX_CHUNK


def test_a_dense_backfill_commits_in_chunks_of_bounded_size(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("forwarder.inputs.graph.CHUNK_RECORDS", 10)
    for n in range(180):  # one a minute over the last three hours
        add_sign_in(graph, f"d-{n:03d}", 60 * n + 30)
    running = start(graph_config(server, page_size=100, initial_lookback="3h"))
    assert len(set(ids(harness.take(180)))) == 180
    # The first hour holds 60 records: the chunks that follow are 10 minutes long.
    windows = [query["$filter"] for query in graph.requests_to(SIGN_INS)]
    assert len(windows) >= 12, len(windows)
    running.halt()


def test_standalone_input_without_normalize_ships_the_raw_record_and_its_original(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput]
) -> None:
    record = add_sign_in(graph, "raw-1", 400)
    running = start(graph_config(server, normalize=False, preserve_original_event=True))
    [event] = harness.take(1)
    assert list(event.fields) == ["message", "event", "agent", "ecs", "host", "input"]
    assert orjson.loads(event.fields["message"]) == record
    assert event.fields["event"] == {"original": event.fields["message"]}
    assert event.timestamp == datetime.datetime.fromisoformat(record["createdDateTime"]).timestamp()
    running.halt()


def refuse(user_names: set[str]) -> Processor:
    """A module processor that cannot map the sign-ins of `user_names` (as a mapping bug would)."""

    def unmappable_probe(event: Event) -> Event:
        if event.record["userPrincipalName"] in user_names:
            raise ValueError("no mapping for this sign-in")
        return event

    return unmappable_probe


def test_a_record_the_mapping_cannot_handle_is_forwarded_raw_once_and_the_records_after_it_flow(
    harness: PipelineHarness, server: FakeHttpsServer, graph: FakeGraphApi, start: Callable[..., RunningInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    records = {n: add_sign_in(graph, f"m-{n}", 500 - n * 50) for n in range(5)}
    unmappable = {records[1]["userPrincipalName"], records[3]["userPrincipalName"]}
    config = graph_config(server)
    running = start(config, module_processors=[refuse(unmappable), *standalone_mapping(config)])

    events = {event.meta["_id"]: event for event in harness.take(5)}
    assert sorted(events) == sorted(record["id"] for record in records.values())
    for record in records.values():
        event = events[record["id"]]
        assert orjson.loads(event.fields["message"]) == record
        if record["userPrincipalName"] in unmappable:
            assert event.fields["tags"] == ["_parse_failure"]
            assert event.fields["error"]["message"] == (
                "cannot map the record to ECS (unmappable_probe): ValueError: no mapping for this sign-in")
            assert "cloud" not in event.fields and "source" not in event.fields
        else:
            assert "tags" not in event.fields
            assert event.fields["source"]["ip"] == "203.0.113.7"
    assert running.client.stats.extra["mapping_failures"] == 2
    warnings = [record for record in caplog.records if "unmappable_probe" in record.getMessage()]
    assert [record.levelname for record in warnings] == ["WARNING"], "logged once for both records"
    assert "ValueError" in warnings[0].getMessage() and "mapping_failures" in warnings[0].getMessage()

    # No retry: the input goes on polling; the overlap it re-reads never brings the failed records back.
    marker = add_sign_in(graph, "marker", 5)
    assert ids(harness.take(1)) == [marker["id"]]
    polls = len(graph.requests_to(SIGN_INS))
    wait_for(lambda: len(graph.requests_to(SIGN_INS)) >= polls + 3)
    assert harness.take(1, timeout=0.05) == []
    assert running.client.stats.extra["mapping_failures"] == 2
    running.halt()
