"""The `json_objects` parser: a stream of JSON objects that span lines (pretty-printed), one record each.

Some writers (CrowdStrike's Falcon SIEM Connector among them) print each event
as an indented JSON object over many lines. A `^{` multiline pattern frames
those by guesswork and joins a truncated object with the next one; this stage
frames them with the JSON grammar instead. It follows the bracket depth of the
lines it holds (strings removed first, so braces inside values do not count)
and, once the depth returns to zero, hands the text to
`json.JSONDecoder.raw_decode`, which decides where the object really ends.

Every record carries the byte range of the lines it used, so the cursor the
input commits lies on an object boundary: a restart resumes at the first
unacknowledged object, never inside one. What cannot be decoded is forwarded
raw, tagged `_parse_failure`, never dropped:

- a line starting with `{` while an object is still open means the writer was
  cut off (killed mid-write) and began anew; the cut object goes out raw and the
  new one is read on. So does a `{` where JSON allows no value: indented after a
  `,` inside an object, or glued to the end of a cut line (`"offset": 12{`). A
  new object that began where a value may stand (after `"offset": `, inside an
  array) is found when the cut object fails: the object that runs to the end of
  the held text and closes in the first column is decoded on its own;
- text outside any object, one record per line;
- an object larger than `max_bytes`: its first `max_bytes` go out raw with the
  reason, the rest is skipped up to the next line starting with `{`.

An object still open when the file ends waits for its next lines; only when the
file is closed (inactive, removed, renamed, rewritten) does it go out raw.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from forwarder.inputs.line_message import TRUNCATED_FLAG, Message
from forwarder.inputs.ndjson_parser import PARSE_FAILURE_TAG, NdjsonConfig, write_json_keys
from forwarder.schema.section import Section

# A JSON string on one line (JSON strings cannot hold a raw newline).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[{}\[\]]")
_NOT_BRACKET = re.compile(r"[^{}\[\]]+")
_DECODER = json.JSONDecoder()
TRUNCATED_REASON = "truncated JSON object: a new object began before this one ended"
INCOMPLETE_REASON = "incomplete JSON object: the file was closed before the object ended"


@dataclass(frozen=True)
class JsonObjectsConfig:
    ndjson: NdjsonConfig
    # Keep the object's text in `message` (decoded keys go to `target` as well).
    keep_message: bool = False
    # False: only frame the objects, the text goes on in `message` (for an ingest pipeline).
    decode: bool = True
    # 0: the input's message_max_bytes.
    max_bytes: int = 0


def parse_json_objects_config(section: Section) -> JsonObjectsConfig:
    """Reads one `json_objects` block; unknown keys are reported here."""
    config = JsonObjectsConfig(
        ndjson=NdjsonConfig(
            target=section.string("target", ""),
            overwrite_keys=section.boolean("overwrite_keys", False),
            expand_keys=section.boolean("expand_keys", False),
            add_error_key=section.boolean("add_error_key", True),
        ),
        keep_message=section.boolean("keep_message", False),
        decode=section.boolean("decode", True),
        max_bytes=section.size("max_bytes", 0),
    )
    if config.max_bytes < 0:
        section.error("max_bytes", "must not be negative (0 means the input's message_max_bytes)")
    section.finish()
    return config


def brackets(line: str) -> str:
    """The brackets of one line in order, not counting those inside strings."""
    if _BRACKET.search(line) is None:
        # Most lines of a pretty-printed object are `"key": value,`: nothing to count.
        return ""
    bare = _STRING.sub("", line) if '"' in line else line
    return _NOT_BRACKET.sub("", bare)


def _byte_length(message: Message, chars: int) -> int | None:
    """Bytes of the first `chars` characters of a line, or None when decoding changed the bytes."""
    text = message.content
    if len(text.encode("utf-8", "surrogatepass")) != message.size:
        return None
    return len(text[:chars].encode("utf-8", "surrogatepass"))


class JsonObjectsParser:
    """Turns lines into one record per JSON object; holds at most one object's lines (up to max_bytes)."""

    def __init__(self, config: JsonObjectsConfig, max_bytes: int) -> None:
        self._config = config
        self._max_bytes = config.max_bytes or max_bytes
        self._reset()

    def _reset(self) -> None:
        self._first: Message | None = None
        self._last: Message | None = None
        self._parts: list[str] = []
        # The lines kept whole, to find where an object that follows a cut one begins.
        self._lines: list[Message] = []
        self._size = 0
        # Open containers of the object, innermost last; and the last character of its last line.
        self._open: list[str] = []
        self._last_char = ""
        # An over-long object: its head is kept, its other lines only consumed.
        self._oversized = False

    def feed(self, message: Message, now: float) -> list[Message]:
        out: list[Message] = []
        # What is left of a line after an object goes back on this stack, not into a recursive call: one
        # line may hold thousands of objects (`{}{}{}…`), which would exhaust Python's recursion limit.
        pending = [message]
        while pending:
            pending.extend(reversed(self._take(pending.pop(), out)))
        return out

    def expire(self, now: float) -> list[Message]:
        return []

    def flush(self) -> list[Message]:
        """The file is being closed: an object still open goes out raw, as it is."""
        if self._first is None:
            return []
        return self._fail(self._oversized_reason() if self._oversized else INCOMPLETE_REASON)

    def deadline(self) -> float | None:
        return None

    def _take(self, message: Message, out: list[Message]) -> list[Message]:
        """Takes one line (or the rest of one); returns, in order, the parts of it still to be taken."""
        text = message.content
        if self._first is None:
            if not text.strip():
                return []
            if not text.lstrip().startswith("{"):
                glued = self._split_glued(message)
                out.append(self._garbage(glued[0] if glued else message))
                return [glued[1]] if glued else []
        elif self._starts_new_object(text):
            out.extend(self._fail(self._oversized_reason() if self._oversized else TRUNCATED_REASON))
        elif self._oversized:
            self._last = message
            return []
        elif (glued := self._split_glued(message)) is not None:
            self._add(glued[0])
            rest: list[Message] = []
            if not self._open and not self._oversized:
                rest = self._decode(out)
            else:
                out.extend(self._fail(self._oversized_reason() if self._oversized else TRUNCATED_REASON))
            return [*rest, glued[1]]
        self._add(message)
        if not self._oversized and not self._open:
            return self._decode(out)
        return []

    def _starts_new_object(self, text: str) -> bool:
        """A `{` opening a line that JSON does not allow there: the object before was cut off.

        A `{` in the first column always begins an object (pretty-printers indent what is nested); an
        indented one continues the object only where a value may stand: after `:` in an object, or after
        `[` or `,` in an array.
        """
        if text.startswith("{"):
            return True
        if self._oversized or not text.lstrip().startswith("{"):
            return False
        innermost = self._open[-1] if self._open else ""
        allowed = ":" if innermost == "{" else "[,"
        return self._last_char not in allowed

    def _oversized_reason(self) -> str:
        return f"JSON object larger than max_bytes ({self._max_bytes} bytes); skipped to the next object"

    def _split_glued(self, message: Message) -> tuple[Message, Message] | None:
        """A line like `"offset": 12{`, cut by a killed writer and continued by the next object: its two parts.

        The line ends in `{` where JSON allows no value: after something other than `:` inside an object,
        or other than `[` or `,` inside an array, or after any text outside an object.
        """
        text = message.content
        if not text.rstrip().endswith("{"):
            return None
        cut = text.rindex("{")
        head_text = text[:cut].rstrip()
        if not head_text:
            return None
        open_containers = list(self._open)
        for bracket in brackets(head_text):
            if bracket in "{[":
                open_containers.append(bracket)
            elif open_containers:
                open_containers.pop()
        innermost = open_containers[-1] if open_containers and self._first is not None else ""
        if innermost and head_text[-1] in (":" if innermost == "{" else "[,"):
            return None
        head_bytes = _byte_length(message, cut)
        if head_bytes is None:
            return None
        middle = message.offset + head_bytes
        head = Message(text[:cut], message.offset, middle, head_bytes, flags=list(message.flags))
        rest = Message(text[cut:], middle, message.end, message.size - head_bytes, message.skip_to_newline)
        return head, rest

    def _add(self, message: Message) -> None:
        if self._first is None:
            self._first = message
        self._last = message
        if TRUNCATED_FLAG in message.flags:
            self._oversized = True
        separator = 1 if self._parts else 0
        if self._size + separator + message.size > self._max_bytes:
            space = self._max_bytes - self._size - separator
            if space > 0:
                head = message.content.encode("utf-8", "surrogatepass")[:space].decode("utf-8", "ignore")
                self._parts.append("\n" * separator + head)
                self._size += separator + space
            self._oversized = True
            return
        if separator:
            self._parts.append("\n")
        self._parts.append(message.content)
        self._lines.append(message)
        self._size += separator + message.size
        for bracket in brackets(message.content):
            if bracket in "{[":
                self._open.append(bracket)
            else:
                if self._open:
                    self._open.pop()
                if not self._open:
                    # The object closed on this line: what follows it is decoded on its own.
                    break
        stripped = message.content.rstrip()
        if stripped:
            self._last_char = stripped[-1]

    def _decode(self, out: list[Message]) -> list[Message]:
        """The depth is back to zero: decode the object; returns what follows it on its last line, if anything."""
        first, last = self._first, self._last
        assert first is not None and last is not None
        text = "".join(self._parts)
        try:
            value, end = _DECODER.raw_decode(text, len(text) - len(text.lstrip()))
        except json.JSONDecodeError as exc:
            out.extend(self._fail(f"Error decoding JSON: {exc}"))
            return []
        rest = text[end:].lstrip()
        if rest:
            # Something follows the object on its last line (`}{…` or `} junk`): this object ends mid-line.
            last_line_chars = len(last.content) - len(rest)
            rest_start = _byte_length(last, last_line_chars)
            if rest_start is None or last_line_chars < 0 or "\n" in rest:
                out.extend(self._fail("Error decoding JSON: unexpected text after the object"))
                return []
            record = self._record(text[:end], last.offset + rest_start, False)
            tail = Message(rest, last.offset + rest_start, last.end, last.size - rest_start, last.skip_to_newline)
            self._reset()
            out.append(self._decoded(record, value))
            return [tail]
        record = self._record(text, last.end, last.skip_to_newline)
        self._reset()
        out.append(self._decoded(record, value))
        return []

    def _record(self, text: str, end: int, skip_to_newline: bool) -> Message:
        first = self._first
        assert first is not None
        size = len(text.encode("utf-8", "surrogatepass"))
        return Message(text, first.offset, end, size, skip_to_newline, first.fields, first.meta, first.timestamp,
                       [flag for flag in first.flags if flag != TRUNCATED_FLAG], first.tags)

    def _decoded(self, record: Message, value: Any) -> Message:
        config = self._config
        if not config.decode:
            return record
        if not isinstance(value, dict):
            return _failed(record, f"expected a JSON object, got {type(value).__name__}", config.ndjson)
        text = record.content
        record.content = ""
        record.size = 0
        if config.ndjson.target:
            _put_path(record.fields, config.ndjson.target, value)
        else:
            write_json_keys(record, value, config.ndjson)
        if config.keep_message:
            record.content = text
            record.size = len(text.encode("utf-8", "surrogatepass"))
        return record

    def _fail(self, reason: str) -> list[Message]:
        """The held lines go out raw; a whole object among them (the writer's next one, begun where JSON
        allowed a value, e.g. inside an array of the cut object) goes out decoded after them."""
        last = self._last
        assert last is not None
        text = "".join(self._parts)
        embedded = None if self._oversized else self._embedded_object(text)
        if embedded is None:
            record = self._record(text, last.end, last.skip_to_newline)
            if self._oversized:
                record.flags.append(TRUNCATED_FLAG)
            self._reset()
            return [_failed(record, reason, self._config.ndjson)]
        start, start_byte, value = embedded
        head = _failed(self._record(text[:start].rstrip(), start_byte, False), reason, self._config.ndjson)
        tail_text = text[start:]
        tail = Message(tail_text, start_byte, last.end, len(tail_text.encode("utf-8", "surrogatepass")),
                       last.skip_to_newline)
        self._reset()
        return [head, self._decoded(tail, value)]

    def _embedded_object(self, text: str) -> tuple[int, int, Any] | None:
        """Where (character, byte) an object that runs to the end of `text` begins, and its value.

        Candidates are a `{` opening a line and a `{` ending one (the next object glued where JSON allowed
        a value, e.g. after `"offset": `). Only an object closed in the first column counts (a
        pretty-printer closes a top-level object there), so an object nested in the cut one is never taken
        for the next object.
        """
        if not self._lines or not self._lines[-1].content.startswith("}"):
            return None
        position = 0
        for index, line in enumerate(self._lines):
            content = line.content
            indent = len(content) - len(content.lstrip())
            last = len(content.rstrip()) - 1
            columns = [indent] if index and content[indent:indent + 1] == "{" else []
            if last > indent and content[last] == "{":
                columns.append(last)
            for column in columns:
                try:
                    value, end = _DECODER.raw_decode(text, position + column)
                except json.JSONDecodeError:
                    continue
                start_byte = _byte_length(line, column)
                if not text[end:].strip() and start_byte is not None:
                    return position + column, line.offset + start_byte, value
            position += len(content) + 1
        return None

    def _garbage(self, message: Message) -> Message:
        return _failed(message, "not JSON: text outside any JSON object", self._config.ndjson)


def _failed(record: Message, reason: str, config: NdjsonConfig) -> Message:
    record.tags.append(PARSE_FAILURE_TAG)
    if config.add_error_key:
        record.fields["error"] = {"message": reason, "type": "json"}
    return record


def _put_path(fields: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = fields
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value
