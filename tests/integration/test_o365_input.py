"""The o365audit input end to end: real MSAL and HttpClient against the fake identity platform and
Management Activity API, real pipeline and registry."""

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
from forwarder.inputs.o365_config import O365Config, parse_config
from forwarder.inputs.o365audit import INPUT_TYPE, O365Input
from forwarder.net.http_client import HttpSettings
from forwarder.pipeline.client import PipelineClient, Processor
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section
from tests.conftest import PipelineHarness
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.fakes.management_api import FakeManagementApi, audit_record

TENANT = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
SECOND_TENANT = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
APP = "c0ffee00-1234-4abc-9def-0123456789ab"
SECRET = "o365~Input.Secret-Never_In_Logs"
AAD = "Audit.AzureActiveDirectory"
EXCHANGE = "Audit.Exchange"
HOUR, DAY = 3600.0, 86400.0
FAST_RETRIES = HttpSettings(backoff_initial=0.01, backoff_max=0.05)


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
    platform.register_app(TENANT, APP, secret=SECRET)
    return platform


@pytest.fixture
def api(server: FakeHttpsServer, identity: FakeIdentityPlatform) -> FakeManagementApi:
    fake = FakeManagementApi(server, identity)
    fake.add_tenant(TENANT)
    return fake


def o365_config(server: FakeHttpsServer, **overrides: Any) -> O365Config:
    api_settings = {"authentication_endpoint": server.url, "resource": server.url, "poll_interval": "100ms",
                    "error_retry_interval": "50ms", **overrides.pop("api", {})}
    data = {
        "application_id": APP,
        "tenant_id": TENANT,
        "client_secret": SECRET,
        "content_type": [AAD],
        "tenant_names": {TENANT: "contoso.onmicrosoft.com"},
        "ssl": {"certificate_authorities": [server.ca_path]},
        "api": api_settings,
        **overrides,
    }
    data = {key: value for key, value in data.items() if value is not None}
    problems: list = []
    section = Section(data, "", "inputs.d/o365.yml", problems)
    config = parse_config(section)
    section.finish()
    assert problems == []
    return config


def standalone_processors(config: O365Config) -> list[Processor]:
    """What maps the records of an o365audit input configured without the module, as config/inputs.py builds it."""
    problems: list = []
    items = [Section(item, "", "inputs.d/o365.yml", problems) for item in INPUT_TYPE.standalone_processors(config)]
    processors = build_processors(items)
    assert problems == []
    return processors


class RunningInput:
    """One o365audit input on its own thread, as the supervisor runs it."""

    def __init__(self, harness: PipelineHarness, config: O365Config, input_id: str = "o365") -> None:
        self.client: PipelineClient = harness.connect("o365audit", input_id=input_id,
                                                      module_processors=standalone_processors(config))
        self.stop = threading.Event()
        self.context = InputContext(input_id, self.client, self.stop, logging.getLogger("test.o365"),
                                    self.client.stats, harness.data_path)
        self.input = O365Input(config, self.context, http_settings=FAST_RETRIES)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.input.run()
        except BaseException as error:  # handed to the test
            self.failure = error

    @property
    def extra(self) -> dict[str, Any]:
        return self.context.stats.extra

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert self.failure is None


@pytest.fixture
def start(harness: PipelineHarness) -> Iterator[Callable[..., RunningInput]]:
    started: list[RunningInput] = []

    def start_input(config: O365Config, input_id: str = "o365") -> RunningInput:
        running = RunningInput(harness, config, input_id)
        started.append(running)
        return running

    yield start_input
    for running in started:
        running.stop.set()
        running.thread.join(10)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def ids(events: list) -> list[str]:
    return [event.meta["_id"] for event in events]


def add_records(api: FakeManagementApi, age: float, names: list[str], tenant: str = TENANT,
                content_type: str = AAD, **blob: Any) -> list[dict[str, Any]]:
    records = [audit_record(api.now() - age - 120, record_id=name) for name in names]
    api.add_blob(tenant, content_type, records, age=age, **blob)
    return records


def list_requests_after(api: FakeManagementApi, count: int) -> Callable[[], bool]:
    return lambda: len(api.requests("list")) >= count


