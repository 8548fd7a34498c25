"""`forwarder import-registry`: the dry run lists what would be imported and what not (with why), the import
writes our registry once, and a damaged Filebeat registry imports nothing, in one line, on the command line and
at a first start (which then starts from scratch and says so)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from forwarder.registry import Registry
from tests.fixtures.filebeat_registry.filebeat_memlog import FilebeatMemlog
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: app
        paths: ["{logs}/*.log"]
        prospector.scanner.check_interval: 0.1s
      - type: o365audit
        id: o365-audit
        application_id: 11111111-2222-3333-4444-555555555555
        tenant_id: contoso-tenant
        client_secret: not-a-real-secret
        content_type: [Audit.AzureActiveDirectory, Audit.Exchange]
        enabled: {cloud}
      - type: aws-s3
        id: umbrella
        non_aws_bucket_name: umbrella-logs
        bucket_list_prefix: dnslogs/
        endpoint: http://127.0.0.1:9
        access_key_id: AKIAEXAMPLE
        secret_access_key: not-a-real-secret
        enabled: {cloud}
    forwarder.registry.flush: 0s
    output.file:
      path: ${{path.data}}/events
    logging.metrics.enabled: false
"""
CREATED = datetime(2026, 12, 5, 22, 30, 5, tzinfo=UTC)
MODIFIED = datetime(2026, 12, 5, 21, 0, 0, tzinfo=UTC)


class Site:
    def __init__(self, tmp_path: Path, cloud: bool = True) -> None:
        self.home = tmp_path / "site"
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.app = self.logs / "app.log"
        self.app.write_text("".join(f"app line {n}\n" for n in range(10)))
        self.forwarder = ForwarderProcess(self.home, CONFIG.format(logs=self.logs, cloud=str(cloud).lower()))
        self.filebeat = FilebeatMemlog(self.home / "data" / "registry" / "filebeat")
        self.ours = self.home / "data" / "registry" / "forwarder"

    def command(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "forwarder", "import-registry", *args, "-c",
                               str(self.forwarder.config_path), "--path.home", str(self.home)],
                              cwd=self.home, capture_output=True, text=True, timeout=120, check=False)

    def filebeat_files(self) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(self.filebeat.directory.iterdir())}


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    yield site
    site.forwarder.stop()


def a_registry_of_every_kind(site: Site) -> None:
    short = site.logs / "short.log"
    short.write_text("one line\n")
    site.filebeat.filestream("app", site.app, 40)
    site.filebeat.filestream("app", short, 500)
    site.filebeat.filestream("old-input", site.app, 40)
    site.filebeat.checkpoint()
    site.filebeat.o365("contoso-tenant", "Audit.AzureActiveDirectory", CREATED, line=5)
    site.filebeat.o365("fabrikam-tenant", "Audit.Exchange", CREATED, line=0)
    site.filebeat.s3_object("umbrella-logs", "dnslogs/2026-12-05/a.csv.gz", "0a1b2c", MODIFIED)
    site.filebeat.s3_object("umbrella-logs", "dnslogs/2026-12-05/b.csv.gz", "3d4e5f", MODIFIED, stored=False)
    site.filebeat.s3_object("other-bucket", "x.csv.gz", "777", MODIFIED)
    site.filebeat.set("httpjson::https://api.example.com/v1/events", {"ttl": -1, "cursor": {"page": 3}})


