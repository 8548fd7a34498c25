"""Syslog message parsing (RFC 5424, RFC 3164 and what devices really send): bytes in, fields out.

Kept free of sockets so every quirk can be pinned down by unit tests. The field
names and labels are those of Filebeat's syslog processor (`log.syslog.*`,
severity `Warning`, facility `local3`), so existing Logstash conditionals and
dashboards keep matching. Parsing never raises and never loses the text: what
cannot be read as syslog comes back whole, with `error` saying why.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FORMATS = ("rfc3164", "rfc5424", "auto")

SEVERITY_NAMES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
FACILITY_NAMES = (
    "kernel", "user-level", "mail", "system", "security/authorization", "syslogd", "line printer",
    "network news", "UUCP", "clock", "security/authorization", "FTP", "NTP", "log audit", "log alert",
    "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)

_PRI = re.compile(r"<(\d{1,3})>")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:?\d{2})?"
)
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
# `Oct 11 22:14:15`, `Oct  1 22:14:15`, with optional fraction, or Cisco's `Oct 11 2023 22:14:15`.
_BSD_STAMP = re.compile(
    r"(?i:(" + "|".join(_MONTHS) + r")) {1,2}(\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
)
# TAG[PID]: — the program name (≤ 48 characters without space, `[` or `:`), then `: ` or the end.
_TAG = re.compile(r"([^\s\[\]:]{1,48})(?:\[([^\]\s]{1,128})\])?:(?: |$)")
_BOM = "\ufeff"
_TRAILER = "\r\n\0"
_MONTH_SECONDS = 31 * 86400


class _Malformed(Exception):
    """Why a header did not parse; becomes `error.message`."""


@dataclass
class ParsedSyslog:
    """The outcome of parsing one message.

    `syslog` is the `log.syslog` object (empty when there was no PRI),
    `timestamp` is epoch seconds from the header (None: use the receive time),
    `error` is set when the text was not what the configured format promised,
    `invalid_utf8` when bytes that are not UTF-8 were replaced by U+FFFD.
    """

    message: str
    syslog: dict[str, Any] = field(default_factory=dict)
    timestamp: float | None = None
    error: str | None = None
    invalid_utf8: bool = False


def parse_timezone(name: str) -> tzinfo | None:
    """`Local` (None: the host's zone, DST-aware), `UTC`, an offset like `+0200`, or an IANA name."""
    text = name.strip()
    if text.lower() == "local":
        return None
    if text.upper() in ("UTC", "Z"):
        return UTC
    offset = _OFFSET.fullmatch(text)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        hours, minutes = int(offset.group(2)), int(offset.group(3))
        if hours > 23 or minutes > 59:
            raise ValueError(f"{name!r} is not a valid UTC offset")
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use Local, an offset like +0200 or a name like Europe/Berlin)"
        ) from None