def test_backfill_over_several_windows_delivers_every_record_once_with_ecs_fields(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput]
) -> None:
    expected: list[str] = []
    for day, age in enumerate((6.5 * DAY, 5 * DAY, 3.2 * DAY, 1.5 * DAY, 2 * HOUR, 60)):
        expected += [r["Id"] for r in add_records(api, age, [f"d{day}-{n}" for n in range(3)])]
    running = start(o365_config(server))

    events = harness.take(len(expected))

    assert sorted(ids(events)) == sorted(expected)
    first = events[0]
    record = orjson.loads(first.fields["message"])
    assert record["Id"] == first.meta["_id"]
    assert first.fields["input"]["type"] == "o365audit"
    assert first.fields["event"]["action"] == "UserLoggedIn"
    assert first.fields["organization"]["name"] == "contoso.onmicrosoft.com"
    assert first.fields["o365"]["audit"]["Id"] == record["Id"]
    assert "original" not in first.fields["event"]
    assert abs(first.timestamp - datetime.datetime.fromisoformat(record["CreationTime"] + "+00:00").timestamp()) < 1
    assert api.tenants[TENANT].subscriptions == {AAD: "enabled"}
    windows = list(api.list_windows)
    assert len(windows) >= 7
    assert all(end - start <= DAY and start >= api.now() - 7 * DAY for start, end in windows)
    assert set(api.publishers) == {TENANT}
    wait_for(lambda: running.extra.get("sources", {}).get(f"{TENANT}::{AAD}", {}).get("state") == "live")
    assert running.extra["content_delivered"] == 6
    running.halt()


def test_next_page_uri_pages_are_all_read(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput]
) -> None:
    api.page_size = 2
    expected = [add_records(api, 3000 - n * 100, [f"p{n}"])[0]["Id"] for n in range(7)]
    running = start(o365_config(server))
    assert sorted(ids(harness.take(7))) == sorted(expected)
    assert any(r.param("nextPage") == "page6" for r in api.requests("list"))
    assert all(r.param("PublisherIdentifier") == TENANT for r in api.requests("list"))
    running.halt()


def test_blobs_sharing_a_creation_time_are_both_delivered_and_relisting_repeats_nothing(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput]
) -> None:
    created = api.now() - 2 * HOUR
    first = [audit_record(created, record_id="same-second-a")]
    second = [audit_record(created, record_id="same-second-b")]
    api.add_blob(TENANT, AAD, first, created=created)
    api.add_blob(TENANT, AAD, second, created=created)
    running = start(o365_config(server))
    assert sorted(ids(harness.take(2))) == ["same-second-a", "same-second-b"]
    wait_for(list_requests_after(api, len(api.requests("list")) + 3))
    add_records(api, 30, ["marker"])
    assert ids(harness.take(1)) == ["marker"]
    assert all(blob.fetches == 1 for blob in api.tenants[TENANT].blobs)
    running.halt()


def test_records_duplicated_across_blobs_keep_one_id_for_the_receiver(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput]
) -> None:
    duplicated = audit_record(api.now() - HOUR, record_id="twice")
    api.add_blob(TENANT, AAD, [duplicated, audit_record(api.now(), record_id="one")], age=HOUR)
    api.add_blob(TENANT, AAD, [duplicated], age=HOUR - 60)
    running = start(o365_config(server))
    assert sorted(ids(harness.take(3))) == ["one", "twice", "twice"]
    running.halt()


def test_restart_mid_blob_resumes_after_the_last_acknowledged_record(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput]
) -> None:
    names = [f"r{n:02d}" for n in range(10)]
    add_records(api, HOUR, names)
    config = o365_config(server)
    first = start(config)
    assert ids(harness.take(4)) == names[:4]
    unacked = harness.take(6, ack=False)
    assert ids(unacked) == names[4:]
    first.halt()
    stored = harness.registry.get(f"o365audit::o365::{TENANT}::{AAD}")
    assert stored["blob"]["next"] == 4 and stored["delivered"] == {}

    second = start(config)
    assert ids(harness.take(6)) == names[4:]
    assert second.client.wait_acked(5)
    add_records(api, 30, ["marker"])
    assert ids(harness.take(1)) == ["marker"]
    assert api.tenants[TENANT].blobs[0].fetches == 2
    second.halt()


def test_missing_and_disabled_subscriptions_are_started(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput]
) -> None:
    api.add_tenant(TENANT, subscribed=(AAD,))
    add_records(api, HOUR, ["before"])
    running = start(o365_config(server, content_type=[AAD, EXCHANGE]))
    assert ids(harness.take(1)) == ["before"]
    wait_for(lambda: api.tenants[TENANT].subscriptions.get(EXCHANGE) == "enabled")
    api.tenants[TENANT].subscriptions[AAD] = "disabled"
    add_records(api, 30, ["after"])
    assert ids(harness.take(1)) == ["after"]
    assert api.tenants[TENANT].subscriptions == {AAD: "enabled", EXCHANGE: "enabled"}
    assert api.tenants[TENANT].starts == 2
    assert running.extra["subscriptions_started"] == 2
    running.halt()


