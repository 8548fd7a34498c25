"""`when` conditions: Filebeat's semantics on real events, and config errors with their key paths."""

from __future__ import annotations

import pytest
import yaml

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.conditions import build_condition
from forwarder.pipeline.event import Event
from forwarder.schema.section import Section


def compile_when(text: str):
    """Builds the condition under `when:` from YAML, expanded like the config loader does."""
    problems: list = []
    data = expand_dotted(yaml.safe_load(text))
    condition = build_condition(Section(data["when"], "processors.0.drop_event.when", "forwarder.yml", problems))
    return condition, [str(problem) for problem in problems]


def check(text: str):
    condition, problems = compile_when(text)
    assert problems == []
    assert condition is not None
    return condition


def event(**fields) -> Event:
    return Event(fields, timestamp=1_700_000_000.0)


# ---- equals ----

def test_equals_compares_strings_exactly():
    condition = check("when: {equals: {http.request.method: GET}}")
    assert condition(Event({"http": {"request": {"method": "GET"}}}))
    assert not condition(Event({"http": {"request": {"method": "get"}}}))
    assert not condition(Event({"http": {"request": {"method": "GETS"}}}))
    assert not condition(Event({"http": {}}))


def test_equals_keeps_types_apart_like_filebeat():
    code = check("when: {equals: {code: 200}}")
    assert code(event(code=200))
    assert not code(event(code="200"))
    assert not code(event(code=True))
    flag = check("when: {equals: {enabled: true}}")
    assert flag(event(enabled=True))
    assert not flag(event(enabled=1))
    text = check("when: {equals: {code: '200'}}")
    assert text(event(code="200"))
    assert not text(event(code=200))


def test_equals_with_several_fields_needs_all_of_them():
    condition = check("when: {equals: {a: x, b.c: 2}}")
    assert condition(Event({"a": "x", "b": {"c": 2}}))
    assert not condition(Event({"a": "x", "b": {"c": 3}}))
    assert not condition(Event({"a": "x"}))


def test_nested_config_maps_become_dotted_field_names():
    condition = check("""
when:
  equals:
    event:
      module: o365
      dataset: o365.audit
""")
    assert condition(Event({"event": {"module": "o365", "dataset": "o365.audit"}}))
    assert not condition(Event({"event": {"module": "o365", "dataset": "azure.signin"}}))


def test_fields_with_literal_dots_are_found_as_in_filebeat():
    condition = check("when: {equals: {log.level: error}}")
    assert condition(Event({"log.level": "error"}))
    assert condition(Event({"log": {"level": "error"}}))
    assert condition(Event({"log": {"level.x": 1, "level": "error"}}))


def test_equals_reaches_metadata():
    condition = check("when: {equals: {'@metadata.pipeline': p1}}")
    assert condition(Event({}, meta={"pipeline": "p1"}))
    assert not condition(Event({"@metadata": {"pipeline": "p1"}}))


def test_equals_rejects_values_that_cannot_be_compared():
    condition, problems = compile_when("when: {equals: {ratio: 0.5, list: [1]}}")
    assert condition is None
    assert problems == [
        "forwarder.yml: processors.0.drop_event.when.equals.ratio: only strings, integers and booleans can be "
        "compared (got 0.5)",
        "forwarder.yml: processors.0.drop_event.when.equals.list: only strings, integers and booleans can be "
        "compared (got [1])",
    ]


# ---- contains / regexp ----

def test_contains_is_a_substring_test_and_any_array_element_may_match():
    condition = check("when: {contains: {message: denied}}")
    assert condition(event(message="access denied for root"))
    assert not condition(event(message="access granted"))
    assert condition(event(message=["ok", "was denied"]))
    assert not condition(event(message=["ok", 42]))
    assert not condition(event(message=42))
    assert not condition(event())


def test_not_contains_tags_forwarded_is_the_default_filebeat_guard():
    condition = check("when.not.contains.tags: forwarded")
    assert condition(event(tags=["beats_input"]))
    assert condition(event())
    assert not condition(event(tags=["syslog", "forwarded"]))


def test_contains_needs_a_string():
    condition, problems = compile_when("when: {contains: {code: 404}}")
    assert condition is None
    assert problems == ["forwarder.yml: processors.0.drop_event.when.contains.code: expected a string to look for "
                        "(got 404)"]


def test_regexp_searches_unanchored_unless_anchored():
    anywhere = check("when: {regexp: {message: 'fail(ed|ure)'}}")
    assert anywhere(event(message="login failed for bob"))
    assert not anywhere(event(message="login ok"))
    anchored = check("when: {regexp: {message: '^ERROR '}}")
    assert anchored(event(message="ERROR disk full"))
    assert not anchored(event(message="an ERROR disk full"))
    assert anywhere(event(message=["ok", "failure"]))
    assert not anywhere(event(message=None))


