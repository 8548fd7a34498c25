"""Event Hubs message bodies → records.

Diagnostic settings write `{"records": [...]}`, but other Azure services put a
single object, a bare array, or text that is almost JSON (raw newlines inside
strings, single-quoted strings) on the same hubs. The body is parsed once with
orjson, which is what keeps this off the profile at tens of thousands of
records per second; the sanitizers run only when that parse fails, as in
Filebeat: a valid body is never rewritten, so a `replace_all` pattern meant for
broken messages cannot alter a good one, and good messages pay nothing for it.

Nothing is dropped silently: a body that stays unparsable becomes one raw
record with a parse-failure marker, and a body that parses but holds no
records (`{}`, `{"records": []}`, `[]`) comes back with the reason, for the
input to log and count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

SANITIZER_TYPES = ("new_lines", "single_quotes", "replace_all")
# Filebeat's deprecated `sanitize_options` names for the first two.
LEGACY_SANITIZE_OPTIONS = {"NEW_LINES": "new_lines", "SINGLE_QUOTES": "single_quotes"}
PARSE_FAILURE_TAG = "_parse_failure"

_UTF8_BOM = b"\xef\xbb\xbf"
_GO_GROUP_REFERENCE = re.compile(r"\$(\d+|\{\w+\})")


@dataclass(frozen=True)
class Sanitizer:
    """One repair step for bodies that are not valid JSON."""

    kind: str
    pattern: re.Pattern[str] | None = None
    replacement: str = ""

    def apply(self, text: str) -> str:
        if self.kind == "new_lines":
            return text.replace("\r", "").replace("\n", "")
        if self.kind == "single_quotes":
            return _single_to_double_quotes(text)
        assert self.pattern is not None
        return self.pattern.sub(self.replacement, text)


def replace_all_sanitizer(pattern: str, replacement: str) -> Sanitizer:
    """A `replace_all` sanitizer; raises re.error for a bad pattern.

    The replacement may use Python's `\\1` / `\\g<name>` or Go's `$1` / `${name}`
    (what a Filebeat config holds).
    """
    python_replacement = _GO_GROUP_REFERENCE.sub(lambda match: f"\\g<{match.group(1).strip('{}')}>", replacement)
    return Sanitizer("replace_all", re.compile(pattern), python_replacement)


@dataclass(frozen=True)
class DecodedBody:
    """What one message body held."""

    shape: str
    """`records` ({"records": [...]}), `array`, `object` (one record), `unparsable` or `empty`."""
    records: list[Any] = field(default_factory=list)
    """The records, as decoded JSON values (objects, normally); empty for `unparsable` and `empty`."""
    problem: str | None = None
    """Why the body is `unparsable` or `empty`, in words fit for a log line; None otherwise."""
    raw: str | None = None
    """The body as text, for an `unparsable` body (forwarded as is)."""
    sanitized: bool = False
    """True when the body was invalid JSON and the sanitizers were run on it."""


def decode_body(body: bytes, sanitizers: tuple[Sanitizer, ...] | list[Sanitizer] = ()) -> DecodedBody:
    """The records of one Event Hubs message body."""
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM):]
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return _decode_invalid(body, sanitizers, error)
    decoded = _records_of(value, sanitized=False)
    if decoded.shape == "unparsable":
        return replace(decoded, raw=body.decode("utf-8", errors="replace"))
    return decoded


def parse_failure_fields(decoded: DecodedBody) -> dict[str, Any]:
    """The fields of the one event that carries an unparsable body: the raw text, the reason and the tag."""
    return {
        "message": decoded.raw or "",
        "error": {"message": f"cannot decode the Event Hubs message body: {decoded.problem}"},
        "tags": [PARSE_FAILURE_TAG],
    }


def _decode_invalid(body: bytes, sanitizers: tuple[Sanitizer, ...] | list[Sanitizer],
                    error: orjson.JSONDecodeError) -> DecodedBody:
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        return DecodedBody("empty", problem="the body is empty")
    if not sanitizers:
        return DecodedBody("unparsable", problem=f"not valid JSON ({error})", raw=text)
    repaired = text
    for sanitizer in sanitizers:
        repaired = sanitizer.apply(repaired)
    try:
        value = orjson.loads(repaired)
    except orjson.JSONDecodeError as still:
        return DecodedBody("unparsable", problem=f"not valid JSON, even after the sanitizers ({still})",
                           raw=text, sanitized=True)
    return _records_of(value, sanitized=True, raw=text)


def _records_of(value: Any, sanitized: bool, raw: str | None = None) -> DecodedBody:
    """The records of a parsed body; `raw` is the text an `unparsable` result carries."""
    if type(value) is dict:
        records = value.get("records")
        if type(records) is list:
            if not records:
                return DecodedBody("empty", problem='"records" is an empty list', sanitized=sanitized)
            return DecodedBody("records", records, sanitized=sanitized)
        if not value:
            return DecodedBody("empty", problem="the body is an empty JSON object", sanitized=sanitized)
        if records is None and all(type(member) is list for member in value.values()):
            names = ", ".join(sorted(value)[:5])
            return DecodedBody("empty", problem=f'an object of lists without "records" (keys: {names})',
                               sanitized=sanitized)
        return DecodedBody("object", [value], sanitized=sanitized)
    if type(value) is list:
        if not value:
            return DecodedBody("empty", problem="the body is an empty JSON array", sanitized=sanitized)
        return DecodedBody("array", value, sanitized=sanitized)
    kind = "null" if value is None else type(value).__name__
    return DecodedBody("unparsable", problem=f"a JSON {kind}, not an object or an array", raw=raw,
                       sanitized=sanitized)


def _single_to_double_quotes(text: str) -> str:
    """Turns `'` outside double-quoted strings into `"`, so `{'a': 'b'}` reads as JSON."""
    if "'" not in text:
        return text
    out = []
    in_double = escaped = False
    for char in text:
        if in_double:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_double = False
        elif char == '"':
            in_double = True
        elif char == "'":
            char = '"'
        out.append(char)
    return "".join(out)
