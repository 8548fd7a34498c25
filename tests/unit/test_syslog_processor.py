"""The `syslog` processor: a syslog line held in a field parsed as the syslog input parses it, Filebeat's options."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section

RECEIVED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC).timestamp()


def build(text: str):
    problems: list = []
    data = expand_dotted(yaml.safe_load(text))
    processors = build_processors(Section(data, "", "forwarder.yml", problems).sections("processors"))
    assert problems == []
    return processors[0]


def test_rfc5424_line_in_message():
    syslog = build("processors: [{syslog: {}}]")
    event = syslog(Event({"message": '<165>1 2003-10-11T22:14:15.003Z host.example evntslog 42 ID47 '
                                     '[exampleSDID@32473 iut="3"] An application event'}, RECEIVED))
    assert event.fields["message"] == "An application event"
    assert event.fields["log"]["syslog"] == {
        "priority": 165, "facility": {"code": 20, "name": "local4"}, "severity": {"code": 5, "name": "Notice"},
        "version": "1", "hostname": "host.example", "appname": "evntslog", "procid": "42", "msgid": "ID47",
        "structured_data": {"exampleSDID@32473": {"iut": "3"}},
    }
    assert format_timestamp(event.timestamp) == "2003-10-11T22:14:15.003Z"


def test_rfc3164_line_from_another_field_in_the_configured_zone():
    syslog = build("processors: [{syslog: {field: event.original, timezone: '+0200', format: rfc3164}}]")
    event = syslog(Event({"event": {"original": "<34>Feb 11 22:14:15 mymachine su[99]: 'su root' failed"}},
                         RECEIVED))
    assert event.fields["message"] == "'su root' failed"
    assert event.fields["log"]["syslog"]["hostname"] == "mymachine"
    assert event.fields["log"]["syslog"]["appname"] == "su"
    assert event.fields["log"]["syslog"]["procid"] == "99"
    assert format_timestamp(event.timestamp) == "2024-02-11T20:14:15.000Z"


def test_bare_priority_then_payload_keeps_the_payload():
    syslog = build("processors: [{syslog: {}}]")
    event = syslog(Event({"message": '<30>device_name="SFW" log_id=063411660020'}, RECEIVED))
    assert event.fields["message"] == 'device_name="SFW" log_id=063411660020'
    assert event.fields["log"]["syslog"]["severity"] == {"code": 6, "name": "Informational"}
    assert event.timestamp == RECEIVED


def test_overwrite_keys_false_keeps_what_the_event_has():
    syslog = build("processors: [{syslog: {field: raw, overwrite_keys: false}}]")
    event = syslog(Event({"raw": "<13>Feb 11 22:14:15 host app: text", "message": "kept",
                          "log": {"syslog": {"hostname": "kept-host"}}}, RECEIVED))
    assert event.fields["message"] == "kept"
    assert event.fields["log"]["syslog"]["hostname"] == "kept-host"
    assert event.fields["log"]["syslog"]["appname"] == "app"


def test_not_syslog_raises_unless_ignored():
    syslog = build("processors: [{syslog: {}}]")
    with pytest.raises(ValueError, match="no <PRI>"):
        syslog(Event({"message": "plain text"}))
    with pytest.raises(ValueError, match="RFC 5424"):
        syslog(Event({"message": "<13>1 2003-10-11T22:14:15Z host"}))
    with pytest.raises(ValueError, match="missing"):
        syslog(Event({"other": "x"}))
    lenient = build("processors: [{syslog: {ignore_failure: true, ignore_missing: true}}]")
    assert lenient(Event({"message": "plain text"})).fields == {"message": "plain text"}
    assert lenient(Event({"other": "x"})).fields == {"other": "x"}


def test_unknown_timezone_is_a_config_error():
    problems: list = []
    data = expand_dotted(yaml.safe_load("processors: [{syslog: {timezone: Mars/Olympus}}]"))
    build_processors(Section(data, "", "forwarder.yml", problems).sections("processors"))
    assert len(problems) == 1 and "processors.0.syslog.timezone" in str(problems[0])
