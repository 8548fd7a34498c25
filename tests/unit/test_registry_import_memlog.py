"""Reading Filebeat's memlog registry: checkpoint, then the log's operations after it; damage refuses all."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from forwarder.filebeat_registry.memlog import MemlogError, find_store, go_time, read_store
from tests.fixtures.filebeat_registry.filebeat_memlog import FilebeatMemlog, go_zero_time


def files_digest(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def test_log_only_registry_replays_sets_and_removes(tmp_path):
    store = FilebeatMemlog(tmp_path / "filebeat")
    store.set("a", {"n": 1})
    store.set("b", {"n": 2})
    store.set("a", {"n": 3})
    store.remove("b")
    assert read_store(store.directory) == {"a": {"n": 3}}


def test_checkpoint_then_operations_after_it(tmp_path):
    store = FilebeatMemlog(tmp_path / "filebeat")
    store.set("kept", {"n": 1})
    store.set("removed-later", {"n": 2})
    store.set("changed-later", {"n": 3})
    checkpoint = store.checkpoint()
    assert checkpoint.name == "4.json" and (store.directory / "active.dat").read_text() == str(checkpoint)
    store.remove("removed-later")
    store.set("changed-later", {"n": 4})
    store.set("new", {"n": 5})
    assert read_store(store.directory) == {"kept": {"n": 1}, "changed-later": {"n": 4}, "new": {"n": 5}}


def test_log_entries_older_than_the_checkpoint_are_ignored(tmp_path):
    """A crash between the checkpoint's rename and the log's truncation leaves old operations in log.json."""
    store = FilebeatMemlog(tmp_path / "filebeat")
    store.set("a", {"n": 1})
    old_log = (store.directory / "log.json").read_text()
    store.set("a", {"n": 2})
    store.checkpoint()
    (store.directory / "log.json").write_text(old_log)
    assert read_store(store.directory) == {"a": {"n": 2}}


def test_reading_changes_no_file(tmp_path):
    store = FilebeatMemlog(tmp_path / "filebeat")
    store.set("a", {"n": 1})
    store.checkpoint()
    store.set("b", {"n": 2})
    before = files_digest(store.directory)
    read_store(store.directory)
    assert files_digest(store.directory) == before


def test_uppercase_field_names_are_read_too(tmp_path):
    """Go's decoder matches `K`/`V` as well; Filebeat's own test data writes them so."""
    store = FilebeatMemlog(tmp_path / "filebeat")
    (store.directory / "log.json").write_text('{"op":"set", "id": 1}\n{"K":"key3","V":{"a":3}}\n')
    assert read_store(store.directory) == {"key3": {"a": 3}}


def test_find_store_accepts_the_data_directory(tmp_path):
    FilebeatMemlog(tmp_path / "data" / "registry" / "filebeat")
    for given in (tmp_path / "data", tmp_path / "data" / "registry", tmp_path / "data" / "registry" / "filebeat"):
        assert find_store(given) == tmp_path / "data" / "registry" / "filebeat"
    with pytest.raises(MemlogError, match="no Filebeat registry here"):
        find_store(tmp_path)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "log.json").write_bytes((d / "log.json").read_bytes()[:-7]), "cut off"),
    (lambda d: (d / "log.json").write_text('{"op":"set","id":5}\n{"k":"x","v":{}}\n'), "gap"),
    (lambda d: (d / "log.json").write_text('{"op":"set","id":5}\n'), "no data line"),
    (lambda d: (d / "log.json").write_text('{"op":"set","id":4}\n{"k":"x","v":{\n'), "not valid JSON"),
    (lambda d: (d / "3.json").write_text('[{"_key":"a","n":1},'), "checkpoint is not valid JSON"),
    (lambda d: (d / "active.dat").unlink(), "active.dat: missing"),
    (lambda d: (d / "meta.json").write_text('{"version":"2"}'), "version '2'"),
])
def test_damage_is_one_error_naming_the_file(tmp_path, damage, message):
    store = FilebeatMemlog(tmp_path / "filebeat")
    store.set("a", {"n": 1})
    store.set("b", {"n": 2})
    store.checkpoint()
    store.set("c", {"n": 3})
    damage(store.directory)
    with pytest.raises(MemlogError, match=message) as raised:
        read_store(store.directory)
    assert str(store.directory) in str(raised.value) and "\n" not in str(raised.value)


def test_go_time_decodes_the_two_number_encoding_and_rfc3339():
    moment = datetime(2026, 11, 30, 8, 15, 42, 123456, UTC)
    assert go_time([(0xFFFF << 32) | 123456000, int(moment.timestamp())]) == moment
    # A zone offset of +60 minutes, as a Filebeat running in local time writes it.
    assert go_time([(60 << 32) | 123456000, int(moment.timestamp())]) == moment
    assert go_time("2026-11-30T08:15:42.123456Z") == moment
    assert go_time(go_zero_time()) is None
    assert go_time([281470681743360, 18446744011573954816]) is None
    assert go_time([1 << 56, 5]) is None and go_time("soon") is None


def test_a_registry_written_then_read_keeps_unicode_and_large_numbers(tmp_path):
    store = FilebeatMemlog(tmp_path / "filebeat")
    key = "filestream::é::native::18446744073709551615-1"
    store.set(key, {"cursor": {"offset": 2**40}})
    assert read_store(store.directory) == {key: {"cursor": {"offset": 2**40}}}
