"""move_fields: Filebeat's documented examples, failures that leave the event as it was, and `when`."""

from __future__ import annotations

import pytest

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError
from tests.unit.test_processors import build, run

APP = {"app": {"method": "a", "elapsed_time": 100, "user_id": 100, "message": "i'm a message"}}


def test_documented_example_moves_two_fields_into_an_object_of_their_parent():
    processors = build("""
processors:
  - move_fields:
      from: "app"
      fields: ["method", "elapsed_time"]
      to: "rpc."
""")
    assert run(processors, APP).fields == {
        "app": {"user_id": 100, "message": "i'm a message", "rpc": {"method": "a", "elapsed_time": 100}}}


def test_documented_example_prefixes_the_whole_event():
    processors = build("""
processors:
  - move_fields:
      to: "my_prefix_"
""")
    assert run(processors, {"app": {"method": "a"}, "cost": 100}).fields == {
        "my_prefix_app": {"method": "a"}, "my_prefix_cost": 100}


def test_exclude_keeps_fields_back_and_when_selects_events():
    processors = build("""
processors:
  - move_fields:
      from: app
      exclude: [message, user_id]
      to: "rpc."
      when.has_fields: [app.method]
""")
    assert run(processors, APP).fields["app"] == {
        "user_id": 100, "message": "i'm a message", "rpc": {"method": "a", "elapsed_time": 100}}
    assert run(processors, {"app": {"x": 1}}).fields == {"app": {"x": 1}}


def test_a_missing_listed_field_fails_without_changing_the_event_unless_ignored():
    processors = build("""
processors:
  - move_fields: {from: app, fields: [method, nope], to: "rpc."}
""")
    event = Event({"app": {"method": "a"}})
    with pytest.raises(FieldError, match="nope"):
        processors[0](event)
    assert event.fields == {"app": {"method": "a"}}
    lenient = build("""
processors:
  - move_fields: {from: app, fields: [method, nope], to: "rpc.", ignore_missing: true}
""")
    assert run(lenient, {"app": {"method": "a"}}).fields == {"app": {"rpc": {"method": "a"}}}
