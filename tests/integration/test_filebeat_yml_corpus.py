"""Real-world filebeat.yml shapes (tests/fixtures/filebeat/) load through the real CLI with exactly the
expected "ignored" and "refused" lines, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "filebeat"
REPO_MODULES = Path(__file__).resolve().parents[2] / "modules.d"
F = "{home}/filebeat.yml"
RELOAD = "ignored (config reload is not supported; restart the forwarder to apply changes)"
ELASTIC = "ignored (it configures Elasticsearch or Kibana, which this forwarder does not talk to)"
HARVESTER = ("ignored (Filebeat harvester tuning without a counterpart here (`**` always recurses): accepted, "
             "without effect)")
READER = "ignored (tuning of Filebeat's reader: accepted, without effect)"
SECCOMP = "seccomp.*: ignored (seccomp filtering is specific to Filebeat's Go runtime and is not applied)"

EXPECTED = {
    "reference_defaults.yml": (0, [
        f"warning: {F}: setup.*: {ELASTIC}",
        f"warning: {F}: monitoring.*: ignored (it configures Elasticsearch or Kibana, which this forwarder does "
        "not talk to; read /stats (http.enabled) for the forwarder's metrics)",
        f"warning: {F}: migration.*: {ELASTIC}",
        f"warning: {F}: {SECCOMP}",
        *(f"warning: {F}: forwarder.inputs.0.{key}: {HARVESTER}"
          for key in ("close_eof", "close_timeout", "clean_inactive", "backoff", "max_backoff", "backoff_factor",
                      "harvester_buffer_size", "recursive_glob.enabled")),
        f"warning: {F}: forwarder.inputs.1.keep_null: ignored (fields set to null are always sent, as Filebeat "
        "does with keep_null: true)",
        *(f"warning: {F}: forwarder.inputs.1.{key}: {READER}"
          for key in ("buffer_size", "backoff", "close.on_state_change.check_interval")),
        f"warning: {F}: output.logstash.proxy_use_local_resolver: ignored (accepted for Filebeat compatibility, "
        "without effect)",
        "Config OK",
    ]),
    "vendor_flat_keys.yml": (0, [
        f"warning: {F}: logging.selectors: ignored (debug selectors are not supported: logging.level: debug "
        "(or -d) logs everything)",
        f"warning: {F}: setup.*: {ELASTIC}",
        "Config OK",
    ]),
    "vendor_nested_modules.yml": (0, [
        f"warning: {F}: forwarder.config.modules.reload.period: {RELOAD}",
        f"warning: {F}: forwarder.config.modules.reload.enabled: {RELOAD}",
        f"warning: {F}: {SECCOMP}",
        f"warning: {F}: max_procs: ignored (the number of processes is `forwarder.workers` (auto: one worker per "
        "usable core))",
        "Config OK",
    ]),
    "windows_paths.yml": (0, [
        f"warning: {F}: logging.to_eventlog: ignored (logging to the Windows event log is not supported: logs go "
        "to files, or to stderr with -e)",
        f"warning: {F}: http.named_pipe.*: ignored (named pipes are not supported: the /stats endpoint listens on "
        "http.host:http.port)",
        "Config OK",
    ]),
    "refused_kafka_output.yml": (1, [
        f"config error: {F}: output.kafka: unsupported output: events would not be delivered there; configure one "
        "of output.{console, file, logstash} instead",
    ]),
}


def enable_modules(home: Path) -> None:
    """modules.d as a site has it after `filebeat modules enable o365 azure`, from the shipped files."""
    modules = home / "modules.d"
    modules.mkdir()
    for name in ("o365", "azure"):
        target = modules / f"{name}.yml"
        target.write_text((REPO_MODULES / f"{name}.yml.disabled").read_text())
        os.chmod(target, 0o600)


def run_test_config(home: Path, text: str) -> tuple[int, list[str]]:
    """`forwarder test config` on `text` as {home}/filebeat.yml: its exit status and its output lines."""
    config = home / "filebeat.yml"
    config.write_text(text.replace("{home}", str(home)))
    os.chmod(config, 0o600)
    (home / "logs").mkdir(exist_ok=True)
    environment = {**os.environ, "O365_CLIENT_SECRET": "o365-secret-value",
                   "AZURE_EVENTHUB_CONNECTION_STRING": "Endpoint=sb://example.servicebus.windows.net/;"
                                                       "SharedAccessKeyName=k;SharedAccessKey=s",
                   "AZURE_STORAGE_ACCOUNT": "examplestorage", "AZURE_STORAGE_ACCOUNT_KEY": "storage-key-value"}
    result = subprocess.run([sys.executable, "-m", "forwarder", "test", "config", "-c", str(config),
                             "--path.home", str(home)], cwd=home, env=environment, capture_output=True, text=True,
                            timeout=120, check=False)
    lines = (result.stderr + result.stdout).replace(str(home), "{home}").splitlines()
    return result.returncode, lines


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_each_filebeat_yml_loads_with_exactly_the_expected_lines(tmp_path, fixture):
    if fixture == "vendor_nested_modules.yml":
        enable_modules(tmp_path)
    status, lines = run_test_config(tmp_path, (FIXTURES / fixture).read_text())
    expected_status, expected_lines = EXPECTED[fixture]
    assert sorted(lines) == sorted(expected_lines)
    assert status == expected_status


def test_the_corpus_is_every_fixture():
    assert sorted(path.name for path in FIXTURES.glob("*.yml")) == sorted(EXPECTED)


def test_modules_enabled_false_loads_no_module_file(tmp_path):
    """`filebeat.config.modules.enabled` is read as Filebeat reads it (the o365 and azure files are there)."""
    enable_modules(tmp_path)
    text = (FIXTURES / "vendor_nested_modules.yml").read_text()
    status, lines = run_test_config(tmp_path, text)
    assert status == 0 and not any("no inputs are enabled" in line for line in lines)
    status, lines = run_test_config(tmp_path, text.replace("enabled: true\n      path", "enabled: false\n      path"))
    assert status == 0
    assert f"warning: {F}: no inputs are enabled (forwarder.inputs is empty and no module is enabled)" in lines


def test_the_issue_s_modules_line_loads_the_enabled_module_files(tmp_path):
    """Issue 14: `filebeat.config: modules: {enabled: true, path: modules.d/*.yml}` was an unknown setting."""
    enable_modules(tmp_path)
    text = "filebeat.config:\n  modules: {enabled: true, path: modules.d/*.yml}\noutput.logstash.hosts: ['ls:5044']\n"
    status, lines = run_test_config(tmp_path, text)
    assert (status, lines) == (0, ["Config OK"])


def test_modules_flag_with_module_files_disabled_runs_only_the_named_modules(tmp_path):
    """With `filebeat.config.modules.enabled: false`, `--modules o365` runs o365 alone (azure.yml is not read):
    an `-M` for each module shows which ones run."""
    enable_modules(tmp_path)
    config = tmp_path / "filebeat.yml"
    config.write_text("filebeat.config.modules: {enabled: false, path: modules.d/*.yml}\n"
                      "output.logstash.hosts: ['ls:5044']\n")
    os.chmod(config, 0o600)
    result = subprocess.run(
        [sys.executable, "-m", "forwarder", "test", "config", "-c", str(config), "--path.home", str(tmp_path),
         "--modules", "o365", "-M", "o365.audit.var.api.poll_interval=1m",
         "-M", "azure.activitylogs.var.consumer_group=forwarder"],
        cwd=tmp_path, env={**os.environ, "O365_CLIENT_SECRET": "o365-secret-value"}, capture_output=True, text=True,
        timeout=120, check=False)
    assert (result.returncode, result.stdout) == (0, "Config OK\n"), result.stderr
    assert result.stderr.splitlines() == [
        "warning: -M azure.activitylogs.var.consumer_group: module azure does not run (enable it in modules.d or "
        "name it in --modules); the override has no effect"]
