"""The deprecated `log` input: vendor-guide configs run unchanged on the filestream machinery.

Configs are written as the guides print them (YAML with dotted `multiline.*` /
`json.*` keys), go through the same parsing as an input file, and the input
runs on the real pipeline harness, where acknowledgements decide what is
committed.
"""

from __future__ import annotations

import logging
import textwrap
import threading
import time

import pytest
import yaml

from forwarder.config.inputs import InputSpec, parse_input
from forwarder.config.loader import expand_dotted
from forwarder.inputs.base import InputContext
from forwarder.inputs.filestream_config import DEFAULT_MESSAGE_MAX_BYTES
from forwarder.inputs.multiline_parser import MultilineConfig
from forwarder.inputs.ndjson_parser import NdjsonConfig
from forwarder.plugins import INPUTS
from forwarder.schema.section import Section

LOGGER = "forwarder.input.log"

JAVA_LOG = """\
[2024-05-01 10:00:00,000] INFO  com.example.Service - starting
[2024-05-01 10:00:01,123] ERROR com.example.Service - request failed
java.lang.IllegalStateException: upstream closed the connection
\tat com.example.Client.send(Client.java:42)
\tat com.example.Service.handle(Service.java:17)
Caused by: java.net.SocketException: Connection reset
\tat java.base/sun.nio.ch.NioSocketImpl.implRead(NioSocketImpl.java:323)
\t... 12 more
[2024-05-01 10:00:02,000] INFO  com.example.Service - retrying
"""


def vendor_input(text: str, **paths: str) -> dict:
    """One `- type: log` entry of a YAML inputs file, with `{logs}` filled in."""
    return yaml.safe_load(textwrap.dedent(text).format(**paths))[0]


def parse(entry: dict) -> tuple[InputSpec | None, list[str]]:
    problems = []
    spec = parse_input(Section(expand_dotted(entry), "0", "inputs.d/vendor.yml", problems), 0)
    return spec, [str(p) for p in problems]


