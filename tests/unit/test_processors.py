"""Processors: Filebeat's options and defaults, failure behaviour on one event, and config errors."""

from __future__ import annotations

import platform
import socket

import pytest
import yaml

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.host_metadata import host_fields, linux_os_fields, parse_os_release
from forwarder.pipeline.json_fields import decode_json, expand_dotted_keys
from forwarder.pipeline.processors import build_processors
from forwarder.plugins import PROCESSORS
from forwarder.schema.section import Section


def build_with_problems(text: str):
    """Processors from a `processors:` YAML list, expanded like the config loader does."""
    problems: list = []
    data = expand_dotted(yaml.safe_load(text))
    processors = build_processors(Section(data, "", "forwarder.yml", problems).sections("processors"))
    return processors, [str(problem) for problem in problems]


def build(text: str):
    processors, problems = build_with_problems(text)
    assert problems == []
    return processors


def run(processors, fields: dict, meta: dict | None = None, timestamp: float = 1_700_000_000.0) -> Event | None:
    event: Event | None = Event(fields, timestamp=timestamp, meta=meta)
    for processor in processors:
        event = processor(event)
        if event is None:
            return None
    return event


# ---- the filebeat.yml vendor guides print ----

VENDOR_GUIDE_YML = """
processors:
  - rename:
      fields:
        - from: "agent"
          to: "beat_agent"
      ignore_missing: true
  - rename:
      fields:
        - from: "log.file.path"
          to: "source"
      ignore_missing: true
  - add_host_metadata:
      when.not.contains.tags: forwarded
"""


def test_vendor_guide_processors_run_in_the_real_pipeline(harness):
    harness.pipeline.global_processors = build(VENDOR_GUIDE_YML)
    client = harness.connect("filestream", input_id="logs", fields={"env": "prod"}, fields_under_root=True)
    forwarded = harness.connect("syslog", input_id="relay", tags=["forwarded"])
    client.publish(Event({"message": "hello", "log": {"file": {"path": "/var/log/app.log"}, "offset": 7}}))
    forwarded.publish(Event({"message": "relayed"}))
    local, relayed = harness.take(2)

    fields = local.fields
    assert fields["beat_agent"]["type"] == "filebeat"
    assert fields["beat_agent"]["name"] == "test-host"
    assert "agent" not in fields
    assert fields["source"] == "/var/log/app.log"
    assert fields["log"] == {"file": {}, "offset": 7}
    assert fields["env"] == "prod"
    assert fields["host"]["hostname"] == socket.gethostname()
    assert fields["host"]["os"]["kernel"] == platform.release()

    assert "beat_agent" in relayed.fields and "agent" not in relayed.fields
    assert "host" not in relayed.fields
    assert relayed.fields["tags"] == ["forwarded"]


def test_drop_event_with_when_is_counted_as_filtered(harness):
    harness.pipeline.global_processors = build("""
processors:
  - drop_event:
      when.regexp.message: "^DEBUG"
""")
    client = harness.connect("syslog", input_id="drop")
    client.publish(Event({"message": "DEBUG noisy"}))
    client.publish(Event({"message": "ERROR kept"}))
    (kept,) = harness.take(1)
    assert kept.fields["message"] == "ERROR kept"
    assert client.stats.filtered == 1
    assert client.wait_acked(5.0)


# ---- rename / copy_fields ----

def test_rename_moves_values_and_supports_deeper_targets():
    processors = build("""
processors:
  - rename:
      fields: [{from: a, to: a.value}, {from: b.c, to: d}, {from: e, to: '@metadata._id'}]
""")
    event = run(processors, {"a": 5, "b": {"c": [1], "x": 1}, "e": "id-1"})
    assert event.fields == {"a": {"value": 5}, "b": {"x": 1}, "d": [1]}
    assert event.meta == {"_id": "id-1"}


