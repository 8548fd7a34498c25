"""The syslog parser against the RFC example messages and what real devices send."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import pytest

from forwarder.inputs.syslog_parser import FACILITY_NAMES, SEVERITY_NAMES, SyslogParser, parse_timezone

BOM = b"\xef\xbb\xbf"


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def utc_parser(format: str = "auto") -> SyslogParser:
    return SyslogParser(format, parse_timezone("UTC"))


def test_rfc5424_example_1_with_bom_and_msgid():
    parsed = utc_parser().parse(
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " + BOM
        + b"'su root' failed for lonvick on /dev/pts/8")
    assert parsed.error is None
    assert parsed.message == "'su root' failed for lonvick on /dev/pts/8"
    assert parsed.syslog == {
        "priority": 34,
        "facility": {"code": 4, "name": "security/authorization"},
        "severity": {"code": 2, "name": "Critical"},
        "version": "1",
        "hostname": "mymachine.example.com",
        "appname": "su",
        "msgid": "ID47",
    }
    assert parsed.timestamp == pytest.approx(epoch("2003-10-11T22:14:15.003+00:00"), abs=1e-6)


def test_rfc5424_example_2_with_offset_and_microseconds():
    parsed = utc_parser().parse(
        b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.")
    assert parsed.error is None
    assert parsed.message == "%% It's time to make the do-nuts."
    syslog = parsed.syslog
    assert (syslog["facility"], syslog["severity"]) == ({"code": 20, "name": "local4"}, {"code": 5, "name": "Notice"})
    assert (syslog["hostname"], syslog["appname"], syslog["procid"]) == ("192.0.2.1", "myproc", "8710")
    assert "msgid" not in syslog and "structured_data" not in syslog
    assert parsed.timestamp == pytest.approx(epoch("2003-08-24T12:14:15.000003+00:00"), abs=1e-6)


def test_rfc5424_structured_data_with_escapes_and_several_elements():
    parsed = utc_parser().parse(
        b'<165>1 2003-10-11T22:14:15.003Z host app - - [exampleSDID@32473 iut="3" note="say \\"hi\\" \\] \\\\ \\n"]'
        b'[timeQuality tzKnown="1"][empty] An application event')
    assert parsed.error is None
    assert parsed.syslog["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "note": 'say "hi" ] \\ \\n'},
        "timeQuality": {"tzKnown": "1"},
        "empty": {},
    }
    assert parsed.message == "An application event"


def test_rfc5424_without_message_and_with_nil_timestamp():
    parsed = utc_parser().parse(b'<13>1 - host app 12 - [a b="c"]')
    assert parsed.error is None
    assert parsed.timestamp is None
    assert parsed.message == ""
    assert parsed.syslog["structured_data"] == {"a": {"b": "c"}}


@pytest.mark.parametrize(("raw", "problem"), [
    (b"<13>1 2003-10-11T22:14:15Z host app", "expected TIMESTAMP HOSTNAME"),
    (b"<13>1 2003-13-11T22:14:15Z host app - - - msg", "malformed RFC 5424 timestamp"),
    (b"<13>1 yesterday host app - - - msg", "malformed RFC 5424 timestamp"),
    (b'<13>1 - host app - - [id a="unterminated] msg', "unterminated parameter value"),
    (b'<13>1 - host app - - [id a=b] msg', "bad parameter"),
    (b"<13>1 - host app - - [id", "unterminated [id]"),
    (b"<13>1 - host app - - x msg", "expected '-' or '['"),
    (b'<13>1 - host app - - [id a="b"]msg', "expected a space after the structured data"),
    (b"<13>1 -  host app - - - msg", "empty HOSTNAME"),
    (b'<13>1 - host app - - [="x"] msg', "bad SD-ID"),
])
def test_malformed_rfc5424_keeps_priority_and_the_text(raw, problem):
    parsed = utc_parser().parse(raw)
    assert problem in parsed.error
    assert parsed.syslog["priority"] == 13
    assert parsed.message == raw.decode()[4:]


def test_rfc3164_example_with_year_inferred_from_now():
    now = epoch("2024-03-01T12:00:00+00:00")
    parsed = utc_parser().parse(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", now)
    assert parsed.error is None
    assert parsed.message == "'su root' failed for lonvick on /dev/pts/8"
    assert parsed.syslog["hostname"] == "mymachine"
    assert parsed.syslog["appname"] == "su"
    assert "procid" not in parsed.syslog and "version" not in parsed.syslog
    # October is more than a month ahead of March: last year.
    assert parsed.timestamp == epoch("2023-10-11T22:14:15+00:00")


@pytest.mark.parametrize(("stamp", "now", "expected"), [
    ("Mar  1 00:00:00", "2024-03-01T12:00:00", "2024-03-01T00:00:00"),
    ("Mar 25 00:00:00", "2024-03-01T12:00:00", "2024-03-25T00:00:00"),
    ("Apr  5 00:00:00", "2024-03-01T12:00:00", "2023-04-05T00:00:00"),
    ("Dec 31 23:59:59", "2025-01-01T00:00:05", "2024-12-31T23:59:59"),
    ("Jan  1 00:00:01", "2024-12-31T23:59:58", "2025-01-01T00:00:01"),
    ("Feb 29 10:00:00", "2025-06-01T00:00:00", "2024-02-29T10:00:00"),
    ("Oct 11 2019 22:14:15", "2024-03-01T12:00:00", "2019-10-11T22:14:15"),
    ("oct 11 22:14:15.250", "2024-11-01T00:00:00", "2024-10-11T22:14:15.250"),
])
def test_rfc3164_timestamps(stamp, now, expected):
    parsed = utc_parser().parse(f"<13>{stamp} host app: x".encode(), epoch(now + "+00:00"))
    assert parsed.timestamp == pytest.approx(epoch(expected + "+00:00"), abs=1e-6)
    assert (parsed.syslog["hostname"], parsed.syslog["appname"], parsed.message) == ("host", "app", "x")


def test_rfc3164_stamps_use_the_configured_zone_with_daylight_saving():
    berlin = SyslogParser("auto", parse_timezone("Europe/Berlin"))
    now = epoch("2024-12-01T00:00:00+00:00")
    assert berlin.parse(b"<13>Jul  1 12:00:00 h a: x", now).timestamp == epoch("2024-07-01T10:00:00+00:00")
    assert berlin.parse(b"<13>Nov  1 12:00:00 h a: x", now).timestamp == epoch("2024-11-01T11:00:00+00:00")
    fixed = SyslogParser("auto", parse_timezone("-0530"))
    assert fixed.parse(b"<13>Nov  1 12:00:00 h a: x", now).timestamp == epoch("2024-11-01T17:30:00+00:00")


def test_rfc3339_stamps_in_rfc3164_messages():
    berlin = SyslogParser("rfc3164", parse_timezone("Europe/Berlin"))
    zoned = berlin.parse(b"<13>2024-05-01T10:00:00.5+02:00 host sshd[42]: Accepted")
    assert zoned.timestamp == epoch("2024-05-01T08:00:00.5+00:00")
    assert (zoned.syslog["appname"], zoned.syslog["procid"], zoned.message) == ("sshd", "42", "Accepted")
    assert berlin.parse(b"<13>2024-05-01T10:00:00 host x: y").timestamp == epoch("2024-05-01T08:00:00+00:00")


@pytest.mark.parametrize(("raw", "hostname", "appname", "procid", "message"), [
    (b"<13>Oct 11 22:14:15 su: no hostname", None, "su", None, "no hostname"),
    (b"<13>Oct 11 22:14:15 host cron[123]: with pid", "host", "cron", "123", "with pid"),
    (b"<13>Oct 11 22:14:15 host %ASA-4-106023: Deny tcp", "host", "%ASA-4-106023", None, "Deny tcp"),
    (b"<13>Oct 11 22:14:15 host postfix/smtpd[9]: x", "host", "postfix/smtpd", "9", "x"),
    (b"<13>Oct 11 22:14:15 fe80::1 app: v6 host", "fe80::1", "app", None, "v6 host"),
    (b'<30>Nov 16 02:52:23 sophos device_name="SFW" log_id=1', "sophos", None, None, 'device_name="SFW" log_id=1'),
    (b"<13>Oct 11 22:14:15 host see http://example.com", "host", None, None, "see http://example.com"),
    (b"<13>Oct 11 22:14:15 lonely", None, None, None, "lonely"),
])
def test_rfc3164_header_variants(raw, hostname, appname, procid, message):
    parsed = utc_parser().parse(raw)
    assert parsed.error is None
    assert parsed.syslog.get("hostname") == hostname
    assert parsed.syslog.get("appname") == appname
    assert parsed.syslog.get("procid") == procid
    assert parsed.message == message


def test_priority_followed_by_free_text_is_not_a_failure():
    raw = b'<30>device_name="SFW" timestamp="2021-11-15T20:52:23-0600" log_type="Event" log_id=063411660020 ...'
    parsed = utc_parser().parse(raw)
    assert parsed.error is None
    assert parsed.timestamp is None
    assert parsed.message == raw.decode()[4:]
    assert parsed.syslog == {"priority": 30, "facility": {"code": 3, "name": "system"},
                             "severity": {"code": 6, "name": "Informational"}}


@pytest.mark.parametrize(("raw", "reason"), [
    (b"just some text", "no <PRI> at the start"),
    (b"", "no <PRI> at the start"),
    (b"<192>too high", "priority out of range 0-191"),
    (b"<1234>x", "no <PRI> at the start"),
    (b"13> missing bracket", "no <PRI> at the start"),
])
def test_text_without_priority_is_returned_whole_with_the_reason(raw, reason):
    parsed = utc_parser().parse(raw)
    assert parsed.message == raw.decode()
    assert parsed.syslog == {}
    assert parsed.error == f"not a syslog message: {reason}"


def test_explicit_formats_do_not_guess():
    rfc3164_text = b"<13>Oct 11 22:14:15 host app: x"
    strict = utc_parser("rfc5424").parse(rfc3164_text)
    assert "not an RFC 5424 message" in strict.error
    assert strict.syslog["priority"] == 13 and strict.message == rfc3164_text.decode()[4:]
    bsd = utc_parser("rfc3164").parse(b"<13>1 2003-10-11T22:14:15Z host app - - - msg")
    assert bsd.error is None and "version" not in bsd.syslog
    assert bsd.message == "1 2003-10-11T22:14:15Z host app - - - msg"


def test_trailers_are_trimmed_and_invalid_utf8_replaced():
    parsed = utc_parser().parse(b"<13>1 - h a - - - caf\xc3\xa9 \xff\xfe end\r\n\x00")
    assert parsed.message == "café \ufffd\ufffd end"
    assert utc_parser().parse(b"<13>Oct 11 22:14:15 h a: " + BOM + b"bom\n").message == "bom"


def test_every_priority_maps_to_names():
    parser = utc_parser()
    for priority in range(192):
        syslog = parser.parse(b"<%d>x" % priority).syslog
        assert syslog["facility"] == {"code": priority // 8, "name": FACILITY_NAMES[priority // 8]}
        assert syslog["severity"] == {"code": priority % 8, "name": SEVERITY_NAMES[priority % 8]}
    assert FACILITY_NAMES[19] == "local3" and SEVERITY_NAMES[4] == "Warning"


@pytest.mark.parametrize(("text", "offset_hours"), [("UTC", 0), ("+0200", 2), ("-05:30", -5.5), ("Z", 0)])
def test_parse_timezone_offsets(text, offset_hours):
    zone = parse_timezone(text)
    assert zone.utcoffset(datetime(2024, 1, 1)).total_seconds() == offset_hours * 3600


def test_parse_timezone_names_and_local():
    assert parse_timezone("Local") is None
    winter = datetime(2024, 1, 15, 12, tzinfo=parse_timezone("America/New_York"))
    assert winter.utcoffset().total_seconds() == -5 * 3600
    assert calendar.timegm(winter.astimezone(UTC).timetuple()) == epoch("2024-01-15T17:00:00+00:00")


@pytest.mark.parametrize("text", ["Mars/Olympus", "+2500", "nonsense", ""])
def test_parse_timezone_rejects_unknown_zones(text):
    with pytest.raises(ValueError, match=r"time zone|offset"):
        parse_timezone(text)


@pytest.mark.parametrize("data", [
    b"<13>1 - h a - - - bad \xff byte", b"no pri \xc3(", b"<13>Oct 11 22:14:15 h a: \xed\xa0\x80",
])
def test_invalid_utf8_is_flagged(data):
    assert utc_parser().parse(data).invalid_utf8 is True


def test_valid_utf8_is_not_flagged():
    assert utc_parser().parse(b"<13>1 - h a - - - caf\xc3\xa9").invalid_utf8 is False


def test_consecutive_stamps_of_one_second_and_of_other_seconds_or_zones_each_get_their_own_time():
    parser = SyslogParser("rfc5424", tz=parse_timezone("+0200"))
    stamps = ["2024-06-10T08:15:30.250Z", "2024-06-10T08:15:30.750Z", "2024-06-10T08:15:30.750+02:00",
              "2024-06-10T08:15:30.5", "2024-06-10T08:15:31Z", "2024-06-10T08:15:31Z", "2024-06-10T08:15:30Z",
              "2025-06-10T08:15:30Z", "2025-06-10T08:15:30Z", "2024-06-10T08:15:30.750Z"]
    parsed = [parser.parse(f"<14>1 {stamp} host app - - - text".encode()).timestamp for stamp in stamps]
    base = datetime(2024, 6, 10, 8, 15, 30, tzinfo=UTC).timestamp()
    next_year = datetime(2025, 6, 10, 8, 15, 30, tzinfo=UTC).timestamp()
    assert parsed == [base + 0.25, base + 0.75, base + 0.75 - 7200, base + 0.5 - 7200, base + 1, base + 1, base,
                      next_year, next_year, base + 0.75]
    assert "malformed RFC 5424 timestamp" in parser.parse(b"<14>1 2024-06-10T08:15:3x.750Z h a - - - t").error
