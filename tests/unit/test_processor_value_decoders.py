"""urldecode and decode_base64_field: Filebeat's documented examples, failure rules and `when`."""

from __future__ import annotations

import pytest

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError
from tests.unit.test_processors import build, build_with_problems, run


def test_urldecode_documented_example_decodes_field1_into_field2():
    processors = build("""
processors:
- urldecode:
    fields:
    - from: "field1"
      to: "field2"
    ignore_missing: false
    fail_on_error: true
""")
    event = run(processors, {"field1": "correct%20data%3Fq%3Da+b"})
    assert event.fields == {"field1": "correct%20data%3Fq%3Da+b", "field2": "correct data?q=a b"}


def test_urldecode_bad_escape_fails_and_undoes_earlier_pairs():
    processors = build("""
processors:
- urldecode:
    fields: [{from: a, to: a_decoded}, {from: b, to: b_decoded}]
""")
    event = Event({"a": "x%41", "b": "bad%zz"})
    with pytest.raises(FieldError, match="invalid URL escape"):
        processors[0](event)
    assert event.fields == {"a": "x%41", "b": "bad%zz"}

    lenient = build("""
processors:
- urldecode:
    fields: [{from: a, to: a_decoded}, {from: b, to: b_decoded}, {from: c, to: c_decoded}]
    fail_on_error: false
""")
    assert run(lenient, {"a": "x%41", "b": "bad%zz"}).fields == {"a": "x%41", "b": "bad%zz", "a_decoded": "xA"}


def test_decode_base64_field_documented_example_and_in_place():
    processors = build("""
processors:
- decode_base64_field:
    field:
      from: "field1"
      to: "field2"
    ignore_missing: false
    fail_on_error: true
- decode_base64_field:
    field: {from: other}
    when.has_fields: [other]
""")
    event = run(processors, {"field1": "Y29ycmVjdCBkYXRh", "other": "aGk="})
    assert event.fields == {"field1": "Y29ycmVjdCBkYXRh", "field2": "correct data", "other": "hi"}
    assert run(processors, {"field1": "aGk="}).fields == {"field1": "aGk=", "field2": "hi"}
    assert run(processors, {"field1": "aGk"}).fields == {"field1": "aGk", "field2": "hi"}


def test_decode_base64_field_invalid_text_fails_and_missing_can_be_ignored():
    processors = build("processors:\n- decode_base64_field: {field: {from: f, to: g}}\n")
    event = Event({"f": "not base64!"})
    with pytest.raises(FieldError, match="decode"):
        processors[0](event)
    assert event.fields == {"f": "not base64!"}
    ignoring = build("processors:\n- decode_base64_field: {field: {from: f, to: g}, ignore_missing: true}\n")
    assert run(ignoring, {"x": 1}).fields == {"x": 1}


def test_urldecode_without_to_decodes_in_place_and_needs_fields():
    processors = build("processors:\n- urldecode: {fields: [{from: url.query}], when.has_fields: [url]}\n")
    assert run(processors, {"url": {"query": "q=a%26b"}}).fields == {"url": {"query": "q=a&b"}}
    assert run(processors, {"q": "%41"}).fields == {"q": "%41"}
    _, problems = build_with_problems("processors:\n- urldecode: {ignore_missing: true}\n")
    assert problems and "fields" in problems[0]