def test_rename_rolls_back_every_change_and_sets_error_message_on_failure():
    processors = build("""
processors:
  - rename:
      fields: [{from: a, to: x.y}, {from: b, to: c}]
""")
    original = {"a": 1, "b": 2, "c": 3}
    event = run(processors, dict(original))
    assert event is not None
    assert event.fields == {**original, "error": {"message": "failed to rename fields in processor: target field c "
                                                                "already exists, drop or rename this field first"}}


def test_rename_of_a_missing_field_fails_unless_ignore_missing():
    strict = build("processors: [{rename: {fields: [{from: gone, to: here}]}}]")
    event = run(strict, {"message": "m"})
    assert event.fields == {"message": "m", "error": {"message": "failed to rename fields in processor: could not "
                                                                 "fetch value for key: gone, Error: key not found"}}
    lenient = build("processors: [{rename: {fields: [{from: gone, to: here}, {from: a, to: b}], ignore_missing: "
                    "true}}]")
    assert run(lenient, {"a": 1}).fields == {"b": 1}


def test_rename_without_fail_on_error_skips_only_the_failing_pair():
    processors = build("""
processors:
  - rename:
      fail_on_error: false
      fields: [{from: a, to: b}, {from: c, to: d}]
""")
    event = run(processors, {"a": 1, "b": 2, "c": 3})
    assert event.fields == {"a": 1, "b": 2, "d": 3}


def test_rename_cannot_write_through_a_value_and_restores_the_source():
    processors = build("processors: [{rename: {fields: [{from: user, to: message.user}]}}]")
    event = run(processors, {"user": {"name": "bob"}, "message": "text"})
    assert event.fields["user"] == {"name": "bob"}
    assert event.fields["message"] == "text"
    assert event.fields["error"]["message"].startswith("failed to rename fields in processor: expected an object")


def test_timestamp_always_exists_so_rename_cannot_target_it_but_decode_json_fields_can():
    processors = build("processors: [{rename: {fields: [{from: time, to: '@timestamp'}]}}]")
    event = run(processors, {"time": "2024-05-01T10:00:00Z"}, timestamp=5.0)
    assert event.timestamp == 5.0
    assert event.fields["time"] == "2024-05-01T10:00:00Z"
    assert event.fields["error"]["message"].endswith("target field @timestamp already exists, drop or rename this "
                                                     "field first")
    decode = build("processors: [{decode_json_fields: {fields: [time], target: '@timestamp'}}]")
    event = run(decode, {"time": '"2024-05-01T10:00:00Z"'}, timestamp=5.0)
    assert format_timestamp(event.timestamp) == "2024-05-01T10:00:00.000Z"
    unparsable = run(decode, {"time": '"someday"'}, timestamp=5.0)
    assert unparsable.timestamp == 5.0


def test_copy_fields_copies_deeply_and_keeps_the_source():
    processors = build("processors: [{copy_fields: {fields: [{from: user, to: related.user}]}}]")
    event = run(processors, {"user": {"names": ["bob"]}})
    event.fields["related"]["user"]["names"].append("alice")
    assert event.fields["user"] == {"names": ["bob"]}


def test_copy_fields_refuses_to_overwrite_and_respects_ignore_missing():
    processors = build("processors: [{copy_fields: {fields: [{from: a, to: c}, {from: b, to: a}]}}]")
    event = run(processors, {"a": 1, "b": 2})
    assert event.fields == {"a": 1, "b": 2, "error": {
        "message": "failed to copy fields in copy_fields processor: target field a already exists, drop or rename "
                   "this field first"}}
    lenient = build("processors: [{copy_fields: {fields: [{from: x, to: y}], ignore_missing: true}}]")
    assert run(lenient, {"a": 1}).fields == {"a": 1}


# ---- drop_fields / include_fields ----

def test_drop_fields_exact_regex_and_protected_fields():
    processors = build(r"""
processors:
  - drop_fields:
      fields: [agent.ephemeral_id, '/^ecs/', '@metadata.pipeline', '@timestamp', type, missing.field]
      ignore_missing: true
""")
    event = run(processors, {"agent": {"ephemeral_id": "e", "id": "i"}, "ecs": {"version": "8"}, "ecs_x": 1,
                             "type": "log", "message": "m"}, meta={"pipeline": "p", "_id": "1"})
    assert event.fields == {"agent": {"id": "i"}, "type": "log", "message": "m"}
    assert event.meta == {"_id": "1"}
    assert event.timestamp == 1_700_000_000.0


