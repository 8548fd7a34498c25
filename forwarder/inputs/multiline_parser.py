"""The multiline parser: joins consecutive lines into one record (stack traces, pretty-printed JSON).

It holds lines of one file between calls, so the record it finally hands over
carries the byte range of every line it consumed: the cursor then covers lines
that were cut off by `max_lines` or the byte limit too, and a restart never
reads them again as records of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forwarder.inputs.line_message import TRUNCATED_FLAG, Message
from forwarder.pipeline.field_path import deep_update
from forwarder.schema.section import Section

# In `log.flags` when a record was joined from more than one line.
MULTILINE_FLAG = "multiline"


@dataclass(frozen=True)
class MultilineConfig:
    type: str = "pattern"
    pattern: re.Pattern[str] | None = None
    negate: bool = False
    match: str = "after"
    flush_pattern: re.Pattern[str] | None = None
    count_lines: int = 0
    max_lines: int = 500
    timeout: float = 5.0
    skip_newline: bool = False


def parse_multiline_config(section: Section) -> MultilineConfig:
    """Reads one multiline setting block (a filestream `multiline` parser or the log input's `multiline.*`)."""
    problems_before = len(section.problems)
    kind = section.string("type", "pattern", choices=("pattern", "count", "while_pattern"))
    known_type = len(section.problems) == problems_before
    pattern = _regex(section, "pattern")
    match = section.string("match", None, choices=("after", "before"))
    count_lines = section.integer("count_lines", 0, minimum=1)
    if known_type:
        required = {"pattern": ("pattern", "match"), "while_pattern": ("pattern",), "count": ("count_lines",)}[kind]
        for key in required:
            if not section.has(key):
                section.error(key, f"is required when type is {kind}")
    config = MultilineConfig(
        type=kind,
        pattern=pattern,
        negate=section.boolean("negate", False),
        match=match or "after",
        flush_pattern=_regex(section, "flush_pattern"),
        count_lines=count_lines,
        max_lines=section.integer("max_lines", 500, minimum=0),
        timeout=section.duration("timeout", 5.0),
        skip_newline=section.boolean("skip_newline", False),
    )
    section.finish()
    return config


def _regex(section: Section, key: str) -> re.Pattern[str] | None:
    text = section.string(key, None)
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        section.error(key, f"invalid regular expression {text!r}: {exc}")
        return None


class MultilineParser:
    """Joins consecutive lines into one record: by pattern, by count, or while a pattern holds."""

    def __init__(self, config: MultilineConfig, max_bytes: int) -> None:
        self._config = config
        self._max_bytes = max_bytes
        self._reset()

    def _reset(self) -> None:
        self._first: Message | None = None
        self._last: Message | None = None
        self._parts: list[str] = []
        # Lines stored in the record, and lines consumed by it (beyond max_lines these differ).
        self._lines = 0
        self._consumed = 0
        self._size = 0
        self._truncated = False
        self._deadline: float | None = None

    def feed(self, message: Message, now: float) -> list[Message]:
        config = self._config
        out: list[Message] = []
        if config.type == "count":
            self._add(message)
            if self._consumed >= config.count_lines:
                out.append(self._finish())
        elif config.type == "while_pattern":
            if self._matches(config.pattern, message.content):
                self._add(message)
            else:
                if self._first is not None:
                    out.append(self._finish())
                out.append(message)
        elif self._first is None:
            self._add(message)
        elif config.flush_pattern is not None and config.flush_pattern.search(message.content):
            self._add(message)
            out.append(self._finish())
        else:
            probe = message.content if config.match == "after" or self._last is None else self._last.content
            if not self._matches(config.pattern, probe):
                out.append(self._finish())
            self._add(message)
        self._deadline = now + config.timeout if self._first is not None and config.timeout > 0 else None
        return out

    def expire(self, now: float) -> list[Message]:
        if self._deadline is not None and now >= self._deadline:
            return [self._finish()]
        return []

    def flush(self) -> list[Message]:
        return [self._finish()] if self._first is not None else []

    def deadline(self) -> float | None:
        return self._deadline

    def _matches(self, pattern: re.Pattern[str] | None, text: str) -> bool:
        found = pattern is not None and pattern.search(text) is not None
        return found != self._config.negate

    def _add(self, message: Message) -> None:
        self._last = message
        self._consumed += 1
        if TRUNCATED_FLAG in message.flags:
            self._truncated = True
        if self._first is None:
            self._first = message
            self._parts = [message.content]
            self._lines = 1
            self._size = message.size
            return
        deep_update(self._first.fields, message.fields, copy=False)
        separator = 0 if self._config.skip_newline else 1
        space = self._max_bytes - self._size - separator
        if (self._config.max_lines and self._lines >= self._config.max_lines) or space <= 0:
            # Filebeat keeps consuming the record's lines but stops storing them.
            self._truncated = True
            return
        content, size = message.content, message.size
        if size > space:
            content = content.encode("utf-8", "surrogatepass")[:space].decode("utf-8", "ignore")
            size = space
            self._truncated = True
        if separator:
            self._parts.append("\n")
        self._parts.append(content)
        self._size += separator + size
        self._lines += 1

    def _finish(self) -> Message:
        first, last = self._first, self._last
        assert first is not None and last is not None
        flags = [flag for flag in first.flags if flag != TRUNCATED_FLAG]
        if self._truncated:
            flags.append(TRUNCATED_FLAG)
        if self._lines > 1:
            flags.append(MULTILINE_FLAG)
        combined = Message("".join(self._parts), first.offset, last.end, self._size, last.skip_to_newline,
                           first.fields, first.meta, first.timestamp, flags, first.tags)
        self._reset()
        return combined
