"""The registry must come back with every committed cursor, whatever state the files were left in."""

from __future__ import annotations

import logging
import os

from forwarder.registry import SNAPSHOT_AFTER_BYTES, Registry


def reopen(directory):
    return Registry(directory, flush_interval=0)


def test_committed_values_survive_reopen(tmp_path):
    registry = Registry(tmp_path, flush_interval=0)
    registry.commit({"filestream::a::1-2": {"offset": 10}, "syslog::b::x": 1})
    registry.commit({"filestream::a::1-2": {"offset": 20}, "syslog::b::x": None})
    # No close(): the process "dies" here; the journal alone must hold the state.
    again = reopen(tmp_path)
    assert again.get("filestream::a::1-2") == {"offset": 20}
    assert again.get("syslog::b::x") is None
    assert again.with_prefix("filestream::a::") == {"1-2": {"offset": 20}}


def test_unflushed_commits_are_not_on_disk_until_flush(tmp_path):
    registry = Registry(tmp_path, flush_interval=60)
    registry.commit({"k": 1})
    assert reopen(tmp_path).get("k") is None
    registry.flush()
    assert reopen(tmp_path).get("k") == 1


def test_torn_journal_tail_is_skipped_with_warning(tmp_path, caplog):
    registry = Registry(tmp_path, flush_interval=0)
    registry.commit({"k": 1})
    registry.commit({"k": 2})
    journal = next(tmp_path.glob("journal-*.log"))
    with open(journal, "ab") as handle:
        handle.write(b'0badc0de {"seq": 99, "set": {"k": 3')  # torn write, no newline
    with caplog.at_level(logging.WARNING):
        again = reopen(tmp_path)
    assert again.get("k") == 2
    assert "corrupt line" in caplog.text


def test_corrupt_line_in_the_middle_keeps_later_lines(tmp_path, caplog):
    registry = Registry(tmp_path, flush_interval=0)
    registry.commit({"a": 1})
    registry.commit({"b": 1})
    registry.commit({"c": 1})
    journal = next(tmp_path.glob("journal-*.log"))
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"b":1', b'"b":7')  # checksum no longer matches
    journal.write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING):
        again = reopen(tmp_path)
    assert again.get("a") == 1 and again.get("c") == 1
    assert again.get("b") is None
    assert "corrupt line 2" in caplog.text


def test_unreadable_newest_snapshot_falls_back_to_previous_plus_journals(tmp_path, caplog):
    registry = Registry(tmp_path, flush_interval=0)
    registry.commit({"a": 1})
    registry.close()
    registry = reopen(tmp_path)
    registry.commit({"a": 2, "b": 1})
    registry.close()
    snapshots = sorted(tmp_path.glob("snapshot-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    assert len(snapshots) == 2
    snapshots[-1].write_bytes(b"\x00" * 64)  # power loss left NULs, as in elastic/beats#4733
    with caplog.at_level(logging.WARNING):
        again = reopen(tmp_path)
    assert again.get("a") == 2 and again.get("b") == 1
    assert "unreadable" in caplog.text
    assert list(tmp_path.glob("*.corrupted"))


def test_journal_is_folded_into_a_snapshot_when_large(tmp_path, monkeypatch):
    monkeypatch.setattr("forwarder.registry.SNAPSHOT_AFTER_BYTES", 2048)
    registry = Registry(tmp_path, flush_interval=0)
    for i in range(200):
        registry.commit({f"key-{i % 10}": {"offset": i}})
    journals = list(tmp_path.glob("journal-*.log"))
    assert all(p.stat().st_size < 4096 for p in journals)
    assert len(list(tmp_path.glob("snapshot-*.json"))) <= 2
    again = reopen(tmp_path)
    assert again.get("key-9") == {"offset": 199}
    assert SNAPSHOT_AFTER_BYTES > 2048


def test_files_are_private(tmp_path):
    registry = Registry(tmp_path, flush_interval=0)
    registry.commit({"k": 1})
    registry.close()
    for path in tmp_path.iterdir():
        assert os.stat(path).st_mode & 0o077 == 0, path


def test_torn_tail_is_cut_so_the_next_commit_is_not_glued_to_it(tmp_path):
    Registry(tmp_path, flush_interval=0).close()  # a snapshot and an empty journal to append to
    journal = max(tmp_path.glob("journal-*.log"), key=lambda p: int(p.stem.split("-")[1]))
    with open(journal, "ab") as handle:
        handle.write(b'0badc0de {"seq": 99, "set": {"k": 3')
    reopen(tmp_path).commit({"k": 5})
    assert reopen(tmp_path).get("k") == 5
    assert journal.read_bytes().count(b"\n") == 1 and b"0badc0de" not in journal.read_bytes()


def test_directories_created_for_the_registry_are_0750(tmp_path):
    Registry(tmp_path / "data" / "registry" / "forwarder", flush_interval=0).close()
    for directory in ("data", "data/registry", "data/registry/forwarder"):
        assert os.stat(tmp_path / directory).st_mode & 0o777 == 0o750, directory