def test_drop_fields_regex_matches_nested_keys():
    processors = build(r"processors: [{drop_fields: {fields: ['/\.secret$/']}}]")
    event = run(processors, {"user": {"secret": "s", "name": "n"}, "secret": "top"})
    assert event.fields == {"user": {"name": "n"}, "secret": "top"}


def test_include_fields_keeps_listed_paths_and_type():
    processors = build("processors: [{include_fields: {fields: [log.file.path, message, absent]}}]")
    event = run(processors, {"log": {"file": {"path": "/p", "inode": 5}, "offset": 1}, "message": "m", "type": "t",
                             "agent": {"name": "a"}}, meta={"_id": "1"})
    assert event.fields == {"log": {"file": {"path": "/p"}}, "message": "m", "type": "t"}
    assert event.meta == {"_id": "1"}
    assert event.timestamp == 1_700_000_000.0


# ---- add_fields / add_tags ----

def test_add_fields_default_target_is_fields_and_merges():
    processors = build("processors: [{add_fields: {fields: {site.name: lab, owners: [a]}}}]")
    event = run(processors, {"fields": {"site": {"id": 1}}})
    assert event.fields == {"fields": {"site": {"id": 1, "name": "lab"}, "owners": ["a"]}}


def test_add_fields_root_and_named_targets_overwrite_leaves():
    root = build("processors: [{add_fields: {target: '', fields: {event.kind: alert, '@metadata.index': sec}}}]")
    event = run(root, {"event": {"kind": "event", "module": "m"}})
    assert event.fields == {"event": {"kind": "alert", "module": "m"}}
    assert event.meta == {"index": "sec"}
    named = build("processors: [{add_fields: {target: project, fields: {name: p1, id: 7}}}]")
    assert run(named, {}).fields == {"project": {"name": "p1", "id": 7}}


def test_add_fields_gives_every_event_its_own_values():
    processors = build("processors: [{add_fields: {fields: {list: [1], map: {k: v}}}}]")
    first = run(processors, {})
    first.fields["fields"]["list"].append(2)
    first.fields["fields"]["map"]["k"] = "changed"
    second = run(processors, {})
    assert second.fields == {"fields": {"list": [1], "map": {"k": "v"}}}


def test_add_tags_creates_appends_and_leaves_non_lists_alone():
    processors = build("processors: [{add_tags: {tags: [web, prod]}}]")
    assert run(processors, {}).fields == {"tags": ["web", "prod"]}
    assert run(processors, {"tags": ["a"]}).fields == {"tags": ["a", "web", "prod"]}
    assert run(processors, {"tags": "a"}).fields == {"tags": "a"}
    custom = build("processors: [{add_tags: {tags: one, target: labels.list}}]")
    assert run(custom, {}).fields == {"labels": {"list": ["one"]}}
    first, second = run(processors, {}), run(processors, {})
    first.fields["tags"].append("x")
    assert second.fields["tags"] == ["web", "prod"]


# ---- if / then / else, when ----

def test_if_then_else_chooses_a_branch():
    processors = build("""
processors:
  - if:
      equals: {log.level: debug}
    then:
      - drop_event: {}
    else:
      - add_tags: {tags: [kept]}
      - add_fields: {target: '', fields: {seen: true}}
""")
    assert run(processors, {"log": {"level": "debug"}}) is None
    assert run(processors, {"log": {"level": "info"}}).fields == {"log": {"level": "info"}, "tags": ["kept"],
                                                                  "seen": True}


def test_if_without_else_leaves_other_events_alone():
    processors = build("processors: [{if: {has_fields: [a]}, then: {add_tags: {tags: [has_a]}}}]")
    assert run(processors, {"a": 1}).fields == {"a": 1, "tags": ["has_a"]}
    assert run(processors, {"b": 1}).fields == {"b": 1}


