"""dissect: splits a string field by a tokenizer pattern of literal delimiters and `%{key}` fields, as Filebeat does.

A pattern such as `%{date} %{+date} %{level}: %{msg}` is cut into its
delimiters and keys once, at config time; an event only costs a few
`str.find` calls. Key modifiers are Filebeat's: `%{}`/`%{?name}` skip a
value, `%{+name}` (optionally `%{+name/2}` for order) appends to a key,
`%{*name}` makes the value a key name whose value is the following
`%{&name}`, a `->` suffix swallows repeats of the next delimiter (padding),
and `|integer`, `|long`, `|float`, `|double`, `|boolean`, `|ip` convert
the value. The first delimiter must start the string; text after the last
delimiter of a pattern that ends with one is ignored.

A string that does not match, a missing or non-string field, or a key that
already exists (without `overwrite_keys`) is a failure: the event keeps its
fields, gets `log.flags: [dissect_parsing_error]`, and the processor raises
so that the pipeline sets `error.message` and counts it, unless
`ignore_failure` is set, which forwards the event unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, put_field
from forwarder.schema.declared import BOOLEAN, STRING, Setting, ValueType, read_settings
from forwarder.schema.section import Section

FLAG = "dissect_parsing_error"
FLAGS_FIELD = FieldPath("log.flags")
CONVERSIONS = ("integer", "long", "float", "double", "boolean", "ip")
_FIELD = re.compile(r"%\{([^}]*)\}")
_ORDINAL = re.compile(r"^(.*)/(\d+)$")


class DissectError(ValueError):
    """The string does not follow the tokenizer."""


@dataclass(frozen=True)
class Key:
    """One `%{…}` of the pattern: its name and what to do with its value."""

    name: str
    kind: str  # "normal", "skip", "append", "pointer", "indirect"
    ordinal: int
    greedy: bool
    convert: str | None


class Tokenizer:
    """A parsed pattern: delimiters[i] precedes keys[i]; a final delimiter may follow the last key."""

    def __init__(self, pattern: str) -> None:
        self.delimiters: list[str] = []
        self.keys: list[Key] = []
        position = 0
        for match in _FIELD.finditer(pattern):
            self.delimiters.append(pattern[position:match.start()])
            self.keys.append(_parse_key(match.group(1)))
            position = match.end()
        if not self.keys:
            raise ValueError("must contain at least one %{key}")
        self.trailer = pattern[position:]
        for index, delimiter in enumerate(self.delimiters[1:], start=1):
            if delimiter == "":
                raise ValueError(f"keys %{{{self.keys[index - 1].name}}} and %{{{self.keys[index].name}}} are not "
                                 "separated by a delimiter")
        # Values are applied in this order: references first, appends by ordinal, indirect ones last.
        self._order = sorted(range(len(self.keys)), key=lambda i: (
            {"pointer": 0, "skip": 0, "indirect": 2}.get(self.keys[i].kind, 1), self.keys[i].ordinal, i))

    def dissect(self, text: str) -> dict[str, Any]:
        """The key → value map of `text`; DissectError when a delimiter is not where the pattern needs it."""
        first = self.delimiters[0]
        if not text.startswith(first):
            raise DissectError(f"could not find beginning delimiter: `{first}` in remaining: `{text}`, (offset: 0)")
        offset = len(first)
        spans: list[tuple[int, int]] = []
        following = [*self.delimiters[1:], self.trailer]
        for index, key in enumerate(self.keys):
            delimiter = following[index]
            if delimiter == "":
                spans.append((offset, len(text)))
                offset = len(text)
                break
            end = text.find(delimiter, offset)
            if end == -1:
                raise DissectError(f"could not find delimiter: `{delimiter}` in remaining: `{text[offset:]}`, "
                                   f"(offset: {offset})")
            spans.append((offset, end))
            offset = end + len(delimiter)
            if key.greedy:
                while text.startswith(delimiter, offset):
                    offset += len(delimiter)
        return self._resolve(text, spans)

    def _resolve(self, text: str, spans: list[tuple[int, int]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        references: dict[str, str] = {}
        for index in self._order:
            key = self.keys[index]
            start, end = spans[index]
            value = text[start:end]
            if key.kind in ("skip", "pointer"):
                if key.name:
                    references[key.name] = value
            elif key.kind == "append":
                found[key.name] = f"{found[key.name]} {value}" if key.name in found else value
            elif key.kind == "indirect":
                name = references.get(key.name, found.get(key.name))
                if isinstance(name, str):
                    found[name] = value
            else:
                found[key.name] = value
                references[key.name] = value
        return found

    def conversions(self) -> dict[str, str]:
        return {key.name: key.convert for key in self.keys if key.convert and key.kind in ("normal", "append")}


def _parse_key(text: str) -> Key:
    greedy = text.endswith("->")
    if greedy:
        text = text[:-2]
    name, _, convert = text.partition("|")
    if convert and convert not in CONVERSIONS:
        raise ValueError(f"unknown conversion |{convert} in %{{{text}}} (known: {', '.join(CONVERSIONS)})")
    kind = "normal"
    for prefix, prefix_kind in (("+&", "indirect"), ("&+", "indirect"), ("?", "skip"), ("+", "append"),
                                ("*", "pointer"), ("&", "indirect")):
        if name.startswith(prefix):
            kind, name = prefix_kind, name[len(prefix):]
            break
    ordinal = 0
    match = _ORDINAL.match(name)
    if match and kind == "append":
        name, ordinal = match.group(1), int(match.group(2))
    if name == "":
        kind = "skip"
    return Key(name, kind, ordinal, greedy, convert or None)


def _read_tokenizer(section: Section, key: str, setting: Setting, default: Any) -> Tokenizer | None:
    pattern = section.string(key, default)
    if pattern is None:
        return None
    try:
        return Tokenizer(pattern)
    except ValueError as error:
        section.error(key, f"invalid tokenizer {pattern!r}: {error}")
        return None


TOKENIZER = ValueType("dissect pattern", _read_tokenizer)
SETTINGS = (
    Setting("tokenizer", TOKENIZER, doc="the pattern: literal delimiters and `%{key}` fields (`%{?skip}`, "
            "`%{+append}`, `%{*name}`/`%{&name}`, `%{key->}` padding, `%{key|integer}` conversion)"),
    Setting("field", STRING, "message", "the string field dissected"),
    Setting("target_prefix", STRING, "dissect", "the object the keys are written under; `\"\"` = the event root"),
    Setting("ignore_failure", BOOLEAN, False, "a field that is missing or does not match is left alone, without "
            "an error or the `dissect_parsing_error` flag"),
    Setting("overwrite_keys", BOOLEAN, False, "keys that already exist in the event are replaced; otherwise that "
            "is a failure and nothing is written"),
    Setting("trim_values", STRING, "none", "trim `trim_chars` off the values: `none`, `left`, `right`, `all`",
            choices=("none", "left", "right", "all")),
    Setting("trim_chars", STRING, " ", "the characters trimmed (`\" \\t\"` = spaces and tabs)", doc_default="`\" \"`"),
)


def build_dissect(options: Section) -> Processor:
    values = read_settings(options, SETTINGS)
    tokenizer: Tokenizer | None = values["tokenizer"]
    source = FieldPath(values["field"])
    prefix = values["target_prefix"]
    ignore_failure = values["ignore_failure"]
    overwrite_keys = values["overwrite_keys"]
    trim = _trimmer(values["trim_values"], values["trim_chars"])
    conversions = tokenizer.conversions() if tokenizer else {}
    targets: dict[str, FieldPath] = {}

    def target(name: str) -> FieldPath:
        path = targets.get(name)
        if path is None:
            path = FieldPath(f"{prefix}.{name}" if prefix else name)
            if len(targets) < 4096:
                targets[name] = path
        return path

    def fail(event: Event, message: str) -> Event:
        if ignore_failure:
            return event
        flags = FLAGS_FIELD.get(event)
        try:
            if isinstance(flags, list):
                flags.append(FLAG)
            else:
                put_field(event, FLAGS_FIELD, [FLAG])
        except FieldError:
            pass
        raise DissectError(message)

    def dissect(event: Event) -> Event:
        if tokenizer is None:
            return event
        text = source.get(event)
        if text is MISSING:
            return fail(event, f"could not fetch value for key: {source.name}, Error: key not found")
        if not isinstance(text, str):
            return fail(event, f"field is not a string, value: `{text}`, field: `{source.name}`")
        try:
            found = tokenizer.dissect(text)
            values = {name: _convert(trim(value), conversions.get(name)) for name, value in found.items()}
        except DissectError as error:
            return fail(event, str(error))
        paths = [(target(name), value) for name, value in values.items()]
        if not overwrite_keys:
            for path, _ in paths:
                if path.get(event) is not MISSING:
                    return fail(event, f"cannot override existing key with `{path.name}`")
        written: list[tuple[Any, Any, Any]] = []
        try:
            for path, value in paths:
                put_field(event, path, value, written)
        except FieldError as error:
            for container, key, previous in reversed(written):
                if previous is MISSING:
                    container.pop(key, None)
                else:
                    container[key] = previous
            return fail(event, f"cannot override parent key of `{path.name}`: {error}")
        return event

    return dissect


def _trimmer(mode: str, chars: str) -> Any:
    if mode == "left":
        return lambda value: value.lstrip(chars)
    if mode == "right":
        return lambda value: value.rstrip(chars)
    if mode == "all":
        return lambda value: value.strip(chars)
    return lambda value: value


def _convert(value: str, kind: str | None) -> Any:
    if kind is None:
        return value
    try:
        if kind in ("integer", "long"):
            return int(value)
        if kind in ("float", "double"):
            return float(value)
        if kind == "boolean":
            lowered = value.lower()
            if lowered not in ("true", "false"):
                raise ValueError(value)
            return lowered == "true"
        ipaddress.ip_address(value)
        return value
    except ValueError:
        raise DissectError(f"unable to convert value '{value}' to {kind}") from None
