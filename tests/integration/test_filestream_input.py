"""The filestream input against real files: rotation, truncation, restarts, parsers, limits.

Each test runs the input in a thread on the real pipeline harness and drives
the files the way loggers and logrotate do; acknowledgements decide what is
committed, exactly as with a real output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import threading
import time
from pathlib import Path

import pytest

from forwarder.inputs.base import InputContext
from forwarder.inputs.filestream import INPUT_TYPE
from forwarder.inputs.filestream_config import FilestreamConfig, default_id
from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.queue import acknowledge
from forwarder.schema.section import Section
from tests.conftest import PipelineHarness

MIB = 1024 * 1024


def wait_for(predicate, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def parse(config: dict) -> tuple[FilestreamConfig, list[str]]:
    problems = []
    parsed = INPUT_TYPE.parse_config(Section(config, "", "inputs.yml", problems))
    return parsed, [str(p) for p in problems]


class RunningInput:
    """One filestream input in its own thread, connected like the runner connects it."""

    def __init__(self, harness: PipelineHarness, config: dict, input_id: str) -> None:
        parsed, problems = parse(config)
        assert problems == []
        self.client = harness.connect("filestream", input_id=input_id)
        self.stats = self.client.stats
        self._stop = threading.Event()
        context = InputContext(input_id, self.client, self._stop, logging.getLogger("test.filestream"),
                               self.stats, harness.data_path)
        self._thread = threading.Thread(target=INPUT_TYPE.create(parsed, context).run, daemon=True)
        self._thread.start()

    def stop(self, queue_closed_by=None) -> float:
        """Stops the input the way the runner does; returns how long it took to return."""
        started = time.monotonic()
        self._stop.set()
        if queue_closed_by is not None:
            queue_closed_by.close()
        self._thread.join(5)
        assert not self._thread.is_alive(), "the input did not return after stop"
        return time.monotonic() - started


@pytest.fixture
def files(tmp_path):
    directory = tmp_path / "logs"
    directory.mkdir()
    return directory


@pytest.fixture
def start(harness, files):
    running: list[RunningInput] = []

    def start_input(input_id: str = "files", **overrides) -> RunningInput:
        config = {"paths": [str(files / "*.log")], "prospector": {"scanner": {"check_interval": "50ms"}}}
        config.update(overrides)
        running.append(RunningInput(harness, config, input_id))
        return running[-1]

    yield start_input
    for item in running:
        item.stop()


def append(path: Path, data: str | bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def identity(path: Path) -> str:
    stat = os.stat(path)
    return f"{stat.st_dev}-{stat.st_ino}"


def committed(harness, input_id: str = "files") -> dict:
    return harness.registry.with_prefix(f"filestream::{input_id}::")


def messages(events) -> list[str]:
    return [e.fields.get("message") for e in events]


# ----- reading -------------------------------------------------------------------


def test_lines_arrive_in_order_with_offsets_ids_and_a_committed_cursor(harness, files, start):
    log = files / "app.log"
    log.write_bytes(b"first line\r\nsecond\n\nthird \xe2\x82\xac\n")
    running = start()
    events = harness.take(3)
    assert messages(events) == ["first line", "second", "third €"], "CRLF stripped, empty line skipped"
    assert [e.fields["log"]["offset"] for e in events] == [0, 12, 20]
    first = events[0]
    assert first.fields["log"]["file"] == {"path": str(log), "device_id": str(os.stat(log).st_dev),
                                           "inode": str(os.stat(log).st_ino)}
    assert first.fields["input"] == {"type": "filestream"}
    assert [e.meta["_id"] for e in events] == [f"{identity(log)}-{offset}" for offset in (0, 12, 20)]
    cursor = committed(harness)[identity(log)]
    assert cursor["offset"] == log.stat().st_size and cursor["path"] == str(log)
    assert cursor["fingerprint"] == hashlib.sha256(log.read_bytes()).hexdigest()
    assert running.stats.extra["files_open"] == 1 and running.stats.extra["files_seen"] == 1


def test_a_partial_line_waits_for_its_newline(harness, files, start):
    log = files / "app.log"
    log.write_text("complete\npart")
    start()
    assert messages(harness.take(1)) == ["complete"]
    assert harness.take(1, timeout=0.4) == [], "a line without its newline is not sent yet"
    append(log, "ial line\n")
    (event,) = harness.take(1)
    assert event.fields["message"] == "partial line" and event.fields["log"]["offset"] == 9


def test_binary_content_becomes_events_without_crashing(harness, files, start):
    rng = random.Random(20240501)
    data = bytes(rng.randrange(256) for _ in range(200_000)) + b"\x00\x00\n"
    (files / "blob.log").write_bytes(data)
    expected = [part[:-1] if part.endswith(b"\r") else part for part in data.split(b"\n")[:-1]]
    expected = [part.decode("utf-8", "replace") for part in expected if part.rstrip(b"\r")]
    start()
    events = harness.take(len(expected))
    assert messages(events) == expected
    assert "\x00" in events[-1].fields["message"], "NUL bytes are kept"
    encoder = EventEncoder("filebeat")
    assert all(json.loads(encoder.encode(e))["message"] == e.fields["message"] for e in events)


def test_a_12_mib_line_is_truncated_to_message_max_bytes(harness, files, start):
    log = files / "big.log"
    log.write_bytes(b"x" * (12 * MIB) + b"\nnext\n")
    start(message_max_bytes="1MiB")
    big, following = harness.take(2)
    assert big.fields["message"] == "x" * MIB
    assert big.fields["log"]["flags"] == ["truncated"] and big.fields["tags"] == ["_truncated"]
    assert following.fields["message"] == "next" and following.fields["log"]["offset"] == 12 * MIB + 1
    assert committed(harness)[identity(log)]["offset"] == log.stat().st_size


def test_an_endless_line_is_sent_truncated_and_its_rest_skipped_across_a_restart(harness, files, start):
    log = files / "endless.log"
    log.write_bytes(b"y" * (3 * MIB))
    first = start(message_max_bytes="1MiB")
    (truncated,) = harness.take(1)
    assert len(truncated.fields["message"]) == MIB and "truncated" in truncated.fields["log"]["flags"]
    assert committed(harness)[identity(log)]["skip_to_newline"] is True
    first.stop()
    append(log, b"y" * 1000 + b"\nafter\n")
    start(message_max_bytes="1MiB")
    (after,) = harness.take(1)
    assert after.fields["message"] == "after", "the rest of the long line is not sent as a new line"


def test_multiline_crowdstrike_pretty_json_then_ndjson(harness, files, start):
    records = [{"metadata": {"customerIDString": "abc", "offset": n, "eventType": "UserActivityAuditEvent"},
                "event": {"UserId": f"user{n}", "OperationName": "detection_update"}} for n in range(3)]
    text = "".join(json.dumps(record, indent=4) + "\n" for record in records)
    log = files / "falcon.log"
    log.write_text(text)
    start(parsers=[
        {"multiline": {"type": "pattern", "pattern": "^{", "negate": True, "match": "after", "timeout": "200ms"}},
        {"ndjson": {"target": "crowdstrike"}},
    ])
    events = harness.take(3)
    assert [e.fields["crowdstrike"] for e in events] == records
    assert [e.fields["log"]["offset"] for e in events] == [i for i, c in enumerate(text) if c == "{" and
                                                          (i == 0 or text[i - 1] == "\n")]
    assert all(e.fields["log"]["flags"] == ["multiline"] for e in events)
    assert committed(harness)[identity(log)]["offset"] == len(text), "the last record was sent on timeout"


def test_ndjson_under_root_forwards_a_bad_line_raw_with_its_error(harness, files, start):
    log = files / "app.log"
    log.write_text('{"user": {"name": "alice"}, "msg": "login ok"}\nnot json at all\n')
    start(parsers=[{"ndjson": {"target": "", "add_error_key": True, "message_key": "msg"}}])
    good, bad = harness.take(2)
    assert good.fields["user"] == {"name": "alice"} and good.fields["message"] == "login ok"
    assert good.fields["log"]["offset"] == 0
    assert bad.fields["message"] == "not json at all"
    assert bad.fields["error"]["type"] == "json" and bad.fields["error"]["message"].startswith("Error decoding JSON")
    assert bad.fields["tags"] == ["_parse_failure"]


# ----- rotation, truncation, identity --------------------------------------------


def test_rename_rotation_with_unacknowledged_lines_reads_each_line_once(harness, files, start):
    log, rotated = files / "app.log", files / "app.log.1"
    log.write_text("".join(f"old {n}\n" for n in range(5)))
    running = start(paths=[str(files / "app.log*")])
    pending = harness.take(5, ack=False)
    old_identity = identity(log)
    os.rename(log, rotated)
    wait_for(lambda: running.stats.extra["files_renamed"] == 1, what="the rename to be noticed")
    append(rotated, "old 5\nold 6\n")
    log.write_text("new 0\nnew 1\nnew 2\n")
    later = harness.take(5, ack=False)
    assert harness.take(1, timeout=0.3) == [], "the rotated file is not read again under its new name"
    by_file = {}
    for event in later:
        by_file.setdefault(event.fields["log"]["file"]["path"], []).append(event.fields["message"])
    assert by_file[str(log)] == ["new 0", "new 1", "new 2"]
    assert by_file[str(rotated)] == ["old 5", "old 6"]
    assert messages(pending) == [f"old {n}" for n in range(5)]
    assert {e.fields["log"]["file"]["path"] for e in pending} == {str(log)}
    assert committed(harness) == {}, "nothing is committed before the output acknowledges"
    acknowledge(pending + later)
    cursors = committed(harness)
    assert cursors[old_identity]["offset"] == rotated.stat().st_size
    assert cursors[old_identity]["path"] == str(rotated)
    assert cursors[identity(log)]["offset"] == log.stat().st_size


def test_a_file_rotated_out_of_the_globs_is_still_read_to_its_end(harness, files, start):
    log = files / "app.log"
    log.write_text("old 0\nold 1\n")
    start()
    harness.take(2)
    old_identity = identity(log)
    os.rename(log, files / "app.log.1")
    append(files / "app.log.1", "old 2, written before the logger reopened\n")
    log.write_text("new 0\n")
    later = harness.take(2)
    assert sorted(messages(later)) == ["new 0", "old 2, written before the logger reopened"]
    assert committed(harness)[old_identity]["offset"] == (files / "app.log.1").stat().st_size


@pytest.mark.parametrize("rewrite", ["copytruncate", "overwrite_in_place"])
def test_truncated_or_rewritten_file_is_read_again_from_the_start(harness, files, start, rewrite):
    log = files / "app.log"
    log.write_text("".join(f"old line {n}\n" for n in range(5)))
    running = start()
    assert len(harness.take(5)) == 5
    if rewrite == "copytruncate":
        shutil.copy(log, files / "app.log.1")
        with open(log, "r+b") as handle:
            handle.truncate(0)
        append(log, "new 0\n")
        expected = ["new 0"]
    else:
        with open(log, "r+b") as handle:
            handle.write("".join(f"NEW LINE {n:03d}\n" for n in range(8)).encode())
        expected = [f"NEW LINE {n:03d}" for n in range(8)]
    events = harness.take(len(expected))
    assert messages(events) == expected
    assert events[0].fields["log"]["offset"] == 0
    assert events[0].meta["_id"] == f"{identity(log)}-1-0", "new content gets ids of its own"
    assert running.stats.extra["files_truncated"] == 1
    assert harness.take(1, timeout=0.3) == []


def test_deleted_and_recreated_file_is_read_from_the_start(harness, files, start):
    log = files / "app.log"
    log.write_text("first file line\n")
    running = start()
    assert messages(harness.take(1)) == ["first file line"]
    log.unlink()
    log.write_text("second file\n")
    (event,) = harness.take(1)
    assert event.fields["message"] == "second file" and event.fields["log"]["offset"] == 0
    wait_for(lambda: running.stats.extra["files_closed"] >= 1, what="the deleted file to be closed")


def test_a_reused_inode_with_a_different_head_is_read_from_the_start(harness, files, start):
    log = files / "app.log"
    log.write_text("brand new content\n")
    stale = {"offset": 6, "path": str(log), "fingerprint": hashlib.sha256(b"other ").hexdigest(),
             "fingerprint_size": 6}
    harness.registry.commit({f"filestream::files::{identity(log)}": stale})
    start()
    (event,) = harness.take(1)
    assert event.fields["message"] == "brand new content" and event.fields["log"]["offset"] == 0


def test_a_file_matching_the_glob_later_is_picked_up(harness, files, start):
    start()
    (files / "other.txt").write_text("not matched\n")
    (files / "late.log").write_text("late\n")
    assert messages(harness.take(1)) == ["late"]


def test_restart_resumes_after_the_last_acknowledged_line(harness, files, start):
    log = files / "app.log"
    lines = [f"line {n:02d}" for n in range(10)]
    log.write_text("".join(line + "\n" for line in lines))
    first = start()
    acked = harness.take(4)
    unacked = harness.take(6, ack=False)
    assert messages(acked + unacked) == lines
    assert first.stop() < 1.0
    start()
    replayed = harness.take(6)
    assert messages(replayed) == lines[4:], "nothing lost, only unacknowledged lines replayed"
    assert [e.meta["_id"] for e in replayed] == [e.meta["_id"] for e in unacked], "replays keep their ids"
    assert harness.take(1, timeout=0.3) == []


def test_clean_removed_drops_the_state_of_files_that_are_gone(harness, files, start):
    gone, kept = files / "gone.log", files / "kept.log"
    gone.write_text("a\n")
    kept.write_text("b\n")
    running = start()
    harness.take(2)
    gone_identity = identity(gone)
    assert set(committed(harness)) == {gone_identity, identity(kept)}
    kept_identity = identity(kept)
    append(kept, "c\n")
    unacknowledged = harness.take(1, ack=False)
    gone.unlink()
    wait_for(lambda: running.stats.extra["files_removed"] == 1, what="the input to notice the removal")
    assert gone_identity in committed(harness), "the deletion waits for what was read before it"
    harness.queue.release(unacknowledged)
    acknowledge(unacknowledged)
    assert messages(unacknowledged) == ["c"]
    assert set(committed(harness)) == {kept_identity}, "then it is committed without waiting for a next event"


# ----- selection and limits ------------------------------------------------------


def test_exclude_files_and_ignore_older(harness, files, start):
    (files / "app.log").write_text("wanted\n")
    (files / "debug.log").write_text("excluded\n")
    old = files / "old.log"
    old.write_text("old line\n")
    an_hour_ago = time.time() - 7200
    os.utime(old, (an_hour_ago, an_hour_ago))
    running = start(exclude_files=[r"debug\.log$"], ignore_older="1h")
    assert messages(harness.take(1)) == ["wanted"]
    assert harness.take(1, timeout=0.3) == []
    assert running.stats.extra["files_seen"] == 2 and running.stats.extra["files_opened"] == 1
    append(old, "written again\n")
    assert messages(harness.take(2)) == ["old line", "written again"], "an ignored file that changes is read"


def test_include_and_exclude_lines(harness, files, start):
    (files / "app.log").write_text("DEBUG noise\nINFO kept\nINFO ignored heartbeat\nWARN kept too\n")
    start(include_lines=["^(INFO|WARN)"], exclude_lines=["heartbeat"])
    assert messages(harness.take(2)) == ["INFO kept", "WARN kept too"]
    assert harness.take(1, timeout=0.3) == []


def test_inactive_file_is_closed_and_reopened_when_it_grows(harness, files, start):
    log = files / "app.log"
    log.write_text("one\n")
    running = start(close={"on_state_change": {"inactive": "200ms"}})
    harness.take(1)
    wait_for(lambda: running.stats.extra["files_open"] == 0, what="the inactive file to be closed")
    append(log, "two\n")
    (event,) = harness.take(1)
    assert event.fields["message"] == "two" and event.fields["log"]["offset"] == 4
    assert running.stats.extra["files_opened"] == 2


def test_harvester_limit_bounds_open_files(harness, files, start):
    for name in ("a.log", "b.log", "c.log"):
        (files / name).write_text(f"{name}\n")
    running = start(harvester_limit=1, close={"on_state_change": {"inactive": "100ms"}})
    events = harness.take(3)
    assert sorted(messages(events)) == ["a.log", "b.log", "c.log"]
    assert running.stats.extra["files_opened"] == 3 and running.stats.extra["files_open"] <= 1


# ----- stopping ------------------------------------------------------------------


def test_stop_is_prompt_when_idle_and_when_blocked_on_a_full_queue(tmp_path, files):
    idle_harness = PipelineHarness(tmp_path / "idle")
    blocked_harness = PipelineHarness(tmp_path / "blocked", max_events=2)
    try:
        (files / "app.log").write_text("".join(f"{n}\n" for n in range(50)))
        config = {"paths": [str(files / "*.log")], "prospector": {"scanner": {"check_interval": "10s"}}}
        idle = RunningInput(idle_harness, config, "idle")
        idle_harness.take(50)
        assert idle.stop() < 0.5
        blocked = RunningInput(blocked_harness, config, "blocked")
        wait_for(lambda: blocked_harness.queue.active_events == 2, what="the queue to fill up")
        assert blocked.stop(queue_closed_by=blocked_harness.queue) < 0.5
    finally:
        idle_harness.close()
        blocked_harness.close()


# ----- configuration -------------------------------------------------------------


def test_config_reads_filebeat_keys():
    config, problems = parse({
        "paths": ["/var/log/*.log"], "prospector": {"scanner": {"check_interval": "1s",
                                                                           "exclude_files": [r"\.gz$"]}},
        "close": {"on_state_change": {"inactive": "2m", "removed": False}}, "ignore_older": "24h",
        "encoding": "UTF-8", "message_max_bytes": "1MiB", "harvester_limit": 5, "clean_removed": False,
        "parsers": [{"ndjson": {"target": ""}}], "file_identity": {"native": None},
    })
    assert problems == []
    assert config.check_interval == 1 and config.close_inactive == 120 and not config.close_removed
    assert config.exclude_files[0].pattern == r"\.gz$" and config.ignore_older == 86400
    assert config.message_max_bytes == MIB and config.harvester_limit == 5 and not config.clean_removed


@pytest.mark.parametrize("config, expected", [
    ({"paths": ["/x"], "encoding": "latin1"}, "inputs.yml: encoding: 'latin1' is not supported; use utf-8"),
    ({}, "inputs.yml: paths: is required"),
    ({"paths": []}, "inputs.yml: paths: must list at least one glob"),
    ({"paths": ["/x"], "exclude_files": ["("]}, "inputs.yml: exclude_files: invalid regular expression '('"),
    ({"paths": ["/x"], "prospector": {"scanner": {"check_intervall": "1s"}}},
     "inputs.yml: prospector.scanner.check_intervall: unknown setting (did you mean"),
    ({"paths": ["/x"], "prospector": {"scanner": {"check_interval": "0s"}}},
     "inputs.yml: prospector.scanner.check_interval: must be a duration greater than 0"),
    ({"paths": ["/x"], "file_identity": {"fingerprint": {}}}, "inputs.yml: file_identity: only file_identity.native"),
    ({"paths": ["/x"], "message_max_bytes": "lots"}, "inputs.yml: message_max_bytes: 'lots' is not a size"),
    ({"paths": ["/x"], "parsers": [{"multiline": {"type": "count"}}]},
     "inputs.yml: parsers.0.multiline.count_lines: is required"),
])
def test_config_errors_name_the_key(config, expected):
    _, problems = parse(config)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_default_id_is_stable_and_depends_on_the_paths():
    one, _ = parse({"paths": ["/a/*.log", "/b/*.log"]})
    same, _ = parse({"paths": ["/b/*.log", "/a/*.log"]})
    other, _ = parse({"paths": ["/c/*.log"]})
    assert default_id(one) == default_id(same) != default_id(other)
    assert default_id(one).startswith("filestream-")


def test_a_missing_id_is_warned_about_only_when_the_derived_id_is_used(harness, files, caplog):
    config, _ = parse({"paths": [str(files / "*.log")]})
    client = harness.connect("filestream", input_id="any")
    caplog.set_level(logging.WARNING, logger="test.filestream")
    for input_id in (default_id(config), "explicit"):
        context = InputContext(input_id, client, threading.Event(), logging.getLogger("test.filestream"),
                               client.stats, harness.data_path)
        INPUT_TYPE.create(config, context)
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"filestream input {default_id(config)} has no `id`; set one")