def test_when_applies_to_any_processor():
    processors = build("""
processors:
  - add_fields:
      when.network.source.ip: private
      target: ''
      fields: {network.direction: internal}
""")
    assert run(processors, {"source": {"ip": "10.1.1.1"}}).fields["network"] == {"direction": "internal"}
    assert "network" not in run(processors, {"source": {"ip": "8.8.8.8"}}).fields


# ---- decode_json_fields ----

def test_decode_json_fields_in_place_and_into_a_target():
    in_place = build("processors: [{decode_json_fields: {fields: [message, absent, count]}}]")
    event = run(in_place, {"message": '{"user": {"id": 5}, "ok": true, "ratio": 0.5}', "count": 3})
    assert event.fields == {"message": {"user": {"id": 5}, "ok": True, "ratio": 0.5}, "count": 3}
    targeted = build("processors: [{decode_json_fields: {fields: [message], target: parsed}}]")
    event = run(targeted, {"message": "[1, 2]"})
    assert event.fields == {"message": "[1, 2]", "parsed": [1, 2]}


def test_decode_json_fields_root_target_respects_overwrite_keys():
    keep = build("processors: [{decode_json_fields: {fields: [message], target: ''}}]")
    text = '{"user": {"name": "bob", "id": 1}, "event": "x", "@timestamp": "2020-01-01T00:00:00Z"}'
    event = run(keep, {"message": text, "user": {"name": "alice"}, "event": {"kind": "k"}}, timestamp=1.0)
    assert event.fields["user"] == {"name": "alice", "id": 1}
    assert event.fields["event"] == {"kind": "k"}
    assert event.timestamp == 1.0
    assert "@timestamp" not in event.fields

    overwrite = build("processors: [{decode_json_fields: {fields: [message], target: '', overwrite_keys: true}}]")
    text = ('{"user": {"name": "bob"}, "@timestamp": "2020-01-01T00:00:00.000Z", "type": "audit", '
            '"@metadata": {"index": "i"}}')
    event = run(overwrite, {"message": text, "user": {"name": "alice", "id": 2}}, timestamp=1.0)
    assert event.fields["user"] == {"name": "bob", "id": 2}
    assert event.fields["type"] == "audit"
    assert event.meta == {"index": "i"}
    assert format_timestamp(event.timestamp) == "2020-01-01T00:00:00.000Z"


def test_decode_json_fields_reports_bad_overwrites_with_add_error_key():
    processors = build("""
processors:
  - decode_json_fields: {fields: [message], target: '', overwrite_keys: true, add_error_key: true}
""")
    event = run(processors, {"message": '{"type": "_doc", "a": 1}'})
    assert event.fields["a"] == 1
    assert event.fields["error"] == {"message": "type not overwritten (invalid value [_doc])", "type": "json"}
    event = run(processors, {"message": '{"@timestamp": "yesterday"}'}, timestamp=1.0)
    assert event.timestamp == 1.0
    assert event.fields["error"]["message"] == "@timestamp not overwritten (parse error on yesterday)"


def test_invalid_json_is_left_alone_and_explained_with_add_error_key():
    quiet = build("processors: [{decode_json_fields: {fields: [message]}}]")
    assert run(quiet, {"message": "not json {"}).fields == {"message": "not json {"}
    assert run(quiet, {"message": "{} {}"}).fields == {"message": "{} {}"}
    loud = build("processors: [{decode_json_fields: {fields: [message], add_error_key: true}}]")
    event = run(loud, {"message": "not json {"})
    assert event.fields["message"] == "not json {"
    error = event.fields["error"]
    assert error["message"].startswith("parsing input as JSON: ")
    assert (error["type"], error["data"], error["field"]) == ("json", "not json {", "message")


