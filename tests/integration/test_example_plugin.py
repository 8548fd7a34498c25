"""The example plugin package (examples/forwarder-webhook), pip-installed, driven through the real CLI.

It is installed with pip into a directory of its own that the forwarder's
processes get on PYTHONPATH: installed means on that path, uninstalled means
not. Its input, module and processor must work from forwarder.yml exactly like
built-in ones, and a plugin that breaks at import must stop only its own input.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from forwarder.plugins import INPUTS
from tests.fakes.lumberjack_server import Behaviour, LumberjackServer
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

REPO = Path(__file__).resolve().parents[2]
SECRET = "webhook-secret-7f3a"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """`pip install` of the example into its own directory (from a copy: a build leaves files behind)."""
    scratch = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(REPO / "examples" / "forwarder-webhook", scratch / "source")
    site = scratch / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return site


@pytest.fixture
def with_plugin(plugin_site, monkeypatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(plugin_site), str(REPO)]))
    return plugin_site


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forwarder", *args, "--path.home", str(home)], check=False,
                          cwd=home, capture_output=True, text=True, timeout=120)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(port: int, path: str, body: bytes, headers: dict[str, str], timeout: float = 60.0) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def github_headers(body: bytes, delivery: str, secret: str = SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={signature}", "X-GitHub-Delivery": delivery}


def entry(number: int, **extra) -> dict:
    return {"action": "repo.create", "actor": "octocat", "actor_ip": "192.0.2.7", "org": "acme",
            "repo": f"acme/app-{number}", "created_at": 1718000000000 + number, "_document_id": f"doc-{number}",
            **extra}


def test_plugins_list_names_the_package_of_each_type(with_plugin, tmp_path):
    result = cli("plugins", "list", home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name, target in (("webhook", "forwarder_webhook.webhook_input:INPUT_TYPE"),
                         ("github_audit", "forwarder_webhook.github_audit:MODULE_TYPE"),
                         ("github_audit_ecs", "forwarder_webhook.github_audit_ecs:build_github_audit_ecs")):
        assert any(line.split()[:3] == [name, "forwarder-webhook", "0.1.0"] and target in line for line in lines)
    assert any(line.split()[:2] == ["syslog", "forwarder"] for line in lines), "built-ins are listed the same way"


def test_modules_enable_copies_the_template_the_plugin_ships(with_plugin, tmp_path):
    (tmp_path / "modules.d").mkdir()
    listed = cli("modules", "list", home=tmp_path)
    assert "Available from plugin packages" in listed.stdout and "github_audit" in listed.stdout
    enabled = cli("modules", "enable", "github_audit", home=tmp_path)
    assert enabled.returncode == 0, enabled.stderr
    copy = tmp_path / "modules.d" / "github_audit.yml"
    template = with_plugin / "forwarder_webhook" / "modules.d" / "github_audit.yml.disabled"
    assert copy.read_bytes() == template.read_bytes()
    assert copy.stat().st_mode & 0o777 == 0o600
    assert "github_audit" in cli("modules", "list", home=tmp_path).stdout.split("Disabled:")[0]


def test_the_module_maps_signed_deliveries_and_refuses_bad_signatures(with_plugin, tmp_path, monkeypatch):
    port = free_port()
    (tmp_path / "modules.d").mkdir()
    assert cli("modules", "enable", "github_audit", home=tmp_path).returncode == 0
    module_file = tmp_path / "modules.d" / "github_audit.yml"
    module_file.write_text(module_file.read_text().replace("listen_port: 9009", f"listen_port: {port}"))
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
    forwarder = ForwarderProcess(tmp_path, """
        output.file.path: ${path.data}/events
        forwarder.config.modules.path: ${path.config}/modules.d/*.yml
    """).start()
    try:
        forwarder.wait_for_log("listening on http://127.0.0.1")
        good = json.dumps([entry(1), entry(2, user="mallory")]).encode()
        status, _, _ = post(port, "/github/audit", good, github_headers(good, "delivery-1"))
        assert status == 200
        forged = json.dumps([entry(3)]).encode()
        status, _, _ = post(port, "/github/audit", forged, github_headers(forged, "delivery-2", secret="wrong"))
        assert status == 401
        broken = json.dumps({"action": 42, "actor": "octocat"}).encode()
        status, _, _ = post(port, "/github/audit", broken, github_headers(broken, "delivery-3"))
        assert status == 200, "a record the mapping cannot handle is still delivered"
        events = wait_until(lambda: len(output_events(tmp_path)) >= 3 and output_events(tmp_path), 30, "3 events")
    finally:
        forwarder.terminate()
    by_id = {event["@metadata"]["_id"]: event for event in events}
    assert set(by_id) == {"delivery-1-0", "delivery-1-1", "delivery-3-0"}, "the forged delivery never got in"
    first, second = by_id["delivery-1-0"], by_id["delivery-1-1"]
    assert first["event"]["dataset"] == "github_audit.audit" and first["event"]["module"] == "github_audit"
    assert first["event"]["action"] == "repo.create" and first["event"]["id"] == "doc-1"
    assert first["user"] == {"name": "octocat"} and first["source"] == {"ip": "192.0.2.7"}
    assert first["@timestamp"] == "2024-06-10T06:13:20.001Z"
    assert "json" not in first, "the processor replaced the raw body with ECS fields"
    assert second["user"]["target"] == {"name": "mallory"}
    failed = by_id["delivery-3-0"]
    assert "_parse_failure" in failed["tags"] and "github_audit_ecs" not in failed
    assert failed["error"]["message"].startswith("cannot map the record to ECS (map_github_audit_entry): ValueError")
    assert failed["json"] == {"action": 42, "actor": "octocat"}, "forwarded raw"


def webhook_config(port: int, lumberjack: str, queue_events: int = 64) -> str:
    return f"""
        forwarder.inputs:
          - type: webhook
            id: hooks
            listen_port: {port}
            url: /hook
            secret.header: X-Secret
            secret.value: {SECRET}
            retry_after: 7
            processors:
              - github_audit_ecs: {{}}
        queue.mem:
          events: {queue_events}
          flush.min_events: 1
          flush.timeout: 10ms
        output.logstash:
          hosts: ["{lumberjack}"]
          bulk_max_size: 4
          backoff.init: 100ms
          backoff.max: 500ms
    """


def test_200_only_once_logstash_acknowledged_and_503_with_retry_after_under_backpressure(with_plugin, tmp_path):
    port = free_port()
    held = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=held)) as server:
        forwarder = ForwarderProcess(tmp_path, webhook_config(port, server.address, queue_events=4)).start()
        try:
            forwarder.wait_for_log("listening on http://127.0.0.1")
            answers: list[int] = []
            body = json.dumps([entry(n) for n in range(4)]).encode()
            sender = threading.Thread(target=lambda: answers.append(post(port, "/hook", body, {"X-Secret": SECRET})[0]))
            sender.start()
            server.wait_for_events(4, timeout=30)
            assert sender.is_alive() and answers == [], "no answer while Logstash holds the ACK"
            status, headers, _ = post(port, "/hook", json.dumps(entry(9)).encode(), {"X-Secret": SECRET})
            assert status == 503 and headers["Retry-After"] == "7", "the queue is full: refused, not held"
            held.set()
            sender.join(30)
            assert answers == [200]
            status, _, _ = post(port, "/hook", json.dumps(entry(9)).encode(), {"X-Secret": SECRET})
            assert status == 200
            assert post(port, "/hook", b"{}", {"X-Secret": "nope"})[0] == 401
            assert post(port, "/hook", b"not json", {"X-Secret": SECRET})[0] == 400
        finally:
            forwarder.terminate()
        events = server.wait_for_events(5)
    assert {event["github"]["repo"] for event in events} == {f"acme/app-{n}" for n in (0, 1, 2, 3, 9)}
    assert all(event["event"]["action"] == "repo.create" for event in events), "the processor ran from forwarder.yml"


def test_a_sender_that_retries_loses_nothing_across_kill_9(with_plugin, tmp_path):
    """Every delivery answered 200 is in Logstash, though the forwarder is killed mid-stream."""
    port = free_port()
    deliveries = 60
    with LumberjackServer() as server:
        forwarder = ForwarderProcess(tmp_path, webhook_config(port, server.address)).start()
        forwarder.wait_for_log("listening on http://127.0.0.1")
        acknowledged: list[int] = []

        def send_all() -> None:
            for number in range(deliveries):
                body = json.dumps(entry(number)).encode()
                while True:
                    try:
                        if post(port, "/hook", body, {"X-Secret": SECRET}, timeout=10)[0] == 200:
                            acknowledged.append(number)
                            break
                    except OSError:
                        pass
                    time.sleep(0.1)  # a sender's retry pause, not a synchronisation

        sender = threading.Thread(target=send_all)
        sender.start()
        try:
            wait_until(lambda: len(acknowledged) >= deliveries // 3, 60, "a third of the deliveries")
            forwarder.kill_hard()
            forwarder.start()
            sender.join(120)
            assert not sender.is_alive()
        finally:
            forwarder.terminate()
        received = {event["github"]["repo"] for event in server.events}
    assert acknowledged == list(range(deliveries))
    assert received == {f"acme/app-{n}" for n in range(deliveries)}


def test_uninstalled_or_broken_plugin(tmp_path, monkeypatch):
    port = free_port()
    config = f"""
        forwarder.inputs:
          - type: webhook
            listen_port: {port}
        output.file.path: ${{path.data}}/events
    """
    home = tmp_path / "uninstalled"
    ForwarderProcess(home, config)
    result = cli("test", "config", "-c", "forwarder.yml", home=home)
    assert result.returncode == 1
    known = ", ".join(INPUTS.names())  # the built-in inputs: this test process does not see the plugin
    assert "webhook" not in INPUTS
    assert result.stderr.strip().splitlines() == [
        f"config error: {home / 'forwarder.yml'}: forwarder.inputs.0.type: unknown input type 'webhook' "
        f"(known: {known}; `forwarder plugins list` shows where each comes from)"]

    broken_site = tmp_path / "broken-site"
    (broken_site / "broken_plugin-1.0.dist-info").mkdir(parents=True)
    (broken_site / "broken_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (broken_site / "broken_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[forwarder.inputs]\nbroken = broken_plugin:INPUT_TYPE\n")
    (broken_site / "broken_plugin.py").write_text('raise RuntimeError("this plugin is broken")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(broken_site), str(REPO)]))
    syslog_port = free_port()
    home = tmp_path / "broken"
    forwarder = ForwarderProcess(home, f"""
        forwarder.inputs:
          - type: broken
          - type: syslog
            protocol.tcp.host: "127.0.0.1:{syslog_port}"
        output.file.path: ${{path.data}}/events
    """)
    checked = cli("test", "config", "-c", "forwarder.yml", home=home)
    assert checked.returncode == 1
    assert [line for line in checked.stderr.splitlines() if "broken" in line] == [
        f"config error: {home / 'forwarder.yml'}: forwarder.inputs.0.type: input type 'broken' from package "
        "broken-plugin 1.0 cannot be loaded (broken_plugin:INPUT_TYPE): RuntimeError: this plugin is broken"]
    forwarder.start()
    try:
        line = forwarder.wait_for_log("input not started")
        assert "broken-plugin 1.0" in line["message"] and "Traceback" not in forwarder.log_path.read_text()
        forwarder.wait_for_log("forwarder started")
        # The listener binds on its input's thread, after "forwarder started" on a busy machine.
        forwarder.wait_for_log("listening on")
        with socket.create_connection(("127.0.0.1", syslog_port), timeout=10) as sender:
            sender.sendall(b"<13>Jun 10 06:13:20 host app: still running\n")
        wait_until(lambda: any("still running" in e.get("message", "") for e in output_events(home)), 30,
                   "the syslog line")
    finally:
        forwarder.terminate()
    listing = cli("plugins", "list", home=home)
    assert listing.returncode == 1
    assert [line.split()[0] for line in listing.stdout.splitlines() if "ERROR" in line] == ["broken"]
