"""decode_cef: header and extension escaping, full extension names, typed values and the ECS fields Filebeat derives."""

from __future__ import annotations

import pytest

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_processors
from forwarder.processors.cef import parse_cef, parse_extensions
from forwarder.schema.section import Section

# Filebeat's decode_cef documentation example (a Check Point style record behind a syslog header).
DOCS_RECORD = ("CEF:0|Trend Micro|Deep Security Manager|1.2.3|600|User Signed In|3|src=10.52.116.160 "
               "suser=admin target=admin msg=User signed in from 2001:db8::5")
ESA_FILE_LINE = ("Fri Mar 25 20:50:10 2022 CEF:0|Cisco|C100V Email Security Virtual Appliance|14.0.0-657|"
                 "ESA_CONSOLIDATED_LOG_EVENT|Consolidated Log Event|5|deviceExternalId=42127C7DDEE76852677B-"
                 "F80CE8074CA3 ESAMID=1053 ESAICID=134 ESAAMPVerdict=UNKNOWN act=QUARANTINED "
                 "suser=sender@example.com duser=rcpt@example.org msg='Testing'")


def build_with_problems(options: dict) -> tuple[list, list[str]]:
    problems: list = []
    data = expand_dotted({"processors": [{"decode_cef": options}]})
    processors = build_processors(Section(data, "", "forwarder.yml", problems).sections("processors"))
    return processors, [str(problem) for problem in problems]


def decode(fields: dict, **options) -> Event:
    processors, problems = build_with_problems(options)
    assert problems == []
    event = Event(fields)
    assert processors[0](event) is event
    return event


def test_filebeat_docs_example():
    event = decode({"message": DOCS_RECORD})
    cef = event.fields["cef"]
    assert cef["version"] == "0"
    assert cef["device"] == {"vendor": "Trend Micro", "product": "Deep Security Manager", "version": "1.2.3",
                             "event_class_id": "600"}
    assert (cef["name"], cef["severity"]) == ("User Signed In", "3")
    assert cef["extensions"] == {"sourceAddress": "10.52.116.160", "sourceUserName": "admin", "target": "admin",
                                 "message": "User signed in from 2001:db8::5"}
    fields = event.fields
    assert fields["source"] == {"ip": "10.52.116.160", "user": {"name": "admin"}}
    assert fields["observer"] == {"vendor": "Trend Micro", "product": "Deep Security Manager", "version": "1.2.3"}
    assert fields["event"] == {"code": "600", "severity": 3}
    assert fields["message"] == "User signed in from 2001:db8::5"


def test_text_before_cef_is_skipped_and_vendor_keys_kept_verbatim():
    event = decode({"message": ESA_FILE_LINE})
    extensions = event.fields["cef"]["extensions"]
    assert extensions["ESAMID"] == "1053" and extensions["ESAICID"] == "134"
    assert extensions["deviceAction"] == "QUARANTINED"
    assert extensions["message"] == "'Testing'"
    assert event.fields["destination"]["user"]["name"] == "rcpt@example.org"
    assert event.fields["event"]["action"] == "QUARANTINED"
    assert event.fields["observer"]["name"] == "42127C7DDEE76852677B-F80CE8074CA3"


def test_header_escapes_pipe_and_backslash():
    header, _ = parse_cef(r"CEF:0|Acme\|Corp|Wid\\get|1|100|name with \| bar|Low|")
    assert header["device.vendor"] == "Acme|Corp"
    assert header["device.product"] == "Wid\\get"
    assert header["name"] == "name with | bar"


def test_extension_escapes_and_values_with_spaces():
    extensions = parse_extensions(r"cs1=a\=b c\\d cs1Label=Rule name msg=line1\nline2 request=http://x/?q\=1")
    assert extensions == {"cs1": "a=b c\\d", "cs1Label": "Rule name", "msg": "line1\nline2",
                          "request": "http://x/?q=1"}


def test_typed_values_ports_times_and_severity_words():
    record = ("CEF:0|V|P|1|7|n|High|spt=1234 dpt=443 dst=192.0.2.9 rt=1700000000123 in=10 "
              "end=Oct 11 2023 22:14:15 smac=00:11:22:33:44:55")
    event = decode({"message": record})
    assert event.fields["source"] == {"port": 1234, "bytes": 10, "mac": "00:11:22:33:44:55"}
    assert event.fields["destination"] == {"port": 443, "ip": "192.0.2.9"}
    assert event.fields["event"]["severity"] == 7
    assert event.fields["event"]["end"] == "2023-10-11T22:14:15.000Z"
    assert event.timestamp == pytest.approx(1700000000.123)


def test_bad_typed_value_stays_text_and_is_named_in_error_message():
    event = decode({"message": "CEF:0|V|P|1|7|n|5|spt=http suser=bob"})
    assert event.fields["cef"]["extensions"]["sourcePort"] == "http"
    assert event.fields["source"] == {"user": {"name": "bob"}}
    assert "sourcePort" in event.fields["error"]["message"]


def test_target_field_and_ecs_false():
    event = decode({"message": DOCS_RECORD}, target_field="x.cef", ecs=False)
    assert event.fields["x"]["cef"]["name"] == "User Signed In"
    assert "source" not in event.fields and "observer" not in event.fields


def test_not_cef_raises_unless_ignore_failure():
    processors, _ = build_with_problems({})
    event = Event({"message": "plain text"})
    with pytest.raises(ValueError, match="no CEF record"):
        processors[0](event)
    assert event.fields == {"message": "plain text"}
    with pytest.raises(ValueError, match="incomplete CEF header"):
        processors[0](Event({"message": "CEF:0|a|b|c"}))
    assert decode({"message": "plain"}, ignore_failure=True).fields == {"message": "plain"}


def test_missing_field_raises_unless_ignore_missing():
    processors, _ = build_with_problems({"field": "event.original"})
    with pytest.raises(ValueError, match="missing"):
        processors[0](Event({}))
    assert decode({}, field="event.original", ignore_missing=True).fields == {}


def test_id_is_accepted_and_unknown_options_reported():
    assert build_with_problems({"id": "cef-1"})[1] == []
    problems = build_with_problems({"target": "x"})[1]
    assert problems and "target" in problems[0]
