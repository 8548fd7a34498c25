"""timestamp: Filebeat's documented example, Go layout rules, zones, epoch layouts, failures and `when`."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.field_path import FieldError
from forwarder.processors.go_time import compile_layout
from tests.unit.test_processors import build, build_with_problems, run

DOCUMENTED = """
processors:
  - timestamp:
      field: start_time
      layouts:
        - '2006-01-02T15:04:05Z'
        - '2006-01-02T15:04:05.999Z'
        - '2006-01-02T15:04:05.999-07:00'
      test:
        - '2019-06-22T16:33:51Z'
        - '2019-11-18T04:59:51.123Z'
        - '2020-08-03T07:10:20.123456+02:00'
  - drop_fields:
      fields: [start_time]
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("2019-06-22T16:33:51Z", "2019-06-22T16:33:51.000Z"),
    ("2019-11-18T04:59:51.123Z", "2019-11-18T04:59:51.123Z"),
    ("2020-08-03T07:10:20.123456+02:00", "2020-08-03T05:10:20.123Z"),
])
def test_documented_example_sets_the_timestamp_and_drops_the_field(text, expected):
    event = run(build(DOCUMENTED), {"start_time": text, "message": "m"})
    assert format_timestamp(event.timestamp) == expected
    assert event.fields == {"message": "m"}


@pytest.mark.parametrize(("layout", "text", "expected"), [
    ("Jan _2 15:04:05", "Feb  3 01:02:03", datetime(2026, 2, 3, 1, 2, 3, tzinfo=UTC)),
    ("Jan 2, 2006 at 3:04pm (MST)", "Feb 3, 2013 at 7:54pm (UTC)", datetime(2013, 2, 3, 19, 54, tzinfo=UTC)),
    ("02/Jan/2006:15:04:05 -0700", "10/Oct/2000:13:55:36 -0700", datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)),
    ("Mon January 2 2006 03:04:05 PM", "thu december 5 2024 12:30:00 AM", datetime(2024, 12, 5, 0, 30, tzinfo=UTC)),
    ("06-01-02 15:04:05,000", "99-12-31 23:59:59,250", datetime(1999, 12, 31, 23, 59, 59, 250000, tzinfo=UTC)),
    ("2006 002", "2024 060", datetime(2024, 2, 29, tzinfo=UTC)),
])
def test_go_layouts(layout, text, expected):
    assert compile_layout(layout).parse(text, UTC, 2026) == expected


def test_fixed_width_fraction_and_literals_must_match():
    layout = compile_layout("2006-01-02 15:04:05.000")
    with pytest.raises(ValueError):
        layout.parse("2024-01-01 10:00:00.12", UTC, 2026)
    with pytest.raises(ValueError):
        layout.parse("2024-01-01T10:00:00.123", UTC, 2026)


def test_timezone_target_field_epoch_layouts_and_when():
    processors = build("""
processors:
  - timestamp:
      field: local
      target_field: event.start
      layouts: ['2006-01-02 15:04:05']
      timezone: America/New_York
      when.has_fields: [local]
  - timestamp:
      field: epoch
      layouts: [UNIX]
      ignore_missing: true
  - timestamp:
      field: epoch_ms
      layouts: [UNIX_MS]
      ignore_missing: true
""")
    event = run(processors, {"local": "2024-07-01 08:00:00", "epoch": "1700000000.5"})
    assert event.fields["event"]["start"] == "2024-07-01T12:00:00.000Z"
    assert format_timestamp(event.timestamp) == "2023-11-14T22:13:20.500Z"
    assert run(processors, {"epoch_ms": 1700000000123}).timestamp == 1700000000.123
    assert run(processors, {"epoch_ms": "1700000000123.5"}).timestamp == pytest.approx(1700000000.1235)
    assert run(processors, {"other": 1}, timestamp=5.0).timestamp == 5.0


def test_unparsable_value_fails_unless_ignore_failure():
    strict = build("processors:\n  - timestamp: {field: t, layouts: ['2006-01-02']}\n")
    event = Event({"t": "yesterday"}, timestamp=5.0)
    with pytest.raises(FieldError, match="failed parsing time field t='yesterday'"):
        strict[0](event)
    with pytest.raises(FieldError, match="key not found"):
        strict[0](Event({}))
    with pytest.raises(FieldError, match="failed parsing time field t='20240101'"):
        strict[0](Event({"t": 20240101}))
    lenient = build("processors:\n  - timestamp: {field: t, layouts: ['2006-01-02'], ignore_failure: true}\n")
    assert run(lenient, {"t": "yesterday"}, timestamp=5.0).timestamp == 5.0