def test_max_depth_and_process_array_decode_embedded_json():
    text = '{"inner": "{\\"deep\\": \\"[1]\\"}", "list": ["{\\"x\\": 1}"], "plain": "{not json}"}'
    assert decode_json(text, 1)["inner"] == '{"deep": "[1]"}'
    two = decode_json(text, 2)
    assert two["inner"] == {"deep": "[1]"}
    assert two["list"] == ['{"x": 1}']
    assert two["plain"] == "{not json}"
    three = decode_json(text, 3)
    assert three["inner"] == {"deep": [1]}
    array = '["{\\"x\\": 1}", "[2]"]'
    assert decode_json(array, 2) == ['{"x": 1}', "[2]"]
    assert decode_json(array, 2, process_array=True) == [{"x": 1}, [2]]


def test_numbers_and_non_json_constants_follow_go():
    assert decode_json('{"n": 123456789012345678901234567890, "i": 7}') == {"n": 1.2345678901234568e29, "i": 7}
    with pytest.raises(ValueError):
        decode_json('{"n": NaN}')
    with pytest.raises(ValueError):
        decode_json('{"s": "\\ud800"}')


def test_document_id_moves_to_metadata():
    processors = build("processors: [{decode_json_fields: {fields: [message], target: rec, document_id: meta.id}}]")
    event = run(processors, {"message": '{"meta": {"id": "abc", "v": 1}, "x": 2}'})
    assert event.meta == {"_id": "abc"}
    assert event.fields["rec"] == {"meta": {"v": 1}, "x": 2}
    not_string = run(processors, {"message": '{"meta": {"id": 5}}'})
    assert not_string.meta == {}
    assert not_string.fields["rec"] == {"meta": {"id": 5}}


def test_expand_keys_nests_dotted_keys_and_reports_conflicts():
    processors = build("processors: [{decode_json_fields: {fields: [message], target: '', expand_keys: true, "
                       "add_error_key: true}}]")
    event = run(processors, {"message": '{"log.level": "info", "log.logger": "app", "a": {"b.c": 1}}'})
    assert event.fields["log"] == {"level": "info", "logger": "app"}
    assert event.fields["a"] == {"b": {"c": 1}}
    event = run(processors, {"message": '{"a": 1, "a.b": 2}'})
    assert "a" not in event.fields
    assert event.fields["error"]["message"].startswith("cannot expand 'a.b'")
    assert expand_dotted_keys({"x.y": 1, "x": {"z": 2}}) == {"x": {"y": 1, "z": 2}}


# ---- add_host_metadata ----

def test_add_host_metadata_adds_host_identity_and_os():
    (processor,) = build("processors: [{add_host_metadata: {}}]")
    event = run([processor], {"host": {"name": "from-pipeline"}})
    host = event.fields["host"]
    assert host["hostname"] == socket.gethostname()
    assert host["name"] == socket.gethostname()
    assert set(host["os"]) >= {"type", "family", "name", "kernel", "platform"}
    assert host["architecture"]
    event.fields["host"]["os"]["name"] = "changed"
    assert run([processor], {}).fields["host"]["os"]["name"] == host_fields()["os"]["name"]


def test_add_host_metadata_name_geo_and_replace_fields():
    processors = build("""
processors:
  - add_host_metadata:
      name: edge-1
      replace_fields: false
      netinfo.enabled: true
      cache.ttl: 5m
      geo: {name: dc1, city_name: Paris}
""")
    event = run(processors, {"host": {"name": "x"}})
    assert event.fields["host"]["name"] == "edge-1"
    assert event.fields["host"]["geo"] == {"name": "dc1", "city_name": "Paris"}
    untouched = run(processors, {"host": {"name": "x", "ip": ["10.0.0.1"]}})
    assert untouched.fields["host"] == {"name": "x", "ip": ["10.0.0.1"]}
    replacing = build("processors: [{add_host_metadata: {}}]")
    merged = run(replacing, {"host": {"name": "x", "ip": ["10.0.0.1"], "os": {"extra": 1}}}).fields["host"]
    assert merged["ip"] == ["10.0.0.1"]
    assert merged["os"]["extra"] == 1
    assert merged["os"]["kernel"] == host_fields()["os"]["kernel"]


