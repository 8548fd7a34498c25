"""TLS to the fake Lumberjack server (certificates from a throwaway trustme CA) and `forwarder test output`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.logstash import OUTPUT_TYPE
from forwarder.outputs.logstash.check import TEST_MESSAGE, TEST_TAG
from forwarder.outputs.logstash.config import LogstashConfig
from forwarder.outputs.logstash.output import LogstashOutput
from forwarder.pipeline.event import Event
from forwarder.pipeline.queue import EventQueue
from forwarder.schema.section import Problem, Section
from forwarder.stats import OutputStats
from tests.fakes.lumberjack_server import Behaviour, LumberjackServer, make_server_tls_context

FAST = {"timeout": "2s", "backoff": {"init": "50ms", "max": "200ms"}}


class Pki:
    """A server CA, a second CA nobody trusts, and a client CA, written out as PEM files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server_ca = trustme.CA()
        self.other_ca = trustme.CA()
        self.client_ca = trustme.CA()
        self.server_ca_file = self._write("server-ca.pem", self.server_ca.cert_pem)
        self.other_ca_file = self._write("other-ca.pem", self.other_ca.cert_pem)
        client = self.client_ca.issue_cert("forwarder-client.example")
        self.client_cert_file = self._write("client.pem", client.cert_chain_pems[0])
        self.client_key_file = self._write("client.key", client.private_key_pem)

    def _write(self, name: str, blob: Any) -> str:
        path = self.directory / name
        blob.write_to_path(str(path))
        return str(path)

    def server(self, *names: str, client_auth: bool = False, **kwargs: Any) -> LumberjackServer:
        certificate = self.server_ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
        context = make_server_tls_context(certificate, self.client_ca if client_auth else None)
        return LumberjackServer(ssl_context=context, **kwargs)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def parse(hosts: list[str], **settings: Any) -> LogstashConfig:
    problems: list[Problem] = []
    section = Section({"hosts": hosts, **FAST, **settings}, "output.logstash", "t.yml", problems)
    config = OUTPUT_TYPE.parse_config(section)
    assert problems == []
    return config