class SyslogParser:
    """Parses messages in one configured format; `tz` (None = local) applies to stamps without a zone."""

    def __init__(self, format: str = "auto", tz: tzinfo | None = None) -> None:
        if format not in FORMATS:
            raise ValueError(f"unknown syslog format {format!r}")
        self.format = format
        self.tz = tz
        # ((the stamp up to its seconds, its zone), epoch of that second) of the last RFC 3339 stamp read:
        # a busy sender stamps thousands of messages within one second, and the calendar work is the
        # costliest step of a header. One tuple, replaced whole, so threads sharing a parser read a pair.
        self._last_second: tuple[tuple[str, str | None], float] = (("", None), 0.0)
        # (stamp, epoch) of the last RFC 3339 stamp: a sender stamping whole seconds repeats it all second,
        # and comparing the text skips even the regex.
        self._last_stamp: tuple[str, float] = ("", 0.0)

    def parse(self, data: bytes, now: float | None = None) -> ParsedSyslog:
        """Parses one framed message; `now` (epoch seconds) anchors the year of RFC 3164 stamps."""
        try:
            text = data.decode("utf-8")
            invalid_utf8 = False
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
            invalid_utf8 = True
        text = text.rstrip(_TRAILER)
        match = _PRI.match(text)
        if match is None or int(match.group(1)) > 191:
            reason = "priority out of range 0-191" if match else "no <PRI> at the start"
            return ParsedSyslog(message=text, error=f"not a syslog message: {reason}", invalid_utf8=invalid_utf8)
        priority = int(match.group(1))
        syslog: dict[str, Any] = {
            "priority": priority,
            "facility": {"code": priority >> 3, "name": FACILITY_NAMES[priority >> 3]},
            "severity": {"code": priority & 7, "name": SEVERITY_NAMES[priority & 7]},
        }
        rest = text[match.end():]
        result = ParsedSyslog(message=rest, syslog=syslog, invalid_utf8=invalid_utf8)
        try:
            if self.format == "rfc5424" or (self.format == "auto" and rest.startswith("1 ")):
                self._parse_rfc5424(rest, result)
            else:
                self._parse_rfc3164(rest, result, time.time() if now is None else now)
        except _Malformed as exc:
            result.message = rest
            result.error = str(exc)
        return result

    def parse_rfc5424_quickly(self, data: bytes) -> tuple[str, dict[str, Any], float | None] | None:
        """(message, `log.syslog`, timestamp) of a well-formed RFC 5424 message, as `parse` makes them; None for
        anything else (another format, bytes that are not UTF-8, a header `parse` would report), which
        `parse` then reads.

        The same steps as `parse` without its intermediate objects, for the common case: a busy sender's
        messages cost about half as much (bench/README.md, syslog).
        """
        close = data.find(b">", 2, 5)
        if close < 0 or data[0] != 0x3C or self.format == "rfc3164" or data[close + 1:close + 3] != b"1 ":
            return None
        digits = data[1:close]
        if not digits.isdigit():  # ASCII digits only; `parse` also takes other Unicode digits
            return None
        priority = int(digits)
        if priority > 191:
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        parts = text.rstrip(_TRAILER).split(" ", 6)
        if len(parts) < 7:
            return None
        _, stamp, hostname, appname, procid, msgid, tail = parts
        if not (hostname and appname and procid and msgid):
            return None
        syslog: dict[str, Any] = {
            "priority": priority,
            "facility": {"code": priority >> 3, "name": FACILITY_NAMES[priority >> 3]},
            "severity": {"code": priority & 7, "name": SEVERITY_NAMES[priority & 7]},
            "version": "1",
        }
        timestamp = None
        try:
            if stamp != "-":
                timestamp = self._rfc3339(stamp, "malformed RFC 5424 timestamp")
            if hostname != "-":
                syslog["hostname"] = hostname
            if appname != "-":
                syslog["appname"] = appname
            if procid != "-":
                syslog["procid"] = procid
            if msgid != "-":
                syslog["msgid"] = msgid
            if tail[:1] == "-":
                message = tail[1:]
            elif tail[:1] == "[":
                syslog["structured_data"], message = _structured_data(tail)
            else:
                return None
        except _Malformed:
            return None
        if message:
            if message[0] != " ":
                return None
            message = message[2:] if message[1:2] == _BOM else message[1:]
        return message, syslog, timestamp

    def _parse_rfc5424(self, rest: str, result: ParsedSyslog) -> None:
        if not rest.startswith("1 "):
            raise _Malformed("not an RFC 5424 message: expected version 1 after <PRI>")
        parts = rest.split(" ", 6)
        if len(parts) < 7:
            raise _Malformed("malformed RFC 5424 header: expected TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD")
        _, stamp, hostname, appname, procid, msgid, tail = parts
        syslog = result.syslog
        syslog["version"] = "1"
        if stamp != "-":
            result.timestamp = self._rfc3339(stamp, "malformed RFC 5424 timestamp")
        for key, value in (("hostname", hostname), ("appname", appname), ("procid", procid), ("msgid", msgid)):
            if value == "":
                raise _Malformed(f"malformed RFC 5424 header: empty {key.upper()}")
            if value != "-":
                syslog[key] = value
        if tail.startswith("-"):
            message = tail[1:]
        elif tail.startswith("["):
            data, message = _structured_data(tail)
            syslog["structured_data"] = data
        else:
            raise _Malformed("malformed RFC 5424 structured data: expected '-' or '['")
        if message and not message.startswith(" "):
            raise _Malformed("malformed RFC 5424 message: expected a space after the structured data")
        result.message = _strip_bom(message[1:])

    def _parse_rfc3164(self, rest: str, result: ParsedSyslog, now: float) -> None:
        """Header `TIMESTAMP HOSTNAME TAG[PID]: `; without a timestamp the rest is free text (Sophos style)."""
        stamp = _BSD_STAMP.match(rest)
        if stamp:
            result.timestamp = self._bsd_stamp(stamp, now)
        else:
            stamp = _RFC3339.match(rest)
            if stamp is None:
                result.message = _strip_bom(rest)
                return
            result.timestamp = self._rfc3339(stamp.group(0), "malformed RFC 3339 timestamp")
        header = rest[stamp.end():]
        if not header.startswith(" "):
            result.timestamp = None
            result.message = _strip_bom(rest)
            return
        header = header[1:]
        first, space, remainder = header.partition(" ")
        if space and not _TAG.fullmatch(first):
            result.syslog["hostname"] = first
            header = remainder
        tag = _TAG.match(header)
        if tag:
            result.syslog["appname"] = tag.group(1)
            if tag.group(2):
                result.syslog["procid"] = tag.group(2)
            header = header[tag.end():]
        result.message = _strip_bom(header)

    def _rfc3339(self, text: str, problem: str) -> float:
        last_text, last_value = self._last_stamp
        if text == last_text:
            return last_value
        match = _RFC3339.fullmatch(text)
        if match is None:
            raise _Malformed(f"{problem}: {text[:40]!r}")
        fraction = float("0." + match.group(7)) if match.group(7) else 0.0
        zone = match.group(8)
        key = (text[:match.end(6)], zone)
        last_key, last_epoch = self._last_second
        if key == last_key:
            self._last_stamp = (text, last_epoch + fraction)
            return last_epoch + fraction
        year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
        try:
            moment = datetime(year, month, day, hour, minute, second)
        except ValueError:
            raise _Malformed(f"{problem}: {text[:40]!r}") from None
        if zone is None:
            epoch = self._local_epoch(moment)
        else:
            offset = 0
            if zone not in ("Z", "z"):
                sign = -1 if zone[0] == "-" else 1
                offset = sign * (int(zone[1:3]) * 3600 + int(zone[-2:]) * 60)
            epoch = calendar.timegm(moment.timetuple()) - offset
        self._last_second = (key, epoch)
        self._last_stamp = (text, epoch + fraction)
        return epoch + fraction

    def _bsd_stamp(self, match: re.Match[str], now: float) -> float | None:
        """A zone-less stamp in the configured zone.

        Without a year, the latest year that puts the stamp no more than a month
        after `now` (a Feb 29 stamp goes back to the last leap year).
        """
        month = _MONTHS[match.group(1).capitalize()]
        day, hour, minute, second = int(match.group(2)), int(match.group(4)), int(match.group(5)), int(match.group(6))
        fraction = float("0." + match.group(7)) if match.group(7) else 0.0
        if match.group(3):
            years = [int(match.group(3))]
        else:
            current = datetime.fromtimestamp(now, self.tz).year
            # Next year first: a stamp just after New Year may arrive while the receiver still has 31 Dec.
            years = [current + 1, current, current - 1, current - 2, current - 3, current - 4]
        for year in years:
            try:
                epoch = self._local_epoch(datetime(year, month, day, hour, minute, second)) + fraction
            except ValueError:
                continue
            if match.group(3) or epoch <= now + _MONTH_SECONDS:
                return epoch
        return None

    def _local_epoch(self, moment: datetime) -> float:
        if self.tz is None:
            return moment.timestamp()
        return moment.replace(tzinfo=self.tz).timestamp()


