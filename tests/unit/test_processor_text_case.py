"""lowercase / uppercase: Filebeat's documented examples, its failure rules and `when`."""

from __future__ import annotations

import json

import pytest

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError
from tests.unit.test_processors import build, build_with_problems, run


def test_uppercase_documented_default_example_renames_the_path_and_upcases_the_value():
    processors = build("""
processors:
  - uppercase:
      fields: ["ab.cd"]
      values: ["testKey"]
""")
    event = run(processors, {"ab": {"cd": "data"}, "CD": {"ef": "data"}, "testKey": "testvalue"})
    assert event.fields == {"AB": {"CD": "data"}, "CD": {"ef": "data"}, "testKey": "TESTVALUE"}


def test_uppercase_alter_full_field_false_changes_only_the_last_segment():
    processors = build("""
processors:
  - uppercase:
      fields: ["ab.cd"]
      alter_full_field: false
""")
    event = run(processors, {"ab": {"cd": "data"}, "CD": {"ef": "data"}})
    assert event.fields == {"ab": {"CD": "data"}, "CD": {"ef": "data"}}


def test_a_key_collision_fails_the_event_and_leaves_it_unchanged():
    processors = build("""
processors:
  - uppercase:
      fields: ["ab"]
""")
    event = Event({"ab": "first", "aB": "second"})
    with pytest.raises(FieldError, match="collision"):
        processors[0](event)
    assert event.fields == {"ab": "first", "aB": "second"}


def test_lowercase_matches_case_insensitively_and_undoes_earlier_renames_on_failure():
    processors = build("""
processors:
  - lowercase:
      fields: ["User.Name", "missing.field"]
""")
    event = Event({"USER": {"NAME": "x"}})
    with pytest.raises(FieldError, match="key not found"):
        processors[0](event)
    assert event.fields == {"USER": {"NAME": "x"}}

    lenient = build("""
processors:
  - lowercase:
      fields: ["User.Name", "missing.field"]
      ignore_missing: true
""")
    assert run(lenient, {"USER": {"NAME": "x"}}).fields == {"user": {"name": "x"}}


def test_fail_on_error_false_skips_only_the_failing_field():
    processors = build("""
processors:
  - lowercase:
      values: ["a", "b"]
      fail_on_error: false
""")
    assert run(processors, {"a": 1, "b": "MiXeD"}).fields == {"a": 1, "b": "mixed"}


def test_protected_fields_are_never_renamed_and_when_selects_events():
    processors = build("""
processors:
  - lowercase:
      fields: ["Type", "Host.Name"]
      ignore_missing: true
      when.equals.source: edge
""")
    assert run(processors, {"type": "T", "Host": {"Name": "h"}, "source": "edge"}).fields == {
        "type": "T", "host": {"name": "h"}, "source": "edge"}
    assert run(processors, {"Host": {"Name": "h"}}).fields == {"Host": {"Name": "h"}}


def test_nothing_to_change_is_a_config_error():
    _, problems = build_with_problems("processors:\n  - lowercase: {ignore_missing: true}\n")
    assert problems and "fields" in problems[0]


@pytest.mark.parametrize(("options", "fields", "expected", "error"), [
    ({"fields": ["a.b.c", "Field1"]},
     {"Field1": {"Field2": "Value"}, "Field3": "Value", "a": {"B": {"C": "D"}}},
     {"field1": {"Field2": "Value"}, "Field3": "Value", "a": {"b": {"c": "D"}}}, None),
    ({"fields": ["a.B.c"], "alter_full_field": False},
     {"Field3": "Value", "a": {"B": {"C": "D"}}}, {"Field3": "Value", "a": {"B": {"c": "D"}}}, None),
    ({"fields": ["Field1", "abcbd"]}, {"Field1": "value1", "ab": "first"}, {"Field1": "value1", "ab": "first"},
     "could not fetch value for key: abcbd, Error: key not found"),
    ({"fields": ["Field4"], "ignore_missing": True}, {"Field3": "Value"}, {"Field3": "Value"}, None),
    ({"fields": ["Field4"], "fail_on_error": False}, {"Field3": "Value"}, {"Field3": "Value"}, None),
    ({"fields": ["field1", "type", "type.value.key", "typeKey"], "ignore_missing": True},
     {"Field1": 1, "type": {"Value": {"Key": 2}}, "TypeKey": 3},
     {"field1": 1, "type": {"Value": {"Key": 2}}, "typekey": 3}, None),
    ({"values": ["a.b.c"]}, {"a": {"b": {"c": "D"}}}, {"a": {"b": {"c": "d"}}}, None),
    ({"values": ["a.B"]}, {"a": {"B": {"C": "D"}}}, {"a": {"B": {"C": "D"}}}, 'value of key "a.B" is not a string'),
    ({"values": ["a.B.c"]}, {"a": {"B": {"C": "D"}}}, {"a": {"B": {"C": "D"}}},
     "could not fetch value for key: a.B.c, Error: key not found"),
])
def test_filebeat_lowercase_vectors(options, fields, expected, error):
    processors = build("processors:\n  - lowercase: " + json.dumps(options) + "\n")
    event = Event(fields)
    if error is None:
        assert processors[0](event).fields == expected
        return
    with pytest.raises(FieldError) as failure:
        processors[0](event)
    assert str(failure.value) == error
    assert event.fields == expected