def test_server_clock_ahead_is_corrected_from_its_date_header(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.clock_offset = 3 * HOUR
    add_records(api, 6.9 * DAY, ["at-the-edge"])
    add_records(api, 60, ["recent"])
    caplog.set_level(logging.WARNING)
    running = start(o365_config(server))
    assert sorted(ids(harness.take(2))) == ["at-the-edge", "recent"]
    assert running.extra["clock_adjustments"] == 1
    [warning] = [r.getMessage() for r in caplog.records if "clock differs" in r.getMessage()]
    assert abs(int(warning.split("by +")[1].split(" s")[0]) - 3 * HOUR) <= 2
    assert "retrying" not in caplog.text
    running.halt()


def test_expired_and_missing_content_is_logged_counted_and_not_retried(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = api.add_blob(TENANT, AAD, [audit_record(api.now())], age=3 * HOUR, expired=True)
    missing = api.add_blob(TENANT, AAD, [audit_record(api.now())], age=2 * HOUR, missing=True)
    add_records(api, HOUR, ["kept"])
    caplog.set_level(logging.WARNING)
    config = o365_config(server)
    running = start(config)
    assert ids(harness.take(1)) == ["kept"]
    wait_for(lambda: running.extra.get("content_missing") == 1)
    assert running.extra["content_expired"] == 1
    assert gone.content_id in caplog.text and "AF20051" in caplog.text
    assert missing.content_id in caplog.text and "AF20050" in caplog.text
    assert running.client.wait_acked(5)
    running.halt()

    blob_requests = len(api.requests("blob"))
    again = start(config)
    wait_for(lambda: again.extra.get("sources", {}).get(f"{TENANT}::{AAD}", {}).get("state") == "live")
    assert len(api.requests("blob")) == blob_requests
    again.halt()


def test_throttling_storm_and_server_errors_are_waited_out_with_nothing_lost(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput]
) -> None:
    expected = [name for n in range(8) for name in (f"t{n}-a", f"t{n}-b")]
    for n in range(8):
        add_records(api, 5000 - n * 300, [f"t{n}-a", f"t{n}-b"])
    api.throttle("list", 3)
    api.throttle("blob", 4, af429=True, retry_after=None)
    api.fail("blob", 2, 503, "AF50000", "An internal error occurred.")
    api.fail("list", 1, 401)
    api.fail("list", 1, 400, "AF20031", "Invalid nextPage Input.")
    running = start(o365_config(server))
    assert sorted(ids(harness.take(16, timeout=30))) == sorted(expected)
    wait_for(lambda: running.extra.get("sources", {}).get(f"{TENANT}::{AAD}", {}).get("http_throttled", 0) >= 7)
    running.halt()


def run_once(harness: PipelineHarness, config: O365Config) -> InputContext:
    client = harness.connect("o365audit", input_id="once", module_processors=standalone_processors(config))
    context = InputContext("once", client, threading.Event(), logging.getLogger("test.o365"), client.stats,
                           harness.data_path)
    O365Input(config, context, http_settings=FAST_RETRIES).run()
    return context


def test_wrong_secret_parks_the_input_without_showing_it(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermanentInputError) as raised:
        run_once(harness, o365_config(server, client_secret="o365~Wrong.Secret-Also_Hidden"))
    assert "AADSTS7000215" in str(raised.value)
    for secret in (SECRET, "o365~Wrong.Secret-Also_Hidden"):
        assert secret not in caplog.text and secret not in str(raised.value)
    assert api.requests("list") == []


def test_missing_permission_parks_the_input_with_the_fix(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.tenants[TENANT].permission = False
    caplog.set_level(logging.ERROR)
    with pytest.raises(PermanentInputError) as raised:
        run_once(harness, o365_config(server, content_type=[AAD, EXCHANGE]))
    assert "ActivityFeed.Read" in str(raised.value) and "AF10001" in str(raised.value)
    parked = [r for r in caplog.records if "parked" in r.getMessage()]
    assert len(parked) == 1 and TENANT in parked[0].getMessage()
    assert SECRET not in caplog.text


@pytest.mark.parametrize(("known_to_entra", "reason"), [(True, "AF20011"), (False, "AADSTS90002")])
def test_a_parked_tenant_does_not_stop_the_other(
    harness: PipelineHarness, server: FakeHttpsServer, identity: FakeIdentityPlatform, api: FakeManagementApi,
    start: Callable[..., RunningInput], caplog: pytest.LogCaptureFixture, known_to_entra: bool, reason: str,
) -> None:
    if known_to_entra:  # but without audit logs in the Management API
        identity.register_app(SECOND_TENANT, APP, secret=SECRET)
    for content_type in (AAD, EXCHANGE):
        add_records(api, HOUR, [f"{content_type}-1"], content_type=content_type)
    caplog.set_level(logging.INFO)
    running = start(o365_config(server, tenant_id=[TENANT, SECOND_TENANT], content_type=[AAD, EXCHANGE]))
    assert sorted(ids(harness.take(2))) == [f"{AAD}-1", f"{EXCHANGE}-1"]
    wait_for(lambda: reason in running.context.stats.last_error)
    add_records(api, 30, ["marker"], content_type=EXCHANGE)
    assert ids(harness.take(1)) == ["marker"]
    parked = [r.getMessage() for r in caplog.records if "parked" in r.getMessage()]
    assert len(parked) == 1 and SECOND_TENANT in parked[0] and reason in parked[0] and "tenant_id" in parked[0]
    assert running.failure is None and running.thread.is_alive()
    assert SECRET not in caplog.text
    running.halt()


def test_certificate_credentials_from_pem_files(
    harness: PipelineHarness, server: FakeHttpsServer, identity: FakeIdentityPlatform, api: FakeManagementApi,
    start: Callable[..., RunningInput], tmp_path: Any,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forwarder-o365-app")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256())
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    identity.register_app(TENANT, APP, certificate_pem=certificate_pem)
    (tmp_path / "app.crt").write_text(certificate_pem)
    (tmp_path / "app.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"key-pass-phrase"),
    ))
    add_records(api, HOUR, ["by-certificate"])
    config = o365_config(server, client_secret=None, certificate=str(tmp_path / "app.crt"),
                         key=str(tmp_path / "app.key"), key_passphrase="key-pass-phrase")
    running = start(config)
    assert ids(harness.take(1)) == ["by-certificate"]
    running.halt()


def test_raw_events_without_normalization_keep_filebeat_options(
    harness: PipelineHarness, server: FakeHttpsServer, api: FakeManagementApi, start: Callable[..., RunningInput]
) -> None:
    records = add_records(api, HOUR, ["raw"])
    api.add_blob(TENANT, AAD, ["not an object"], age=HOUR - 60)
    config = o365_config(server, normalize=False,
                         api={"preserve_original_event": True, "set_id_from_audit_record": False})
    running = start(config)
    raw, broken = harness.take(2)
    assert orjson.loads(raw.fields["message"]) == records[0]
    assert raw.fields["event"] == {"original": raw.fields["message"]}
    assert "o365" not in raw.fields and "_id" not in raw.meta
    assert broken.fields["tags"] == ["_parse_failure"] and broken.fields["message"] == '"not an object"'
    running.halt()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"certificate": "/app.pem"}, "client_secret: give either client_secret or certificate + key, not both"),
        ({"client_secret": None, "certificate": "/app.pem"}, "key: is required"),
        ({"content_type": ["Audit.Teams"]}, "content_type: unknown content type 'Audit.Teams'"),
        ({"tenant_id": []}, "tenant_id: is required"),
        ({"api": {"max_query_size": "48h"}}, "api.max_query_size: must be at most 24h"),
        ({"api": {"max_retention": "240h"}}, "api.max_retention: must be at most 168h"),
        ({"api": {"resource": "http://manage.example"}}, "api.resource: must be an https:// URL"),
        ({"api": {"poll_intervall": "1m"}}, "api.poll_intervall: unknown setting (did you mean 'api.poll_interval'?)"),
        ({"tenant_names": {"someone-else": "x"}}, "tenant_names.someone-else: is not one of tenant_id"),
    ],
)
def test_config_mistakes_name_the_key(overrides: dict[str, Any], message: str) -> None:
    data = {"application_id": APP, "tenant_id": TENANT, "client_secret": SECRET, **overrides}
    data = {key: value for key, value in data.items() if value is not None}
    problems: list = []
    section = Section(data, "", "modules.d/o365.yml", problems)
    parse_config(section)
    section.finish()
    assert any(message in str(problem) for problem in problems), problems
    assert all(SECRET not in str(problem) for problem in problems)


def test_filebeat_defaults_and_a_scheme_less_endpoint() -> None:
    problems: list = []
    section = Section({"application_id": APP, "tenant_id": [TENANT, SECOND_TENANT], "client_secret": SECRET,
                       "api": {"authentication_endpoint": "login.microsoftonline.us/",
                               "resource": "https://manage.office365.us/"}}, "", "o365.yml", problems)
    config = parse_config(section)
    section.finish()
    assert problems == []
    assert config.content_types == [AAD, EXCHANGE, "Audit.SharePoint", "Audit.General", "DLP.All"]
    assert config.authentication_endpoint == "https://login.microsoftonline.us"
    assert config.scope == "https://manage.office365.us/.default"
    assert (config.max_retention, config.max_query_size, config.poll_interval) == (7 * DAY, DAY, 180.0)
    assert (config.max_requests_per_minute, config.error_retry_interval) == (2000, 300.0)
    assert config.set_id_from_audit_record and not config.preserve_original_event and config.normalize
    assert SECRET not in repr(config)
