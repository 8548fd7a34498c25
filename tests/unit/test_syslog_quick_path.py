"""The quick RFC 5424 path makes exactly the event the general parser makes, or leaves the message to it."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import orjson
import pytest

from forwarder.inputs.syslog_events import syslog_event
from forwarder.inputs.syslog_parser import SyslogParser

RECEIVED = 1_733_000_000.5
LOGGEN = (b"<38>1 2026-12-06T10:22:13+00:00 localhost prg00000 1234 - - \xef\xbb\xbfseq: 0000000000, thread: 0000, "
          b"runid: 1796552533, stamp: 2026-12-06T10:22:13 " + b"PADD" * 40 + b"\n")

# Messages the quick path takes.
QUICK = [
    LOGGEN,
    b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
    b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \xef\xbb\xbfAn application event',
    b'<165>1 2003-10-11T22:14:15.003Z host app - - [a@1 x="1"][b@2 y="q\\"uo\\\\te\\]"] two elements',
    b'<165>1 2003-10-11T22:14:15.003Z host app - - [a@1 x="1"][a@1 z="2"] the same id twice',
    b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    b"<0>1 - - - - - -",
    b"<191>1 - - - - - - ",
    b"<007>1 2024-02-29T23:59:59+0130 h a p m - leading zeros in PRI, offset without colon",
    b"<13>1 2024-06-01T10:20:30 h a p m - no zone: the configured one",
    b"<13>1 2024-06-01T10:20:30.123456789z h a p m - nine fraction digits, lower-case z",
    b"<13>1 2024-06-01T10:20:30Z h a p m -  two spaces keep one",
    b"<13>1 2024-06-01T10:20:30Z h a p m - \xef\xbb\xbf",
    b"<13>1 2024-06-01T10:20:30Z h a p m - trailer\r\n\x00",
    "<13>1 2024-06-01T10:20:30Z hôst äpp p m - ünïcödé ✓".encode(),
    b"<13>1 2024-06-01T10:20:30Z h a p m - tab\there",
    b"<13>1 2024-06-01T10:20:30Z h a p m [x@1] empty element",
    b"<13>1 2024-06-01T10:20:30Z h a p m -",
]
# Messages it leaves to the general parser, which reports what is wrong with them (or reads another format).
GENERAL = [
    b"<13>Oct 11 22:14:15 host tag[1]: rfc 3164",
    b"<13>2 2024-06-01T10:20:30Z h a p m - version 2",
    b"<192>1 2024-06-01T10:20:30Z h a p m - priority out of range",
    b"<1234>1 2024-06-01T10:20:30Z h a p m - four digits",
    b"<>1 - - - - - - empty PRI",
    "<١٣>1 2024-06-01T10:20:30Z h a p m - Arabic-Indic digits".encode(),
    b"<13>1 2024-06-01T10:20:30Z h a p m - bad utf-8 \xff\xfe",
    b"<13>1 2024-06-01T10:20:30Z h  p m - empty APP-NAME",
    b"<13>1 2024-06-01T10:20:30Z h a p m",
    b"<13>1 2024-02-30T10:20:30Z h a p m - no such day",
    b"<13>1 yesterday h a p m - not a timestamp",
    b"<13>1 2024-06-01T10:20:30Z h a p m x not structured data",
    b"<13>1 2024-06-01T10:20:30Z h a p m -no space",
    b'<13>1 2024-06-01T10:20:30Z h a p m [x@1 a="unterminated',
    b'<13>1 2024-06-01T10:20:30Z h a p m [x@1 a="1"]no space',
    b"no PRI at all",
    b"",
    b"<13>1 ",
]


def document(event) -> dict:
    return orjson.loads(orjson.dumps({"@timestamp": event.timestamp, **event.fields, "@metadata": event.meta}))


@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=-5)), None])
@pytest.mark.parametrize("format", ["rfc5424", "auto"])
@pytest.mark.parametrize("data", QUICK + GENERAL)
def test_both_paths_make_the_same_event(data, format, zone):
    quick = syslog_event(SyslogParser(format, zone), data, "192.0.2.7:514", False, RECEIVED)
    general = syslog_event(SyslogParser(format, zone), data, "192.0.2.7:514", False, RECEIVED, quick=False)
    assert document(quick) == document(general)
    assert list(quick.fields) == list(general.fields)
    assert orjson.dumps(quick.fields) == orjson.dumps(general.fields)  # the same keys in the same order


@pytest.mark.parametrize("data", QUICK)
def test_the_quick_path_takes_well_formed_rfc5424(data):
    assert SyslogParser("rfc5424", UTC).parse_rfc5424_quickly(data) is not None
    assert SyslogParser("auto", UTC).parse_rfc5424_quickly(data) is not None


@pytest.mark.parametrize("data", GENERAL)
def test_the_quick_path_leaves_the_rest_to_the_general_parser(data):
    assert SyslogParser("rfc5424", UTC).parse_rfc5424_quickly(data) is None


def test_rfc3164_format_never_takes_the_quick_path():
    assert SyslogParser("rfc3164", UTC).parse_rfc5424_quickly(LOGGEN) is None


def test_a_parser_reused_across_messages_keeps_both_paths_equal():
    """The per-second timestamp cache is shared by both paths: interleaving them changes nothing."""
    quick_parser, general_parser = SyslogParser("rfc5424", UTC), SyslogParser("rfc5424", UTC)
    for data in QUICK + GENERAL + QUICK:
        quick = syslog_event(quick_parser, data, "h:1", False, RECEIVED)
        general = syslog_event(general_parser, data, "h:1", False, RECEIVED, quick=False)
        assert document(quick) == document(general)


def test_a_truncated_message_is_tagged_as_before():
    event = syslog_event(SyslogParser("rfc5424", UTC), LOGGEN[:100], "h:1", True, RECEIVED)
    assert event.meta == {"truncated": True} and event.fields["tags"] == ["_truncated"]