def test_invalid_regexp_is_a_config_error_naming_the_key():
    condition, problems = compile_when("when: {regexp: {user: {name: '(unclosed'}}}")
    assert condition is None
    assert len(problems) == 1
    assert problems[0].startswith("forwarder.yml: processors.0.drop_event.when.regexp.user.name: "
                                  "invalid regular expression '(unclosed'")


# ---- range ----

def test_range_bounds_on_a_nested_field():
    condition = check("when: {range: {http: {response: {code: {gte: 400, lt: 500}}}}}")
    for code, expected in ((399, False), (400, True), (404, True), (499.9, True), (500, False)):
        assert condition(Event({"http": {"response": {"code": code}}})) is expected, code


def test_range_written_with_dotted_keys_is_the_same_condition():
    condition = check("when: {range: {http.response.code.gt: 400, http.response.code.lte: 404}}")
    assert condition(Event({"http": {"response": {"code": 404}}}))
    assert not condition(Event({"http": {"response": {"code": 400}}}))
    assert not condition(Event({"http": {"response": {"code": 405}}}))


def test_range_compares_numeric_strings_numerically_and_rejects_the_rest():
    condition = check("when: {range: {bytes.gte: 1000}}")
    assert condition(event(bytes="1500"))
    assert condition(event(bytes="1e4"))
    assert not condition(event(bytes="999"))
    assert not condition(event(bytes="lots"))
    assert not condition(event(bytes=True))
    assert not condition(event(bytes=[2000]))
    assert not condition(event())


def test_range_with_several_fields_needs_all_in_range():
    condition = check("when: {range: {a.gt: 0, b.lt: 10}}")
    assert condition(event(a=1, b=9))
    assert not condition(event(a=1, b=10))
    assert not condition(event(a=0, b=9))


def test_range_config_errors():
    condition, problems = compile_when("when: {range: {code.between: 5, size.gte: big, gte: 3}}")
    assert condition is None
    assert problems == [
        "forwarder.yml: processors.0.drop_event.when.range.code.between: expected <field>.gte, .gt, .lte or .lt",
        "forwarder.yml: processors.0.drop_event.when.range.size.gte: expected a number (got 'big')",
        "forwarder.yml: processors.0.drop_event.when.range.gte: expected <field>.gte, .gt, .lte or .lt",
    ]


# ---- has_fields ----

def test_has_fields_needs_every_field():
    condition = check("when: {has_fields: [user.name, '@metadata._id']}")
    assert condition(Event({"user": {"name": None}}, meta={"_id": "1"}))
    assert not condition(Event({"user": {"name": "bob"}}))
    assert not condition(Event({"user": "bob"}, meta={"_id": "1"}))


def test_has_fields_must_list_fields():
    condition, problems = compile_when("when: {has_fields: []}")
    assert condition is None
    assert problems == ["forwarder.yml: processors.0.drop_event.when.has_fields: expected a non-empty list of "
                        "field names"]


# ---- network ----

def test_network_cidr_ipv4_and_ipv6():
    v4 = check("when: {network: {source.ip: 10.0.0.0/8}}")
    assert v4(Event({"source": {"ip": "10.1.2.3"}}))
    assert not v4(Event({"source": {"ip": "11.1.2.3"}}))
    assert not v4(Event({"source": {"ip": "::1"}}))
    v6 = check("when: {network: {source.ip: '2001:db8::/32'}}")
    assert v6(Event({"source": {"ip": "2001:db8:1::5"}}))
    assert not v6(Event({"source": {"ip": "2001:db9::5"}}))
    assert not v6(Event({"source": {"ip": "10.1.2.3"}}))


def test_network_list_mixes_cidrs_and_names():
    condition = check("when: {network: {destination.ip: ['192.168.1.0/24', loopback]}}")
    assert condition(Event({"destination": {"ip": "192.168.1.20"}}))
    assert condition(Event({"destination": {"ip": "127.0.0.1"}}))
    assert condition(Event({"destination": {"ip": "::1"}}))
    assert not condition(Event({"destination": {"ip": "192.168.2.20"}}))


def test_network_ignores_values_that_are_not_addresses():
    condition = check("when: {network: {ip: private}}")
    assert not condition(event(ip="not-an-ip"))
    assert not condition(event(ip=167772161))
    assert not condition(event())
    assert condition(event(ip=["8.8.8.8", "10.0.0.1"]))


def test_ipv4_mapped_ipv6_addresses_count_as_ipv4():
    condition = check("when: {network: {ip: 10.0.0.0/8}}")
    assert condition(event(ip="::ffff:10.9.8.7"))
    assert check("when: {network: {ip: private}}")(event(ip="::ffff:192.168.0.1"))


