"""add_locale: `event.timezone` as the host's offset or abbreviation, and `when`."""

from __future__ import annotations

import time

from tests.unit.test_processors import build, build_with_problems, run


def test_documented_default_writes_the_utc_offset():
    event = run(build("processors:\n  - add_locale: ~\n"), {"message": "x"})
    offset = time.strftime("%z")
    assert event.fields["event"]["timezone"] == f"{offset[:3]}:{offset[3:]}"


def test_abbreviation_format_and_when():
    processors = build("processors:\n  - add_locale: {format: abbreviation, when.has_fields: [message]}\n")
    assert run(processors, {"message": "x", "event": {"kind": "e"}}).fields["event"] == {
        "kind": "e", "timezone": time.localtime().tm_zone}
    assert run(processors, {"other": 1}).fields == {"other": 1}


def test_unknown_format_is_a_config_error():
    _, problems = build_with_problems("processors:\n  - add_locale: {format: iana}\n")
    assert problems and "format" in problems[0]