def test_config_errors_for_test_values_and_zones():
    _, problems = build_with_problems("processors:\n  - timestamp: {field: t, layouts: ['2006-01-02'], "
                                      "test: ['2024/01/01']}\n")
    assert problems and "does not parse" in problems[0]
    _, problems = build_with_problems("processors:\n  - timestamp: {field: t, layouts: ['2006'], "
                                      "timezone: Mars/Base}\n")
    assert problems and "unknown time zone" in problems[0]


# Filebeat's own cases: 2015-03-07 11:06:39 UTC written with Go's standard layouts, then read in various zones.
EXPECTED = datetime(2015, 3, 7, 11, 6, 39, tzinfo=UTC).timestamp()
ANSIC = "Mon Jan _2 15:04:05 2006"


@pytest.mark.parametrize("value", ["Sat Mar  7 11:06:39 2015", "2015-03-07T11:06:39Z", "2015-03-07T11:06:39.000Z"])
def test_filebeat_standard_layout_vectors(value):
    processors = build(f"processors:\n  - timestamp: {{field: ts, layouts: ['{ANSIC}', "
                       "'2006-01-02T15:04:05.999999999Z07:00', '2006-01-02T15:04:05Z07:00']}\n")
    assert run(processors, {"ts": value}).timestamp == EXPECTED


@pytest.mark.parametrize(("layout", "value"), [
    ("UNIX", 1425726399), ("UNIX", 1425726399.0), ("UNIX", "1425726399"), ("UNIX", "1425726399.0"),
    ("UNIX_MS", 1425726399000), ("UNIX_MS", 1425726399000.0), ("UNIX_MS", "1425726399000"),
    ("UNIX_MS", "1425726399000.0"),
])
def test_filebeat_epoch_vectors(layout, value):
    processors = build(f"processors:\n  - timestamp: {{field: ts, layouts: [{layout}]}}\n")
    assert run(processors, {"ts": value}).timestamp == EXPECTED


@pytest.mark.parametrize(("zone", "hours_later"), [
    ("America/Panama", 5), ("Etc/UTC", 0), ("Etc/GMT+2", 2), ("+0000", 0), ("+0430", -4.5), ("+03:00", -3),
    ("+00:30", -0.5), ("+04", -4), ("-03:30", 3.5), ("-00:30", 0.5), ("-04", 4),
])
def test_filebeat_timezone_vectors(zone, hours_later):
    processors = build(f"processors:\n  - timestamp: {{field: ts, layouts: ['{ANSIC}'], timezone: '{zone}'}}\n")
    assert run(processors, {"ts": "Sat Mar  7 11:06:39 2015"}).timestamp == EXPECTED + hours_later * 3600


@pytest.mark.parametrize("zone", ["Z", "Equatorial/Kundu", "-400"])
def test_filebeat_invalid_timezones(zone):
    _, problems = build_with_problems(f"processors:\n  - timestamp: {{field: ts, layouts: ['{ANSIC}'], "
                                      f"timezone: '{zone}'}}\n")
    assert problems and "unknown time zone" in problems[0]


def test_filebeat_no_year_vector_takes_the_current_year_in_the_zone():
    processors = build("processors:\n  - timestamp: {field: ts, layouts: ['Jan _2 15:04:05.000'], timezone: EST}\n")
    event = run(processors, {"ts": "Mar  7 11:06:39.002"})
    zone = ZoneInfo("EST")
    expected = datetime(datetime.now(zone).year, 3, 7, 11, 6, 39, 2000, tzinfo=zone)
    assert event.timestamp == expected.timestamp()


def test_filebeat_bad_layout_fails_its_test_value():
    _, problems = build_with_problems("processors:\n  - timestamp: {field: ts, layouts: ['2006-01-89T15:04:05Z07:00'], "
                                      "test: ['2015-03-07T11:06:39Z']}\n")
    assert problems and "does not parse" in problems[0]
