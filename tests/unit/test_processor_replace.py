"""replace: Filebeat's documented example, Go-style replacement templates, failure rules and `when`."""

from __future__ import annotations

import json

import pytest

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError
from tests.unit.test_processors import build, build_with_problems, run


def test_documented_example_changes_usr_bin_to_usr_local_bin():
    processors = build("""
processors:
  - replace:
      fields:
        - field: "file.path"
          pattern: "/usr/"
          replacement: "/usr/local/"
      ignore_missing: false
      fail_on_error: true
""")
    assert run(processors, {"file": {"path": "/usr/bin"}}).fields == {"file": {"path": "/usr/local/bin"}}


def build_expanded(pattern: str, replacement: str, value: str) -> str:
    processors = build("processors:\n  - replace: {fields: [" + json.dumps(
        {"field": "v", "pattern": pattern, "replacement": replacement}) + "]}\n")
    return run(processors, {"v": value}).fields["v"]


def test_go_replacement_templates_insert_groups():
    assert build_expanded(r"(?P<name>b)(c)", "$2-${name}-$$-\\n-$9-$1x-$nope", "abcd") == "ac-b-$-\\n---d"
    processors = build(r"""
processors:
  - replace:
      fields:
        - {field: user, pattern: '^(\w)\w*@(?P<domain>.*)$', replacement: '$1***@${domain}'}
        - {field: note, pattern: 'secret', replacement: ''}
      when.equals.kind: pii
""")
    event = run(processors, {"user": "alice@example.com", "note": "a secret b", "kind": "pii"})
    assert event.fields["user"] == "a***@example.com"
    assert event.fields["note"] == "a  b"
    assert run(processors, {"user": "alice@example.com"}).fields == {"user": "alice@example.com"}


def test_missing_field_fails_unless_ignored_and_a_bad_pattern_is_a_config_error():
    processors = build("""
processors:
  - replace:
      fields: [{field: a, pattern: x, replacement: y}, {field: missing, pattern: x, replacement: y}]
""")
    event = Event({"a": "xx"})
    with pytest.raises(FieldError):
        processors[0](event)
    assert event.fields == {"a": "xx"}
    _, problems = build_with_problems("""
processors:
  - replace:
      fields: [{field: a, pattern: "(", replacement: y}]
""")
    assert len(problems) == 1 and "invalid pattern" in problems[0]
