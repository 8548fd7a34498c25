"""add_network_direction: Filebeat's documented example, all four directions, named networks, `when`."""

from __future__ import annotations

import pytest

from tests.unit.test_processors import build, build_with_problems, run

DOCUMENTED = """
processors:
  - add_network_direction:
      source: source.ip
      destination: destination.ip
      target: network.direction
      internal_networks: [ private ]
"""


@pytest.mark.parametrize(("source", "destination", "direction"), [
    ("10.0.0.1", "192.168.1.1", "internal"),
    ("10.0.0.1", "8.8.8.8", "outbound"),
    ("8.8.8.8", "172.16.0.9", "inbound"),
    ("8.8.8.8", "1.1.1.1", "external"),
])
def test_documented_example(source, destination, direction):
    event = run(build(DOCUMENTED), {"source": {"ip": source}, "destination": {"ip": destination}})
    assert event.fields["network"] == {"direction": direction}


def test_cidrs_and_names_mix_and_when_selects_events():
    processors = build("""
processors:
  - add_network_direction:
      source: src
      destination: dst
      target: dir
      internal_networks: [loopback, 203.0.113.0/24]
      when.has_fields: [src]
""")
    assert run(processors, {"src": "203.0.113.5", "dst": "127.0.0.1"}).fields["dir"] == "internal"
    assert run(processors, {"dst": "127.0.0.1"}).fields == {"dst": "127.0.0.1"}


def test_missing_or_invalid_addresses_leave_the_event_alone():
    processors = build(DOCUMENTED)
    assert run(processors, {"source": {"ip": "10.0.0.1"}}).fields == {"source": {"ip": "10.0.0.1"}}
    assert "network" not in run(processors, {"source": {"ip": "x"}, "destination": {"ip": "10.0.0.1"}}).fields


def test_an_unknown_network_name_is_a_config_error():
    _, problems = build_with_problems(DOCUMENTED.replace("private", "privat"))
    assert problems and "privat" in problems[0]
