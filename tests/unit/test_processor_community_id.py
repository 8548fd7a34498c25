"""community_id: the Community ID spec's vectors, both directions, ICMP, custom fields and `when`."""

from __future__ import annotations

from forwarder.processors.community_id import community_id
from tests.unit.test_processors import build, run


def tcp_flow() -> dict:
    return {"source": {"ip": "128.232.110.120", "port": 34855},
            "destination": {"ip": "66.35.250.204", "port": 80}, "network": {"transport": "tcp"}}


def test_documented_default_fields_give_the_spec_id_in_either_direction():
    processors = build("processors:\n  - community_id: ~\n")
    forward = run(processors, tcp_flow())
    assert forward.fields["network"]["community_id"] == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    reverse = {"source": {"ip": "66.35.250.204", "port": 80},
               "destination": {"ip": "128.232.110.120", "port": 34855}, "network": {"iana_number": 6}}
    assert run(processors, reverse).fields["network"]["community_id"] == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


def test_seed_changes_the_id():
    processors = build("processors:\n  - community_id: {seed: 1}\n")
    assert run(processors, tcp_flow()).fields["network"]["community_id"] == "1:3V71V58M3Ksw/yuFALMcW0LAHvc="


def test_icmp_echo_request_and_reply_share_an_id():
    request = community_id(0, "192.168.0.89", "192.168.0.1", 1, 8, 0)
    reply = community_id(0, "192.168.0.1", "192.168.0.89", 1, 0, 0)
    assert request == reply
    assert community_id(0, "192.168.0.89", "192.168.0.1", 1, 3, 1) != community_id(0, "192.168.0.1",
                                                                                     "192.168.0.89", 1, 3, 1)


def test_documented_custom_fields_target_and_when():
    processors = build("""
processors:
  - community_id:
      fields:
        source_ip: my_source_ip
        source_port: my_source_port
        destination_ip: my_dest_ip
        destination_port: my_dest_port
        iana_number: my_iana_number
      target: flow.id
      when.has_fields: [my_source_ip]
""")
    event = run(processors, {"my_source_ip": "128.232.110.120", "my_source_port": 34855,
                             "my_dest_ip": "66.35.250.204", "my_dest_port": 80, "my_iana_number": 6})
    assert event.fields["flow"]["id"] == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


def test_an_event_that_is_not_a_flow_is_left_alone():
    processors = build("processors:\n  - community_id: ~\n")
    for fields in ({"message": "x"}, {**tcp_flow(), "source": {"ip": "not-an-ip", "port": 1}},
                   {**tcp_flow(), "destination": {"ip": "66.35.250.204"}}):
        assert "community_id" not in run(processors, fields).fields.get("network", {})


def test_an_existing_id_is_kept_and_icmp_without_type_hashes_as_type_zero():
    processors = build("processors:\n  - community_id: ~\n")
    flow = tcp_flow()
    flow["network"]["community_id"] = "1:kept"
    assert run(processors, flow).fields["network"]["community_id"] == "1:kept"
    icmp = {"source": {"ip": "192.168.0.89"}, "destination": {"ip": "192.168.0.1"}, "network": {"transport": "ICMP"}}
    expected = community_id(0, "192.168.0.89", "192.168.0.1", 1, 0, 0)
    assert run(processors, icmp).fields["network"]["community_id"] == expected
    numbered = {**tcp_flow(), "network": {"iana_number": "6"}, "source": {"ip": "128.232.110.120", "port": "34855"}}
    assert run(processors, numbered).fields["network"]["community_id"] == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
