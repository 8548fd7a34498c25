"""`replace`: rewrite the parts of string fields that match a regular expression.

The replacement uses Filebeat's (Go's) template syntax, `$1`, `${1}`,
`${name}` and `$$`, compiled once into a function that expands it exactly as
Go does (a group that does not exist inserts nothing), so a config written
for Filebeat behaves the same. An empty replacement deletes what matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError, FieldPath, UndoLog, put_field
from forwarder.processors.field_edits import edit_each, read_present
from forwarder.schema.declared import BOOLEAN, STRING, Setting, read_settings, section_list
from forwarder.schema.section import Section

REPLACE_ITEM_SETTINGS = (
    Setting("field", STRING, doc="the string field changed"),
    Setting("pattern", STRING, doc="the regular expression whose matches are replaced"),
    Setting("replacement", STRING, "", "what replaces each match; `$1`, `${name}` insert groups, `$$` is a `$`"),
)
REPLACE_SETTINGS = (
    Setting("fields", section_list("list of `{field, pattern, replacement}`", REPLACE_ITEM_SETTINGS),
            doc="the replacements, applied in order"),
    Setting("ignore_missing", BOOLEAN, False, "a missing field is skipped instead of being a failure"),
    Setting("fail_on_error", BOOLEAN, True, "on a failure, undo this processor's changes and fail the event "
            "(`error.message`); `false`: skip only the failing field"),
)

_GO_TEMPLATE = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")

# A compiled template: literal text, or the name (or number) of a group to insert.
TemplatePart = tuple[bool, str | int]


def compile_go_template(template: str) -> Callable[[re.Match[str]], str]:
    """Go's Regexp.Expand: `$1`, `${1}`, `$name`, `${name}`, `$$`; a group that does not exist inserts nothing.

    `$1x` names the group `1x` (the longest run of letters, digits and `_`), as in Go.
    """
    parts: list[TemplatePart] = []
    position = 0
    for match in _GO_TEMPLATE.finditer(template):
        parts.append((True, template[position:match.start()]))
        name = match.group(1) or match.group(2)
        if name is None:
            parts.append((True, "$"))
        else:
            parts.append((False, int(name) if name.isdigit() else name))
        position = match.end()
    parts.append((True, template[position:]))

    def expand(found: re.Match[str]) -> str:
        pieces = []
        for literal, value in parts:
            if literal:
                pieces.append(str(value))
                continue
            try:
                pieces.append(found.group(value) or "")
            except IndexError:
                continue
        return "".join(pieces)

    return expand



Rule = tuple[FieldPath, re.Pattern[str], Callable[[re.Match[str]], str]]


def build_replace(options: Section) -> Processor:
    values = read_settings(options, REPLACE_SETTINGS)
    rules: list[Rule] = []
    if not values["fields"]:
        values.error("fields", "list at least one {field, pattern, replacement}")
    for index, item in enumerate(values["fields"]):
        try:
            pattern = re.compile(item["pattern"] or "")
        except re.error as exc:
            values.error("fields", f"item {index}: invalid pattern {item['pattern']!r}: {exc}")
            continue
        rules.append((FieldPath(item["field"] or ""), pattern, compile_go_template(item["replacement"])))
    ignore_missing, fail_on_error = values["ignore_missing"], values["fail_on_error"]

    def apply(event: Event, rule: Rule, undo: UndoLog | None) -> None:
        path, pattern, replacement = rule
        value: Any = read_present(event, path)
        if not isinstance(value, str):
            raise FieldError(f"key '{path.name}' expected type string, but got {type(value).__name__} with value "
                             f"'{value}'")
        put_field(event, path, pattern.sub(replacement, value), undo)

    def replace(event: Event) -> Event:
        return edit_each(event, rules, apply, ignore_missing, fail_on_error, "replace")

    return replace
