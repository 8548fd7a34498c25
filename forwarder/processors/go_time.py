"""Go's reference-time layouts (`2006-01-02T15:04:05.999Z07:00`), compiled into a parser.

Filebeat's `timestamp` processor takes its `layouts` in Go's notation, and
configs carry them over unchanged, so the same notation is read here with
Go's parsing rules: a layout is split into Go's tokens (`Jan`, `_2`, `15`,
`.000`, `-07:00` …) and everything else must match literally; numeric tokens
without a leading zero take one or two digits; a fraction of a second may
follow the seconds even when the layout has none; month and day names match
without regard to case. A layout without a zone is read in the configured
time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# (token, regex for its value, the name the value is stored under), longest tokens first where they share a start.
_TOKENS: tuple[tuple[str, str, str], ...] = (
    ("January", "(?i:" + "|".join(MONTHS) + ")", "month_name"),
    ("Jan", "(?i:" + "|".join(month[:3] for month in MONTHS) + ")", "month_name"),
    ("Monday", "(?i:" + "|".join(DAYS) + ")", "weekday"),
    ("Mon", "(?i:" + "|".join(day[:3] for day in DAYS) + ")", "weekday"),
    ("MST", r"[A-Z][A-Za-z]{2,4}|GMT[+-]\d{1,2}|[+-]\d{2}", "zone_name"),
    ("2006", r"\d{4}", "year"),
    ("002", r"\d{3}", "yday"),
    ("__2", r"[ \d]{2}\d", "yday"),
    ("01", r"\d{2}", "month"),
    ("02", r"\d{2}", "day"),
    ("03", r"\d{2}", "hour12"),
    ("04", r"\d{2}", "minute"),
    ("05", r"\d{2}", "second"),
    ("06", r"\d{2}", "year2"),
    ("15", r"\d{1,2}", "hour"),
    ("_2", r" ?\d{1,2}", "day"),
    ("1", r"\d{1,2}", "month"),
    ("2", r"\d{1,2}", "day"),
    ("3", r"\d{1,2}", "hour12"),
    ("4", r"\d{1,2}", "minute"),
    ("5", r"\d{1,2}", "second"),
    ("PM", "AM|PM", "ampm"),
    ("pm", "am|pm", "ampm"),
    ("Z070000", r"Z|[+-]\d{6}", "offset"),
    ("Z07:00:00", r"Z|[+-]\d{2}:\d{2}:\d{2}", "offset"),
    ("Z0700", r"Z|[+-]\d{4}", "offset"),
    ("Z07:00", r"Z|[+-]\d{2}:\d{2}", "offset"),
    ("Z07", r"Z|[+-]\d{2}", "offset"),
    ("-070000", r"[+-]\d{6}", "offset"),
    ("-07:00:00", r"[+-]\d{2}:\d{2}:\d{2}", "offset"),
    ("-0700", r"[+-]\d{4}", "offset"),
    ("-07:00", r"[+-]\d{2}:\d{2}", "offset"),
    ("-07", r"[+-]\d{2}", "offset"),
)
_FRACTION = re.compile(r"[.,](0+|9+)(?!\d)")
_OPTIONAL_FRACTION = r"(?:[.,](?P<fraction_{n}>\d+))?"


class LayoutError(ValueError):
    """A value that does not match the layout, or names a date that does not exist."""


@dataclass(frozen=True)
class GoLayout:
    layout: str
    pattern: re.Pattern[str]

    def parse(self, text: str, zone: tzinfo, default_year: int) -> datetime:
        """The time `text` names; `zone` applies when it carries no offset, `default_year` when it has no year."""
        match = self.pattern.fullmatch(text)
        if match is None:
            raise LayoutError(f"{text!r} does not match layout {self.layout!r}")
        parts = {name.rpartition("_")[0]: value for name, value in match.groupdict().items() if value is not None}
        return _assemble(parts, zone, default_year)


def compile_layout(layout: str) -> GoLayout:
    regex, position, count = [], 0, 0
    while position < len(layout):
        fraction = _FRACTION.match(layout, position)
        if fraction is not None:
            digits = fraction.group(1)
            if digits[0] == "0":
                regex.append(rf"[.,](?P<fraction_{count}>\d{{{len(digits)}}})")
            else:
                regex.append(_OPTIONAL_FRACTION.format(n=count))
            position, count = fraction.end(), count + 1
            continue
        token = _token_at(layout, position)
        if token is None:
            regex.append(re.escape(layout[position]))
            position += 1
            continue
        name, pattern, field = token
        regex.append(f"(?P<{field}_{count}>{pattern})")
        count += 1
        position += len(name)
        if field == "second" and not _FRACTION.match(layout, position):
            # Go accepts a fraction right after the seconds even when the layout has none.
            regex.append(_OPTIONAL_FRACTION.format(n=count))
            count += 1
    return GoLayout(layout, re.compile("".join(regex)))


def _token_at(layout: str, position: int) -> tuple[str, str, str] | None:
    for token in _TOKENS:
        name = token[0]
        if layout.startswith(name, position):
            if name == "_2" and layout.startswith("_2006", position):
                return None
            return token
    return None


def _assemble(parts: dict[str, str], zone: tzinfo, default_year: int) -> datetime:
    year = int(parts["year"]) if "year" in parts else default_year
    if "year2" in parts:
        short = int(parts["year2"])
        year = short + (1900 if short >= 69 else 2000)
    month = int(parts.get("month", "1"))
    if "month_name" in parts:
        name = parts["month_name"].lower()
        month = next(number for number, full in enumerate(MONTHS, 1) if name in (full, full[:3]))
    day = int(parts.get("day", "1").strip())
    hour = int(parts.get("hour", "0"))
    if "hour12" in parts:
        hour = int(parts["hour12"])
        if hour > 12:
            raise LayoutError(f"hour {hour} out of range")
        meridiem = parts.get("ampm", "").upper()
        if meridiem == "PM" and hour < 12:
            hour += 12
        elif meridiem == "AM" and hour == 12:
            hour = 0
    fraction = parts.get("fraction", "")
    microsecond = int((fraction + "000000")[:6]) if fraction else 0
    try:
        if "yday" in parts:
            first = datetime(year, 1, 1) + timedelta(days=int(parts["yday"].strip()) - 1)
            month, day = first.month, first.day
        return datetime(year, month, day, hour, int(parts.get("minute", "0")), int(parts.get("second", "0")),
                        microsecond, tzinfo=_offset(parts, zone))
    except ValueError as exc:
        raise LayoutError(str(exc)) from None


def _offset(parts: dict[str, str], zone: tzinfo) -> tzinfo:
    text = parts.get("offset")
    if text is not None:
        if text == "Z":
            return UTC
        sign = -1 if text[0] == "-" else 1
        digits = text[1:].replace(":", "")
        seconds = int(digits[0:2]) * 3600 + int(digits[2:4] or 0) * 60 + int(digits[4:6] or 0)
        return timezone(sign * timedelta(seconds=seconds))
    name = parts.get("zone_name")
    if name is not None and name.upper() in ("UTC", "GMT", "Z"):
        return UTC
    return zone
