"""The `parsers` of a filestream input: ndjson decoding and multiline joining.

Filebeat runs these in the configured order over the stream of lines of one
file, so JSON can be decoded before lines are joined or after. Each parser
works on `Message`s that remember the byte range they came from: the input's
cursor must point after the last line of the record it publishes, never past
lines still waiting in a multiline buffer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from forwarder.config.section import Section
from forwarder.pipeline.event import parse_timestamp
from forwarder.pipeline.field_path import deep_update
from forwarder.pipeline.json_fields import expand_dotted_keys

PARSE_FAILURE_TAG = "_parse_failure"
TRUNCATED_FLAG = "truncated"
MULTILINE_FLAG = "multiline"


@dataclass(slots=True)
class Message:
    """One record on its way from a file to an event."""

    content: str
    offset: int
    # Byte offset right after the record's last line: where a restart resumes.
    end: int
    # Bytes of content as read, for the multiline byte limit.
    size: int
    # True when `end` lies inside an over-long line whose rest is being skipped.
    skip_to_newline: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    timestamp: float | None = None
    flags: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NdjsonConfig:
    target: str = ""
    message_key: str = ""
    document_id: str = ""
    overwrite_keys: bool = False
    expand_keys: bool = False
    # Filebeat defaults to false; we default to true because a record that
    # cannot be parsed must say why when it reaches the receiver.
    add_error_key: bool = True


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


ParserConfig = NdjsonConfig | MultilineConfig


# ----- configuration -----------------------------------------------------------


def parse_parsers(section: Section) -> list[ParserConfig]:
    """Reads the `parsers` list: each entry is a mapping with one key, `ndjson` or `multiline`."""
    raw = section.raw("parsers")
    configs: list[ParserConfig] = []
    for item, value in zip(section.sections("parsers"), raw if isinstance(raw, list) else [], strict=False):
        if not isinstance(value, dict):
            continue
        if len(value) != 1:
            item.error("", "each parser must be a mapping with exactly one key: ndjson or multiline")
            continue
        name = next(iter(value))
        if name == "ndjson":
            configs.append(_parse_ndjson(item.section(name)))
        elif name == "multiline":
            configs.append(_parse_multiline(item.section(name)))
        else:
            item.error(str(name), "unknown parser (supported: ndjson, multiline)")
    return configs


def _parse_ndjson(section: Section) -> NdjsonConfig:
    config = NdjsonConfig(
        target=section.string("target", ""),
        message_key=section.string("message_key", ""),
        document_id=section.string("document_id", ""),
        overwrite_keys=section.boolean("overwrite_keys", False),
        expand_keys=section.boolean("expand_keys", False),
        add_error_key=section.boolean("add_error_key", True),
    )
    # Only silences Filebeat's per-line error log, which this forwarder does not write.
    section.ignore("ignore_decoding_error")
    section.finish()
    return config


def _parse_multiline(section: Section) -> MultilineConfig:
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


def build_chain(configs: list[ParserConfig], max_bytes: int) -> ParserChain:
    """A fresh chain (one per file: multiline state belongs to one file)."""
    stages: list[NdjsonParser | MultilineParser] = []
    for config in configs:
        if isinstance(config, NdjsonConfig):
            stages.append(NdjsonParser(config))
        else:
            stages.append(MultilineParser(config, max_bytes))
    return ParserChain(stages)


# ----- the chain -----------------------------------------------------------------


class ParserChain:
    """Runs messages through the stages in order; output of one stage feeds the next."""

    def __init__(self, stages: list[NdjsonParser | MultilineParser]) -> None:
        self._stages = stages

    def feed(self, message: Message, now: float) -> list[Message]:
        return self._run(0, [message], now)

    def expire(self, now: float) -> list[Message]:
        """Records whose multiline timeout has passed, in file order."""
        return self._drain(lambda stage: stage.expire(now), now)

    def flush(self, now: float) -> list[Message]:
        """Everything still buffered, for a file that is being closed or rewritten."""
        return self._drain(lambda stage: stage.flush(), now)

    def _drain(self, take: Callable[[NdjsonParser | MultilineParser], list[Message]], now: float) -> list[Message]:
        result: list[Message] = []
        for index, stage in enumerate(self._stages):
            result.extend(self._run(index + 1, take(stage), now))
        return result

    def deadline(self) -> float | None:
        deadlines = [d for d in (stage.deadline() for stage in self._stages) if d is not None]
        return min(deadlines) if deadlines else None

    def _run(self, start: int, messages: list[Message], now: float) -> list[Message]:
        for stage in self._stages[start:]:
            if not messages:
                break
            produced: list[Message] = []
            for message in messages:
                produced.extend(stage.feed(message, now))
            messages = produced
        return messages


# ----- ndjson ----------------------------------------------------------------------


class NdjsonParser:
    """Decodes each message as one JSON object, the way Filebeat's ndjson parser does."""

    def __init__(self, config: NdjsonConfig) -> None:
        self._config = config

    def feed(self, message: Message, now: float) -> list[Message]:
        self.decode(message)
        return [message]

    def expire(self, now: float) -> list[Message]:
        return []

    def flush(self) -> list[Message]:
        return []

    def deadline(self) -> float | None:
        return None

    def decode(self, message: Message) -> None:
        config = self._config
        try:
            decoded = orjson.loads(message.content)
            if not isinstance(decoded, dict):
                raise ValueError(f"expected a JSON object, got {type(decoded).__name__}")
        except ValueError as exc:
            # The raw line stays the message: nothing is dropped.
            message.tags.append(PARSE_FAILURE_TAG)
            _set_error(message, f"Error decoding JSON: {exc}", config.add_error_key)
            return
        keys: dict[str, Any] = decoded
        content = ""
        if config.message_key:
            value = keys.get(config.message_key)
            if config.message_key not in keys:
                _set_error(message, f"Key '{config.message_key}' not found", config.add_error_key)
            elif not isinstance(value, str):
                _set_error(message, f"Value of key '{config.message_key}' is not a string", config.add_error_key)
            else:
                content = value
        message.content = content
        message.size = len(content.encode("utf-8", "surrogatepass"))
        if config.document_id:
            document_id = _pop_path(keys, config.document_id)
            if isinstance(document_id, str):
                message.meta["_id"] = document_id
        if config.target:
            _put_path(message.fields, config.target, keys)
        else:
            write_json_keys(message, keys, config)


