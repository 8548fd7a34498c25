"""Which of our inputs a Filebeat file position goes to, and what is listed instead of guessed."""

from __future__ import annotations

import os

from forwarder.config.inputs import parse_input
from forwarder.filebeat_registry.plan import plan_import
from forwarder.schema.section import Section
from tests.fixtures.filebeat_registry.filebeat_memlog import FilebeatMemlog


def specs(*inputs: dict):
    problems = []
    parsed = [parse_input(Section(item, f"inputs.{n}", "filebeat.yml", problems), n) for n, item in enumerate(inputs)]
    assert problems == []
    return parsed


def our_identity(path) -> str:
    stat = os.stat(path)
    return f"{stat.st_dev}-{stat.st_ino}"


def test_a_log_state_goes_to_the_one_log_input_reading_the_file(tmp_path):
    log_file = tmp_path / "syslog"
    log_file.write_text("a\nb\n")
    store = FilebeatMemlog(tmp_path / "filebeat")
    store.log_input(log_file, 2)
    configured = specs({"type": "log", "paths": [str(tmp_path / "sys*")]},
                       {"type": "filestream", "id": "other", "paths": [str(log_file)]})
    plan = plan_import(store.directory, configured)
    assert list(plan.entries) == [f"log::{configured[0].client.input_id}::{our_identity(log_file)}"]
    assert plan.entries[next(iter(plan.entries))]["offset"] == 2 and plan.not_imported == []


def test_two_inputs_reading_the_file_are_listed_not_guessed(tmp_path):
    log_file = tmp_path / "syslog"
    log_file.write_text("a\nb\n")
    store = FilebeatMemlog(tmp_path / "filebeat")
    store.log_input(log_file, 2)
    plan = plan_import(store.directory, specs({"type": "log", "paths": [str(log_file)]},
                                              {"type": "log", "paths": [str(tmp_path / "*")]}))
    assert plan.entries == {}
    assert len(plan.not_imported) == 1 and "several inputs read this file" in plan.not_imported[0]


def test_an_id_less_filestream_state_goes_to_the_filestream_input_reading_the_file(tmp_path):
    app = tmp_path / "app.log"
    app.write_text("a\nb\n")
    store = FilebeatMemlog(tmp_path / "filebeat")
    store.filestream(".global", app, 2)
    plan = plan_import(store.directory, specs({"type": "filestream", "id": "app", "paths": [str(app)]}))
    assert list(plan.entries) == [f"filestream::app::{our_identity(app)}"]


def test_the_smaller_of_two_offsets_for_one_file_is_kept(tmp_path):
    app = tmp_path / "app.log"
    app.write_text("a\nb\nc\n")
    store = FilebeatMemlog(tmp_path / "filebeat")
    larger = store.filestream("app", app, 6)
    store.filestream(".global", app, 2)
    plan = plan_import(store.directory, specs({"type": "filestream", "id": "app", "paths": [str(app)]}))
    assert [value["offset"] for value in plan.entries.values()] == [2]
    assert len(plan.imported) == 1 and "from offset 2" in plan.imported[0]
    assert plan.not_imported == [f"{larger}: filestream::.global::native::{os.stat(app).st_ino}-"
                                 f"{os.stat(app).st_dev} names the same file with a smaller offset, which is kept"]


def test_removed_and_unread_states_are_neither_imported_nor_listed(tmp_path):
    app = tmp_path / "app.log"
    app.write_text("a\n")
    store = FilebeatMemlog(tmp_path / "filebeat")
    key = store.filestream("app", app, 2)
    store.set(key, {**store.entries[key], "ttl": 0})  # Filebeat marks a state removed by its TTL
    store.filestream("old", app, None)  # seen, nothing acknowledged yet
    plan = plan_import(store.directory, specs({"type": "filestream", "id": "app", "paths": [str(app)]}))
    assert plan.entries == {} and plan.not_imported == []


def test_an_identity_kind_we_do_not_keep_is_listed(tmp_path):
    app = tmp_path / "app.log"
    app.write_text("a\n")
    store = FilebeatMemlog(tmp_path / "filebeat")
    store.filestream("app", app, 2, identity="inode_marker::12-abc")
    plan = plan_import(store.directory, specs({"type": "filestream", "id": "app", "paths": [str(app)]}))
    assert plan.entries == {}
    assert plan.not_imported == ["filestream::app::inode_marker::12-abc (" + str(app) + "): Filebeat's "
                                 "'inode_marker' file identity is not one this forwarder keeps"]
