"""add_cloud_metadata against a loopback fake metadata service: providers, one lookup, off-cloud, `when`."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.unit.test_processors import build, build_with_problems, run

AWS_DOCUMENT = {"instanceId": "i-0123456789", "instanceType": "t3.micro", "region": "eu-west-1",
                "availabilityZone": "eu-west-1a", "accountId": "111122223333", "imageId": "ami-1"}
GCP_DOCUMENT = {"instance": {"id": 4567, "name": "vm-1", "machineType": "projects/9/machineTypes/e2-medium",
                             "zone": "projects/9/zones/us-east1-b"}, "project": {"projectId": "proj-1"}}
AZURE_DOCUMENT = {"vmId": "vm-uuid", "name": "az-vm", "vmSize": "Standard_B1s", "location": "westeurope",
                  "subscriptionId": "sub-1"}


class FakeMetadataService:
    """Answers like one cloud's metadata service (or hangs, for the off-cloud timeout case) and counts requests."""

    def __init__(self, cloud: str | None, hang: threading.Event | None = None) -> None:
        self.requests: Counter[str] = Counter()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_PUT(self) -> None:
                self.answer()

            def do_GET(self) -> None:
                self.answer()

            def answer(self) -> None:
                service.requests[f"{self.command} {self.path}"] += 1
                if hang is not None:
                    hang.wait(30)
                body = service.body(cloud, self.command, self.path, self.headers)
                self.send_response(404 if body is None else 200)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def body(cloud: str | None, method: str, path: str, headers) -> bytes | None:
        if cloud == "aws" and method == "PUT" and path == "/latest/api/token":
            return b"token-1"
        if cloud == "aws" and path == "/latest/dynamic/instance-identity/document":
            return json.dumps(AWS_DOCUMENT).encode() if headers.get("X-aws-ec2-metadata-token") == "token-1" else None
        if cloud == "gcp" and path.startswith("/computeMetadata/v1/") and headers.get("Metadata-Flavor") == "Google":
            return json.dumps(GCP_DOCUMENT).encode()
        if cloud == "azure" and path.startswith("/metadata/instance/compute") and headers.get("Metadata") == "true":
            return json.dumps(AZURE_DOCUMENT).encode()
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_cloud(request):
    service = FakeMetadataService(request.param)
    yield service
    service.close()


def config(url: str, extra: str = "") -> str:
    return f"processors:\n  - add_cloud_metadata: {{metadata_url: '{url}', timeout: 5s{extra}}}\n"


@pytest.mark.parametrize("fake_cloud", ["aws"], indirect=True)
def test_aws_imdsv2_fields_and_the_service_is_asked_once(fake_cloud):
    processors = build(config(fake_cloud.url))
    events = [run(processors, {"message": str(n)}) for n in range(5)]
    assert events[0].fields["cloud"] == {
        "provider": "aws", "service": {"name": "EC2"}, "instance": {"id": "i-0123456789"},
        "machine": {"type": "t3.micro"}, "region": "eu-west-1", "availability_zone": "eu-west-1a",
        "account": {"id": "111122223333"}, "image": {"id": "ami-1"}}
    assert all(event.fields["cloud"] == events[0].fields["cloud"] for event in events)
    assert fake_cloud.requests["GET /latest/dynamic/instance-identity/document"] == 1


@pytest.mark.parametrize("fake_cloud", ["gcp"], indirect=True)
def test_gcp_fields(fake_cloud):
    cloud = run(build(config(fake_cloud.url)), {"message": "m"}).fields["cloud"]
    assert cloud == {"provider": "gcp", "service": {"name": "GCE"}, "instance": {"id": "4567", "name": "vm-1"},
                     "machine": {"type": "e2-medium"}, "availability_zone": "us-east1-b", "region": "us-east1",
                     "project": {"id": "proj-1"}, "account": {"id": "proj-1"}}


@pytest.mark.parametrize("fake_cloud", ["azure"], indirect=True)
def test_azure_fields_overwrite_false_and_when(fake_cloud):
    processors = build(config(fake_cloud.url, ", providers: [azure, hetzner], when.has_fields: [message]"))
    assert run(processors, {"message": "m"}).fields["cloud"] == {
        "provider": "azure", "service": {"name": "Virtual Machines"}, "instance": {"id": "vm-uuid", "name": "az-vm"},
        "machine": {"type": "Standard_B1s"}, "region": "westeurope", "account": {"id": "sub-1"}}
    assert run(processors, {"message": "m", "cloud": {"provider": "mine"}}).fields["cloud"] == {"provider": "mine"}
    assert run(processors, {"other": 1}).fields == {"other": 1}


def test_off_cloud_nothing_listening_adds_nothing_quickly():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    processors = build(config(f"http://127.0.0.1:{closed_port}"))
    assert "cloud" not in run(processors, {"message": "m"}).fields


def test_a_service_that_never_answers_holds_the_first_event_only_for_the_timeout():
    hang = threading.Event()
    service = FakeMetadataService("aws", hang=hang)
    try:
        processors = build(f"processors:\n  - add_cloud_metadata: {{metadata_url: '{service.url}', timeout: 300ms}}\n")
        started = time.monotonic()
        assert "cloud" not in run(processors, {"message": "m"}).fields
        assert time.monotonic() - started < 5
        assert "cloud" not in run(processors, {"message": "again"}).fields
    finally:
        hang.set()
        service.close()


def test_building_the_config_makes_no_request_and_unknown_providers_are_errors():
    service = FakeMetadataService("aws")
    try:
        build(config(service.url))
        assert sum(service.requests.values()) == 0
    finally:
        service.close()
    _, problems = build_with_problems("processors:\n  - add_cloud_metadata: {providers: [aws, oracle]}\n")
    assert problems and "oracle" in problems[0]