NAMED_CASES = [
    ("loopback", "127.0.0.1", True), ("loopback", "127.8.8.8", True), ("loopback", "::1", True),
    ("loopback", "10.0.0.1", False),
    ("private", "10.0.0.1", True), ("private", "172.16.5.4", True), ("private", "172.32.0.1", False),
    ("private", "192.168.100.1", True), ("private", "fd12:3456::1", True), ("private", "fc00::1", False),
    ("private", "8.8.8.8", False),
    ("public", "8.8.8.8", True), ("public", "2001:4860:4860::8888", True), ("public", "239.1.1.1", True),
    ("public", "10.0.0.1", False), ("public", "127.0.0.1", False), ("public", "169.254.10.1", False),
    ("public", "255.255.255.255", False), ("public", "0.0.0.0", False), ("public", "fe80::1", False),
    ("public", "224.0.0.251", False), ("public", "ff01::1", False), ("public", "fd00::1", False),
    ("unicast", "10.0.0.1", True), ("unicast", "8.8.8.8", True), ("unicast", "2001:db8::1", True),
    ("unicast", "224.0.0.1", False), ("unicast", "127.0.0.1", False), ("unicast", "255.255.255.255", False),
    ("unicast", "fe80::1", False), ("unicast", "::", False),
    ("multicast", "239.255.255.250", True), ("multicast", "ff02::1", True), ("multicast", "10.0.0.1", False),
    ("link_local_unicast", "169.254.1.1", True), ("link_local_unicast", "fe80::1", True),
    ("link_local_unicast", "10.0.0.1", False),
    ("link_local_multicast", "224.0.0.251", True), ("link_local_multicast", "ff02::fb", True),
    ("link_local_multicast", "239.1.1.1", False), ("link_local_multicast", "ff05::1", False),
    ("interface_local_multicast", "ff01::1", True), ("interface_local_multicast", "ff02::1", False),
    ("interface_local_multicast", "224.0.0.1", False),
    ("unspecified", "0.0.0.0", True), ("unspecified", "::", True), ("unspecified", "0.0.0.1", False),
]


@pytest.mark.parametrize(("name", "address", "expected"), NAMED_CASES)
def test_named_networks_follow_go_semantics(name, address, expected):
    condition = check(f"when: {{network: {{ip: {name}}}}}")
    assert condition(event(ip=address)) is expected


def test_network_config_errors_name_the_key():
    condition, problems = compile_when("when: {network: {source.ip: [10.0.0.0/8, intranet], dest.ip: 5}}")
    assert condition is None
    assert problems[0].startswith("forwarder.yml: processors.0.drop_event.when.network.source.ip: 'intranet' is "
                                  "neither a CIDR")
    assert problems[1] == ("forwarder.yml: processors.0.drop_event.when.network.dest.ip: expected a CIDR or a "
                           "network name (got 5)")


# ---- and / or / not ----

def test_or_and_not_compose():
    condition = check("""
when:
  or:
    - equals: {http.response.code: 304}
    - and:
        - range: {http.response.code.gte: 400}
        - not:
            contains: {url.path: /health}
""")
    assert condition(Event({"http": {"response": {"code": 304}}}))
    assert condition(Event({"http": {"response": {"code": 404}}, "url": {"path": "/login"}}))
    assert not condition(Event({"http": {"response": {"code": 404}}, "url": {"path": "/healthz"}}))
    assert not condition(Event({"http": {"response": {"code": 200}}}))


def test_composition_errors_are_reported_at_their_position():
    condition, problems = compile_when("""
when:
  and:
    - equals: {a: 1}
    - regexp: {b: '['}
""")
    assert condition is None
    assert len(problems) == 1
    assert problems[0].startswith("forwarder.yml: processors.0.drop_event.when.and.1.regexp.b: invalid regular")
    _, problems = compile_when("when: {or: []}")
    assert problems == ["forwarder.yml: processors.0.drop_event.when.or: expected a non-empty list of conditions"]
    _, problems = compile_when("when: {not: [equals: {a: 1}]}")
    assert problems == ["forwarder.yml: processors.0.drop_event.when.not: expected a condition mapping"]


def test_unknown_empty_and_doubled_conditions_are_config_errors():
    _, problems = compile_when("when: {equal: {a: 1}}")
    assert problems == ["forwarder.yml: processors.0.drop_event.when.equal: unknown condition (did you mean "
                        "'equals'?)"]
    _, problems = compile_when("when: {}")
    assert problems[0].startswith("forwarder.yml: processors.0.drop_event.when: empty condition")
    _, problems = compile_when("when: {equals: {a: 1}, contains: {b: x}}")
    assert problems == ["forwarder.yml: processors.0.drop_event.when: one condition per mapping, found equals, "
                        "contains (combine them with and/or)"]