class Delivery:
    """Puts `count` events on a queue and runs the output on it until stopped."""

    def __init__(self, config: LogstashConfig, count: int = 5) -> None:
        self.queue = EventQueue(1000, 1 << 24, 1, 0.0)
        for number in range(count):
            self.queue.put(Event({"message": f"secure {number}"}, meta={"_id": f"id-{number}"}))
        self.stats = OutputStats("logstash")
        self.output = LogstashOutput(config, EventEncoder(), self.stats)
        self.output.start(self.queue)

    def wait(self, condition: Any, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; stats {self.stats.snapshot()}")
            time.sleep(0.01)

    def wait_delivered(self) -> None:
        self.wait(lambda: self.queue.active_events == 0, "every event acknowledged")


@pytest.fixture
def deliver() -> Iterator[Any]:
    deliveries: list[Delivery] = []

    def start(config: LogstashConfig, count: int = 5) -> Delivery:
        deliveries.append(Delivery(config, count))
        return deliveries[-1]

    yield start
    for delivery in deliveries:
        delivery.output.stop(5.0)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tls_with_full_verification_delivers(pki: Pki, deliver, caplog, host: str) -> None:
    caplog.set_level(logging.INFO, "forwarder.outputs.logstash")
    with pki.server() as server:
        config = parse([f"{host}:{server.port}"], ssl={"certificate_authorities": [pki.server_ca_file]})
        delivery = deliver(config)
        server.wait_for_events(5)
        delivery.wait_delivered()
        assert [e["message"] for e in server.events] == [f"secure {n}" for n in range(5)]
        assert any(f"connected to {host}:{server.port} (TLSv1.3)" in r.message for r in caplog.records)


def test_an_untrusted_server_certificate_fails_clearly_and_is_retried(pki: Pki, deliver, caplog) -> None:
    caplog.set_level(logging.INFO, "forwarder.outputs.logstash")
    with pki.server() as server:
        delivery = deliver(parse([server.address], ssl={"certificate_authorities": [pki.other_ca_file]}))
        delivery.wait(lambda: delivery.stats.errors >= 2, "two failed attempts")
        server.wait_for(lambda: len(server.tls_failures) >= 2, what="two refused handshakes")
        assert server.events == []
        cause = "TLS handshake failed: certificate verify failed: unable to get local issuer certificate"
        assert delivery.stats.last_error == f"{server.address}: unreachable ({cause})"
        warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings[0].startswith(f"logstash: {server.address} unreachable ({cause}); retrying in ")


def test_mutual_tls_delivers_with_a_client_certificate(pki: Pki, deliver) -> None:
    with pki.server(client_auth=True) as server:
        config = parse([server.address], ssl={
            "certificate_authorities": [pki.server_ca_file],
            "certificate": pki.client_cert_file,
            "key": pki.client_key_file,
        })
        delivery = deliver(config)
        server.wait_for_events(5)
        delivery.wait_delivered()
        assert server.tls_failures == []


def test_mutual_tls_without_a_client_certificate_is_refused_and_retried(pki: Pki, deliver, caplog) -> None:
    caplog.set_level(logging.INFO, "forwarder.outputs.logstash")
    with pki.server(client_auth=True) as server:
        delivery = deliver(parse([server.address], ssl={"certificate_authorities": [pki.server_ca_file]}))
        # With TLS 1.3 the server's verdict arrives after the handshake, as an alert the next read sees
        # (unless its reset wins the race): some attempt reports it.
        delivery.wait(lambda: any("tlsv13 alert certificate required" in r.message for r in caplog.records),
                      "the certificate-required alert")
        assert delivery.stats.errors >= 1 and server.events == [] and server.tls_failures


def test_a_name_mismatch_fails_with_full_verification_but_passes_with_certificate(pki: Pki, deliver) -> None:
    with pki.server("logstash.example") as server:
        strict = deliver(parse([server.address], ssl={"certificate_authorities": [pki.server_ca_file]}))
        strict.wait(lambda: strict.stats.errors >= 1, "the mismatch")
        assert "IP address mismatch" in strict.stats.last_error
        assert server.events == []
        strict.output.stop(5.0)
        lenient = deliver(parse([server.address], ssl={"certificate_authorities": [pki.server_ca_file],
                                                       "verification_mode": "certificate"}))
        server.wait_for_events(5)
        lenient.wait_delivered()


def test_verification_mode_none_accepts_any_certificate(pki: Pki, deliver) -> None:
    with pki.server("logstash.example") as server:
        delivery = deliver(parse([server.address], ssl={"certificate_authorities": [pki.other_ca_file],
                                                        "verification_mode": "none"}))
        server.wait_for_events(5)
        delivery.wait_delivered()


def test_a_tls_client_cannot_talk_to_a_plain_listener(deliver, pki: Pki) -> None:
    with LumberjackServer() as plain:
        delivery = deliver(parse([plain.address], ssl={"certificate_authorities": [pki.server_ca_file]}, timeout="1s"))
        delivery.wait(lambda: delivery.stats.errors >= 1, "the failed handshake")
        assert "TLS handshake failed" in delivery.stats.last_error


# ----- forwarder test output -------------------------------------------------


def test_check_reports_every_step_of_a_good_host() -> None:
    with LumberjackServer() as server:
        results = OUTPUT_TYPE.check(parse([f"localhost:{server.port}"]))
        event = server.wait_for_events(1)[0]
    assert [r.ok for r in results] == [True, True, True]
    assert {r.target for r in results} == {f"localhost:{server.port}"}
    assert results[0].detail.startswith("dns: localhost resolves to ")
    assert results[1].detail.startswith("connect: TCP connection to ")
    assert results[2].detail.startswith("round trip: test event acknowledged in ")
    assert event["message"] == TEST_MESSAGE and event["tags"] == [TEST_TAG]
    assert event["@metadata"]["beat"] == "filebeat"


def test_check_reports_a_dead_host_and_still_checks_the_others() -> None:
    with LumberjackServer() as dead, LumberjackServer() as alive:
        dead.stop_listening()
        results = OUTPUT_TYPE.check(parse([dead.address, alive.address]))
    dead_results = [r for r in results if r.target == dead.address]
    assert [r.ok for r in dead_results] == [True, False]
    assert dead_results[1].detail == "connect: Connection refused"
    assert all(r.ok for r in results if r.target == alive.address)


def test_check_reports_a_missing_ack(pki: Pki) -> None:
    with LumberjackServer(behaviour=Behaviour(never_ack=True)) as server:
        results = OUTPUT_TYPE.check(parse([server.address], timeout="300ms"))
    assert results[-1].ok is False and results[-1].detail == "round trip: no ACK within 0.3s"


def test_check_reports_the_tls_handshake(pki: Pki) -> None:
    with pki.server() as server:
        good = OUTPUT_TYPE.check(parse([server.address], ssl={"certificate_authorities": [pki.server_ca_file]}))
        bad = OUTPUT_TYPE.check(parse([server.address], ssl={"certificate_authorities": [pki.other_ca_file]}))
    assert [r.ok for r in good] == [True, True, True, True]
    assert good[2].detail == "tls: TLSv1.3 handshake ok (verification_mode full)"
    assert [r.ok for r in bad] == [True, True, False]
    assert bad[2].detail == ("tls: handshake failed: certificate verify failed: "
                             "unable to get local issuer certificate")