def write_json_keys(message: Message, keys: dict[str, Any], config: NdjsonConfig) -> None:
    """Merges decoded keys into the record's root, with Filebeat's rules for the special keys."""
    if config.expand_keys:
        try:
            keys = expand_dotted_keys(keys)
        except ValueError as exc:
            _set_error(message, str(exc), config.add_error_key)
            return
    if not config.overwrite_keys:
        keys.pop("@timestamp", None)
        keys.pop("@metadata", None)
        deep_update(message.fields, keys, overwrite=False, copy=False)
        return
    if "@timestamp" in keys:
        stamp = keys.pop("@timestamp")
        try:
            if not isinstance(stamp, str):
                raise TypeError
            message.timestamp = parse_timestamp(stamp)
        except TypeError:
            _set_error(message, "@timestamp not overwritten (not string)", config.add_error_key)
        except ValueError:
            _set_error(message, f"@timestamp not overwritten (parse error on {stamp})", config.add_error_key)
    if "@metadata" in keys:
        metadata = keys.pop("@metadata")
        if isinstance(metadata, dict):
            deep_update(message.meta, metadata, copy=False)
        else:
            _set_error(message, "failed to update @metadata", config.add_error_key)
    if "type" in keys:
        kind = keys.pop("type")
        if not isinstance(kind, str):
            _set_error(message, "type not overwritten (not string)", config.add_error_key)
        elif not kind or kind.startswith("_"):
            _set_error(message, f"type not overwritten (invalid value [{kind}])", config.add_error_key)
        else:
            message.fields["type"] = kind
    deep_update(message.fields, keys, copy=False)


def _set_error(message: Message, text: str, add_error_key: bool) -> None:
    if add_error_key:
        message.fields["error"] = {"message": text, "type": "json"}


def _put_path(fields: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = fields
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _pop_path(fields: dict[str, Any], path: str) -> Any:
    node: Any = fields
    *parents, last = [path] if path in fields else path.split(".")
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return node.pop(last, None) if isinstance(node, dict) else None


# ----- multiline -------------------------------------------------------------------


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