def test_linux_os_fields_follow_os_release():
    ubuntu = parse_os_release('NAME="Ubuntu"\nVERSION="22.04.3 LTS (Jammy Jellyfish)"\nID=ubuntu\nID_LIKE=debian\n'
                              "VERSION_CODENAME=jammy\n# comment\n")
    assert linux_os_fields(ubuntu, "5.15.0-91-generic") == {
        "type": "linux", "family": "debian", "platform": "ubuntu", "name": "Ubuntu",
        "version": "22.04.3 LTS (Jammy Jellyfish)", "codename": "jammy", "kernel": "5.15.0-91-generic"}
    rocky_like = parse_os_release("NAME='Acme Linux'\nID=acme\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=9.2\n")
    fields = linux_os_fields(rocky_like, "5.14")
    assert (fields["family"], fields["platform"], fields["version"]) == ("redhat", "acme", "9.2")
    assert linux_os_fields({}, "6.1")["platform"] == "linux"


# ---- config errors ----

@pytest.mark.parametrize(("text", "expected"), [
    ("processors: [{add_tags: {tags: [a]}}, {renam: {fields: []}}]",
     ["forwarder.yml: processors.1.renam: unknown processor (did you mean 'rename'?)"]),
    ("processors: [{rename: {ignore_missing: true}}]",
     ["forwarder.yml: processors.0.rename.fields: is required (a list of {from: FIELD, to: FIELD})"]),
    ("processors: [{rename: {fields: [{from: a}], ignore_mising: true}}]",
     ["forwarder.yml: processors.0.rename.fields.0.to: is required (a string)",
      "forwarder.yml: processors.0.rename.ignore_mising: unknown setting (did you mean "
      "'processors.0.rename.ignore_missing'?)"]),
    ("processors: [{drop_fields: {}}]",
     ["forwarder.yml: processors.0.drop_fields.fields: is required (a list of strings)"]),
    ("processors: [{add_fields: {target: x}}]",
     ["forwarder.yml: processors.0.add_fields.fields: is required (a mapping)"]),
    ("processors: [{decode_json_fields: {fields: [m], max_depth: 0}}]",
     ["forwarder.yml: processors.0.decode_json_fields.max_depth: must be at least 1 (got 0)"]),
    ("processors: [{add_tags: {tags: [a]}, drop_event: {}}]",
     ["forwarder.yml: processors.0: each processor item needs exactly one processor name (found add_tags, "
      "drop_event)"]),
    ("processors: [{if: {equals: {a: 1}}}]",
     ["forwarder.yml: processors.0.then: is required (a list of processors)"]),
    ("processors: [{if: {equals: {a: 1}}, then: [{dorp_event: {}}]}]",
     ["forwarder.yml: processors.0.then.0.dorp_event: unknown processor (did you mean 'drop_event'?)"]),
    ("processors: [drop_event]",
     ["forwarder.yml: processors.0: expected a mapping, got str",
      "forwarder.yml: processors.0: each processor item needs exactly one processor name (found none)"]),
])
def test_config_errors_name_the_key(text, expected):
    _, problems = build_with_problems(text)
    assert problems == expected


def test_bad_regex_anywhere_is_a_config_error():
    _, problems = build_with_problems("processors: [{drop_fields: {fields: ['/[/']}}]")
    assert len(problems) == 1
    assert problems[0].startswith("forwarder.yml: processors.0.drop_fields.fields: invalid regular expression '/[/'")
    _, problems = build_with_problems("processors: [{drop_event: {when.regexp.message: '(' }}]")
    assert problems[0].startswith("forwarder.yml: processors.0.drop_event.when.regexp.message: invalid regular")


def test_valid_items_are_still_built_next_to_invalid_ones():
    processors, problems = build_with_problems("processors: [{add_tags: {tags: [a]}}, {nope: {}}]")
    assert len(processors) == 1
    known = ", ".join(PROCESSORS.names())
    assert "add_tags, " in known and "rename" in known
    assert problems == [f"forwarder.yml: processors.1.nope: unknown processor (known: {known})"]
