"""decode_xml: Filebeat's documented example, targets, document_id, unsafe XML, failures and `when`."""

from __future__ import annotations

import pytest

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError
from tests.unit.test_processors import build, build_with_problems, run

CATALOG = """<catalog>
  <book seq="1">
    <author>William H. Gaddis</author>
    <title>The Recognitions</title>
    <review>One of the great seminal American novels of the 20th century.</review>
  </book>
</catalog>"""
BOOK = {"author": "William H. Gaddis", "review": "One of the great seminal American novels of the 20th century.",
        "seq": "1", "title": "The Recognitions"}


def test_documented_example_decodes_into_the_xml_field():
    processors = build("""
processors:
  - decode_xml:
      field: message
      target_field: xml
""")
    event = run(processors, {"message": CATALOG})
    assert event.fields["xml"] == {"catalog": {"book": BOOK}}
    assert event.fields["message"] == CATALOG


def test_documented_root_merge_overwrites_and_repeated_elements_become_lists():
    processors = build("""
processors:
  - decode_xml:
      field: message
      target_field: ""
      overwrite_keys: true
""")
    two_books = "<catalog><book seq='1'><title>A</title></book><book seq='2'><title>B</title></book></catalog>"
    event = run(processors, {"message": two_books, "catalog": "old"})
    assert event.fields["catalog"] == {"book": [{"seq": "1", "title": "A"}, {"seq": "2", "title": "B"}]}


def test_to_lower_false_in_place_text_beside_attributes_and_namespaces():
    processors = build("processors:\n  - decode_xml: {field: x, to_lower: false}\n")
    event = run(processors, {"x": "<Event xmlns='urn:e'><Data Name='User'>alice</Data></Event>"})
    assert event.fields["x"] == {"Event": {"Data": {"Name": "User", "#text": "alice"}}}


def test_document_id_moves_to_metadata_and_when_selects_events():
    processors = build("""
processors:
  - decode_xml:
      field: message
      target_field: xml
      document_id: catalog.book.seq
      when.contains.message: "<catalog>"
""")
    event = run(processors, {"message": CATALOG})
    assert event.meta["_id"] == "1"
    assert "seq" not in event.fields["xml"]["catalog"]["book"]
    assert run(processors, {"message": "plain"}).fields == {"message": "plain"}


def test_documented_ignore_options_and_failures():
    lenient = build("""
processors:
  - decode_xml:
      field: example
      target_field: xml
      ignore_missing: true
      ignore_failure: true
""")
    assert run(lenient, {"message": "m"}).fields == {"message": "m"}
    assert run(lenient, {"example": "<a><b></a>"}).fields == {"example": "<a><b></a>"}
    strict = build("processors:\n  - decode_xml: {field: example, target_field: xml}\n")
    event = Event({"example": "<a><b></a>"})
    with pytest.raises(FieldError, match="decode_xml"):
        strict[0](event)
    assert event.fields == {"example": "<a><b></a>"}


def test_entity_expansion_is_refused_not_expanded():
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>')
    strict = build("processors:\n  - decode_xml: {field: message, target_field: xml}\n")
    with pytest.raises(FieldError, match="Entities"):
        strict[0](Event({"message": bomb}))


def test_the_wineventlog_schema_is_refused_rather_than_mapped_differently():
    _, problems = build_with_problems("processors:\n  - decode_xml: {field: event.original, schema: wineventlog}\n")
    assert len(problems) == 1 and "wineventlog" in problems[0] and "schema" in problems[0]


def test_root_merge_without_overwrite_keeps_the_events_keys():
    processors = build('processors:\n  - decode_xml: {field: message, target_field: "", overwrite_keys: false}\n')
    event = run(processors, {"message": "<a><b>new</b><c>x</c></a>", "a": {"b": "old"}})
    assert event.fields["a"] == {"b": "old", "c": "x"}


def test_xml_nested_too_deeply_is_a_failure_naming_it():
    deep = "<a>" * 50_000 + "x" + "</a>" * 50_000
    strict = build("processors:\n  - decode_xml: {field: message, target_field: xml}\n")
    with pytest.raises(FieldError, match="nested too deeply"):
        strict[0](Event({"message": deep}))
