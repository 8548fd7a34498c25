"""`replace`: rewrite the parts of string fields that match a regular expression.

The replacement uses Filebeat's (Go's) template syntax, `$1`, `${1}`,
`${name}` and `$$`, translated once to Python's so a config written for
Filebeat behaves the same. An empty replacement deletes what matched.
"""

from __future__ import annotations

import re
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


def go_template_to_python(template: str) -> str:
    """`$1x` in Go is the group named `1x`; Python needs `\\g<...>`; backslashes are literal in Go."""
    escaped = template.replace("\\", "\\\\")

    def convert(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return "$" if name is None else f"\\g<{name}>"

    return _GO_TEMPLATE.sub(convert, escaped)


def build_replace(options: Section) -> Processor:
    values = read_settings(options, REPLACE_SETTINGS)
    rules: list[tuple[FieldPath, re.Pattern[str], str]] = []
    if not values["fields"]:
        values.error("fields", "list at least one {field, pattern, replacement}")
    for index, item in enumerate(values["fields"]):
        try:
            pattern = re.compile(item["pattern"] or "")
        except re.error as exc:
            values.error("fields", f"item {index}: invalid pattern {item['pattern']!r}: {exc}")
            continue
        rules.append((FieldPath(item["field"] or ""), pattern, go_template_to_python(item["replacement"])))
    ignore_missing, fail_on_error = values["ignore_missing"], values["fail_on_error"]

    def apply(event: Event, rule: tuple[FieldPath, re.Pattern[str], str], undo: UndoLog | None) -> None:
        path, pattern, replacement = rule
        value: Any = read_present(event, path)
        if not isinstance(value, str):
            raise FieldError(f"{path.name} is not a string")
        try:
            changed = pattern.sub(replacement, value)
        except (re.error, IndexError) as exc:
            raise FieldError(f"replacement for {path.name} failed: {exc}") from None
        put_field(event, path, changed, undo)

    def replace(event: Event) -> Event:
        return edit_each(event, rules, apply, ignore_missing, fail_on_error, "replace")

    return replace