def test_dry_run_lists_what_would_be_imported_and_what_not_and_writes_nothing(site):
    a_registry_of_every_kind(site)
    before = site.filebeat_files()
    result = site.command(str(site.home / "data"), "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "would import 4 position(s), 5 not imported" in out
    assert f"would import: filestream 'app' {site.app} (device " in out and "from offset 40" in out
    assert ("would import: o365audit 'o365-audit' contoso-tenant Audit.AzureActiveDirectory: listing resumes at "
            "blobs created from 2026-12-05T22:30:05+00:00; up to 5 record(s) of that blob are sent again") in out
    assert "would import: aws-s3 'umbrella' s3://umbrella-logs/dnslogs/2026-12-05/a.csv.gz: done" in out
    assert "would import: aws-s3 'umbrella' s3://umbrella-logs/dnslogs/2026-12-05/b.csv.gz: failed" in out
    assert "no filestream input with id 'old-input' in the config" in out
    assert "short.log is 9 bytes now, shorter than Filebeat's offset 500" in out
    assert "no o365audit input polls tenant fabrikam-tenant content type Audit.Exchange" in out
    assert "no aws-s3 input lists bucket other-bucket" in out
    assert "'httpjson' state is not one this forwarder can carry over" in out
    assert "azure-eventhub positions are not in Filebeat's registry" in out
    assert not site.ours.exists()
    assert site.filebeat_files() == before


def test_import_writes_our_registry_once(site):
    a_registry_of_every_kind(site)
    result = site.command(str(site.filebeat.directory))
    assert result.returncode == 0, result.stderr
    assert "imported 4 position(s), 5 not imported" in result.stdout
    registry = Registry(site.ours, 0)
    stat = site.app.stat()
    app = registry.get(f"filestream::app::{stat.st_dev}-{stat.st_ino}")
    assert app["offset"] == 40 and app["path"] == str(site.app)
    assert app["fingerprint"] == hashlib.sha256(site.app.read_bytes()).hexdigest()
    assert registry.get("o365audit::o365-audit::contoso-tenant::Audit.AzureActiveDirectory") == {
        "until": CREATED.timestamp(), "delivered": {}, "blob": None}
    assert registry.get("aws-s3::umbrella::umbrella-logs/dnslogs/2026-12-05/a.csv.gz") == {
        "etag": "0a1b2c", "size": 0, "last_modified": MODIFIED.timestamp(), "offset": 0, "status": "done"}
    registry.close()

    again = site.command(str(site.filebeat.directory))
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.count("\n") == 1 and "already holds" in again.stderr and str(site.ours) in again.stderr


def test_the_forwarder_reads_on_from_the_imported_offset(site):
    site.filebeat.filestream("app", site.app, len(b"app line 0\napp line 1\n"))
    assert site.command(str(site.home / "data")).returncode == 0
    site.forwarder.start()
    wait_until(lambda: len(output_events(site.home)) >= 8, 30, "the rest of app.log")
    assert site.forwarder.terminate() == 0
    assert [event["message"] for event in output_events(site.home)] == [f"app line {n}" for n in range(2, 10)]
    assert not any("imported" in line.get("message", "") for line in site.forwarder.log_lines())


def truncate_log_line(store: FilebeatMemlog) -> None:
    log = store.directory / "log.json"
    log.write_bytes(log.read_bytes()[:-5])


def break_checkpoint(store: FilebeatMemlog) -> None:
    checkpoint = next(p for p in store.directory.glob("*.json") if p.stem.isdigit())
    checkpoint.write_text(checkpoint.read_text()[:-3])


def remove_active_dat(store: FilebeatMemlog) -> None:
    (store.directory / "active.dat").unlink()


DAMAGES = {
    "truncated log.json line": (truncate_log_line, "log.json: the last line is cut off"),
    "bad JSON checkpoint": (break_checkpoint, "checkpoint is not valid JSON"),
    "missing active.dat": (remove_active_dat, "active.dat: missing"),
}


@pytest.fixture(params=list(DAMAGES))
def damaged(request, tmp_path):
    site = Site(tmp_path, cloud=False)
    site.filebeat.filestream("app", site.app, 22)
    site.filebeat.checkpoint()
    site.filebeat.filestream("app", site.app, 44)
    damage, message = DAMAGES[request.param]
    damage(site.filebeat)
    yield site, message
    site.forwarder.stop()


def test_a_damaged_registry_is_one_line_on_the_command_line_and_nothing_is_imported(damaged):
    site, message = damaged
    before = site.filebeat_files()
    for args in (["--dry-run"], []):
        result = site.command(str(site.filebeat.directory), *args)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: nothing imported: ") and message in result.stderr
        assert "start Filebeat once and stop it cleanly" in result.stderr
    assert not site.ours.exists()
    assert site.filebeat_files() == before


def test_a_damaged_registry_at_first_start_is_one_warning_and_the_forwarder_starts_from_scratch(damaged):
    site, message = damaged
    site.forwarder.start()
    site.forwarder.wait_for_log("forwarder started")
    warnings = [line["message"] for line in site.forwarder.log_lines()
                if "Filebeat's registry was not imported" in line.get("message", "")]
    assert len(warnings) == 1 and message in warnings[0] and "Starting from scratch" in warnings[0]
    wait_until(lambda: len(output_events(site.home)) >= 10, 30, "all of app.log, from its start")
    assert site.forwarder.terminate() == 0
    assert [event["message"] for event in output_events(site.home)] == [f"app line {n}" for n in range(10)]