def _structured_data(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """Reads `[ID k="v" ...]...` from the start of `text`; returns the elements and what follows them."""
    elements: dict[str, dict[str, str]] = {}
    position = 0
    length = len(text)
    while position < length and text[position] == "[":
        end_id = position + 1
        while end_id < length and text[end_id] not in ' ]="':
            end_id += 1
        sd_id = text[position + 1:end_id]
        if end_id >= length:
            raise _Malformed(f"malformed RFC 5424 structured data: unterminated [{sd_id}]")
        if not sd_id or text[end_id] not in " ]":
            raise _Malformed("malformed RFC 5424 structured data: bad SD-ID")
        params = elements.setdefault(sd_id, {})
        position = end_id
        while text[position] == " ":
            name_end = text.find('="', position + 1)
            name = text[position + 1:name_end] if name_end > 0 else ""
            if not name or any(c in name for c in ' ]"='):
                raise _Malformed(f"malformed RFC 5424 structured data: bad parameter in [{sd_id}]")
            value, position = _param_value(text, name_end + 2)
            params[name] = value
            if position >= length:
                break
        if position >= length or text[position] != "]":
            raise _Malformed(f"malformed RFC 5424 structured data: unterminated [{sd_id}]")
        position += 1
    return elements, text[position:]


def _param_value(text: str, position: int) -> tuple[str, int]:
    """Reads a quoted PARAM-VALUE up to its closing quote; `\\"`, `\\\\` and `\\]` are unescaped."""
    chars: list[str] = []
    length = len(text)
    while position < length:
        char = text[position]
        if char == "\\" and position + 1 < length and text[position + 1] in '"\\]':
            chars.append(text[position + 1])
            position += 2
            continue
        if char == '"':
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    raise _Malformed("malformed RFC 5424 structured data: unterminated parameter value")


def _strip_bom(message: str) -> str:
    return message[1:] if message.startswith(_BOM) else message