def wait_for(predicate, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class RunningInput:
    """One parsed input in its own thread, connected the way the runner connects it."""

    def __init__(self, harness, entry: dict) -> None:
        spec, problems = parse(entry)
        assert problems == []
        self.spec = spec
        self.client = harness.pipeline.connect(spec.client)
        self.stats = self.client.stats
        self._stop = threading.Event()
        context = InputContext(spec.client.input_id, self.client, self._stop, logging.getLogger(LOGGER),
                               self.stats, harness.data_path)
        self._thread = threading.Thread(target=spec.input_type.create(spec.config, context).run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive(), "the input did not return after stop"


@pytest.fixture
def logs(tmp_path):
    directory = tmp_path / "logs"
    directory.mkdir()
    return directory


@pytest.fixture
def start(harness):
    running: list[RunningInput] = []

    def start_input(entry: dict) -> RunningInput:
        running.append(RunningInput(harness, entry))
        return running[-1]

    yield start_input
    for item in running:
        item.stop()


def messages(events) -> list[str]:
    return [e.fields.get("message") for e in events]


# ----- reading -------------------------------------------------------------------


def test_vendor_guide_multiline_joins_a_java_stack_trace_into_one_event(harness, logs, start):
    log = logs / "app.log"
    log.write_text(JAVA_LOG)
    running = start(vendor_input(r"""
        - type: log
          enabled: true
          paths:
            - {logs}/*.log
          multiline.pattern: '^\['
          multiline.negate: true
          multiline.match: after
        """, logs=logs))
    started, failure = harness.take(2)
    lines = JAVA_LOG.splitlines()
    assert started.fields["message"] == lines[0]
    assert failure.fields["message"] == "\n".join(lines[1:8]), "the trace and its cause are one event"
    assert failure.fields["log"]["flags"] == ["multiline"]
    assert failure.fields["log"]["offset"] == len(lines[0]) + 1
    assert failure.fields["input"] == {"type": "log"}
    assert started.fields["input"] == {"type": "log"}
    assert harness.take(1, timeout=0.3) == [], "the last record waits for the next one or the multiline timeout"
    input_id = running.spec.client.input_id
    (cursor,) = harness.registry.with_prefix(f"log::{input_id}::").values()
    assert cursor["offset"] == JAVA_LOG.index("[2024-05-01 10:00:02"), "the cursor never covers a pending line"


def test_json_keys_under_root_with_a_bad_line_forwarded_raw_with_its_error(harness, logs, start):
    (logs / "audit.log").write_text('{"user": {"name": "alice"}, "action": "login", "msg": "ok"}\n{truncated json\n')
    start(vendor_input("""
        - type: log
          paths: ["{logs}/*.log"]
          json.keys_under_root: true
          json.add_error_key: true
          json.overwrite_keys: true
          json.message_key: msg
        """, logs=logs))
    good, bad = harness.take(2)
    assert good.fields["user"] == {"name": "alice"} and good.fields["action"] == "login"
    assert good.fields["message"] == "ok" and "error" not in good.fields
    assert bad.fields["message"] == "{truncated json"
    assert bad.fields["error"]["type"] == "json"
    assert bad.fields["error"]["message"].startswith("Error decoding JSON")
    assert bad.fields["tags"] == ["_parse_failure"]


def test_json_without_keys_under_root_decodes_under_json(harness, logs, start):
    (logs / "audit.log").write_text('{"Operation": "UserLoggedIn", "CreationTime": "2024-05-01T10:00:00"}\n')
    start(vendor_input("""
        - type: log
          paths: ["{logs}/*.log"]
          json.add_error_key: true
        """, logs=logs))
    (event,) = harness.take(1)
    assert event.fields["json"] == {"Operation": "UserLoggedIn", "CreationTime": "2024-05-01T10:00:00"}
    assert "Operation" not in event.fields


def test_scan_frequency_finds_new_files_and_close_inactive_closes_idle_ones(harness, logs, start):
    running = start(vendor_input("""
        - type: log
          paths: ["{logs}/*.log"]
          scan_frequency: 50ms
          close_inactive: 200ms
        """, logs=logs))
    log = logs / "late.log"
    log.write_text("one\n")
    assert messages(harness.take(1)) == ["one"], "a file created after start is found by the next scan"
    wait_for(lambda: running.stats.extra["files_open"] == 0, what="the idle file to be closed")
    with open(log, "a") as handle:
        handle.write("two\n")
    (event,) = harness.take(1)
    assert event.fields["message"] == "two" and event.fields["log"]["offset"] == 4
    assert running.stats.extra["files_opened"] == 2 and running.stats.extra["files_closed"] >= 1


# ----- restarts, ids, cursors -------------------------------------------------------


def test_restart_resumes_from_the_committed_cursor_without_an_id_warning(harness, logs, start, caplog):
    log = logs / "app.log"
    lines = [f"line {n:02d}" for n in range(10)]
    log.write_text("".join(line + "\n" for line in lines))
    entry = vendor_input("""
        - type: log
          enabled: true
          paths: ["{logs}/*.log"]
        """, logs=logs)
    caplog.set_level(logging.INFO, logger=LOGGER)
    first = start(entry)
    acked = harness.take(4)
    unacked = harness.take(6, ack=False)
    assert messages(acked + unacked) == lines
    first.stop()
    second = start(entry)
    replayed = harness.take(6)
    assert messages(replayed) == lines[4:], "only what was not acknowledged is read again"
    assert [e.meta["_id"] for e in replayed] == [e.meta["_id"] for e in unacked]
    assert harness.take(1, timeout=0.3) == []
    input_id = second.spec.client.input_id
    assert input_id == first.spec.client.input_id and input_id.startswith("log-")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any(r.getMessage().startswith(f"log {input_id}: reading") for r in caplog.records)


def test_a_filestream_input_on_the_same_file_keeps_its_own_cursor(harness, logs, start):
    (logs / "app.log").write_text("a\nb\n")
    first = start(vendor_input("""
        - type: log
          paths: ["{logs}/*.log"]
        """, logs=logs))
    assert messages(harness.take(2)) == ["a", "b"]
    first.stop()
    start(vendor_input("""
        - type: filestream
          id: app
          paths: ["{logs}/*.log"]
        """, logs=logs))
    events = harness.take(2)
    assert messages(events) == ["a", "b"], "registry keys are namespaced by input type"
    assert events[0].fields["input"] == {"type": "filestream"}


def test_tail_files_warns_and_reads_the_file_from_the_start(harness, logs, start, caplog):
    (logs / "app.log").write_text("already there\n")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    start(vendor_input("""
        - type: log
          paths: ["{logs}/*.log"]
          tail_files: true
        """, logs=logs))
    assert messages(harness.take(1)) == ["already there"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "tail_files is not supported" in warnings[0] and "from their start" in warnings[0]


# ----- configuration -------------------------------------------------------------


def test_log_keys_translate_onto_the_filestream_config():
    spec, problems = parse({
        "type": "log", "id": "vendor", "paths": ["/var/log/app/*.log"], "exclude_files": [r"\.gz$"],
        "include_lines": ["^ERR"], "exclude_lines": ["^DBG"], "encoding": "utf-8", "ignore_older": "24h",
        "harvester_limit": 3, "clean_removed": False, "symlinks": True, "max_bytes": "1MiB",
        "scan_frequency": "1s", "close_inactive": "2m", "close_renamed": True, "close_removed": False,
        "multiline.type": "pattern", "multiline.pattern": "^{", "multiline.negate": True, "multiline.match": "after",
        "multiline.max_lines": 50, "multiline.timeout": "3s", "multiline.flush_pattern": "^}",
        "json.keys_under_root": False, "json.overwrite_keys": True, "json.add_error_key": False,
        "json.message_key": "log", "json.expand_keys": True, "json.ignore_decoding_error": True,
        "tail_files": False, "close_eof": True, "close_timeout": "1h", "clean_inactive": "72h", "backoff": "1s",
        "max_backoff": "10s", "backoff_factor": 2, "recursive_glob.enabled": False, "harvester_buffer_size": 16384,
    })
    assert problems == []
    assert spec.input_type is INPUTS.get("log") and spec.client.input_id == "vendor"
    config = spec.config
    assert config.check_interval == 1 and config.close_inactive == 120
    assert config.close_renamed and not config.close_removed and not config.clean_removed
    assert config.message_max_bytes == 1024 * 1024 and config.ignore_older == 86400 and config.harvester_limit == 3
    assert config.symlinks and [p.pattern for p in config.exclude_files] == [r"\.gz$"]
    assert [p.pattern for p in config.include_lines + config.exclude_lines] == ["^ERR", "^DBG"]
    ndjson, multiline = config.parsers
    assert ndjson == NdjsonConfig(target="json", message_key="log", overwrite_keys=True, expand_keys=True,
                                  add_error_key=False), "JSON is decoded before lines are joined"
    assert isinstance(multiline, MultilineConfig) and multiline.pattern.pattern == "^{" and multiline.negate
    assert multiline.flush_pattern.pattern == "^}" and multiline.max_lines == 50 and multiline.timeout == 3


def test_defaults_follow_the_log_input_and_the_default_id_derives_from_the_paths():
    spec, problems = parse({"type": "log", "paths": ["/b/*.log", "/a/*.log"]})
    same, _ = parse({"type": "log", "paths": ["/a/*.log", "/b/*.log"]})
    filestream, _ = parse({"type": "filestream", "paths": ["/a/*.log", "/b/*.log"]})
    assert problems == []
    config = spec.config
    assert config.check_interval == 10 and config.close_inactive == 300
    assert config.message_max_bytes == DEFAULT_MESSAGE_MAX_BYTES and config.parsers == []
    assert spec.client.input_id == same.client.input_id and spec.client.input_id.startswith("log-")
    assert spec.client.input_id.removeprefix("log-") == filestream.client.input_id.removeprefix("filestream-")


@pytest.mark.parametrize("entry, expected", [
    ({"close_inactve": "5m"},
     "inputs.d/vendor.yml: 0.close_inactve: unknown setting (did you mean '0.close_inactive'?)"),
    ({"scan_frequncy": "5s"},
     "inputs.d/vendor.yml: 0.scan_frequncy: unknown setting (did you mean '0.scan_frequency'?)"),
    ({"json.keys_under_rot": True},
     "inputs.d/vendor.yml: 0.json.keys_under_rot: unknown setting (did you mean '0.json.keys_under_root'?)"),
    ({"multiline.type": "count", "multiline.count_lines": 2, "multiline.timout": "1s"},
     "inputs.d/vendor.yml: 0.multiline.timout: unknown setting (did you mean '0.multiline.timeout'?)"),
    ({"prospector.scanner.check_interval": "1s"}, "inputs.d/vendor.yml: 0.prospector: unknown setting"),
    ({"multiline.pattern": "^x"}, "inputs.d/vendor.yml: 0.multiline.match: is required when type is pattern"),
    ({"max_bytes": 0}, "inputs.d/vendor.yml: 0.max_bytes: must be greater than 0"),
    ({"scan_frequency": "0s"}, "inputs.d/vendor.yml: 0.scan_frequency: must be a duration greater than 0"),
    ({"encoding": "utf-16le"}, "inputs.d/vendor.yml: 0.encoding: 'utf-16le' is not supported"),
    ({"exclude_lines": ["("]}, "inputs.d/vendor.yml: 0.exclude_lines: invalid regular expression '('"),
])
def test_config_errors_name_the_key_the_user_wrote(entry, expected):
    spec, problems = parse({"type": "log", "paths": ["/var/log/*.log"], **entry})
    assert spec is None
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems
