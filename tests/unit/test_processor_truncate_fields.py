"""truncate_fields: Filebeat's documented example, byte limits on UTF-8, `log.flags`, failures and `when`."""

from __future__ import annotations

import pytest

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError
from tests.unit.test_processors import build, build_with_problems, run


def test_documented_example_truncates_message_to_five_characters():
    processors = build("""
processors:
  - truncate_fields:
      fields:
        - message
      max_characters: 5
      fail_on_error: false
      ignore_missing: true
""")
    assert run(processors, {"message": "hello world"}).fields == {"message": "hello", "log": {"flags": ["truncated"]}}
    assert run(processors, {"message": "hi"}).fields == {"message": "hi"}
    assert run(processors, {"other": 1}).fields == {"other": 1}


def test_max_bytes_never_splits_a_character_and_keeps_existing_flags():
    processors = build("""
processors:
  - truncate_fields: {fields: [message], max_bytes: 4, when.equals.kind: long}
""")
    event = run(processors, {"message": "aé€b", "kind": "long", "log": {"flags": ["multiline"]}})
    assert event.fields["message"] == "aé"
    assert event.fields["log"]["flags"] == ["multiline", "truncated"]
    assert run(processors, {"message": "aé€b"}).fields == {"message": "aé€b"}


def test_a_non_string_field_fails_and_undoes_earlier_cuts():
    processors = build("processors:\n  - truncate_fields: {fields: [a, b], max_characters: 1}\n")
    event = Event({"a": "long", "b": 12345})
    with pytest.raises(FieldError, match="not a string"):
        processors[0](event)
    assert event.fields == {"a": "long", "b": 12345}


def test_exactly_one_limit_is_required():
    _, problems = build_with_problems("processors:\n  - truncate_fields: {fields: [a]}\n")
    assert problems and "exactly one" in problems[0]
    both = "processors:\n  - truncate_fields: {fields: [a], max_bytes: 1, max_characters: 1}\n"
    _, problems = build_with_problems(both)
    assert problems and "exactly one" in problems[0]
