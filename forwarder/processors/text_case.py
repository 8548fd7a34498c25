"""`lowercase` and `uppercase`: change the case of field names (`fields`) and of string values (`values`).

Names in `fields` are matched case-insensitively, segment by segment, so
`user.name` finds `User.NAME`; each matched key is renamed (every segment, or
only the last with `alter_full_field: false`). Two keys that match the same
segment (`ab` and `aB`) are a collision, not a guess. Paths in `values` are
exact, and the value there must be a string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, UndoLog, put_field
from forwarder.processors.field_edits import MissingField, edit_each, read_present
from forwarder.schema.declared import BOOLEAN, STRINGS, Setting, read_settings
from forwarder.schema.section import Section

# Never renamed, as in Filebeat.
PROTECTED_FIELDS = ("@timestamp", "@metadata", "type")


def _case_settings(case: str) -> tuple[Setting, ...]:
    return (
        Setting("fields", STRINGS, [], f"field names to {case}, matched case-insensitively segment by segment "
                "(`a.b` finds `A.B`); `@timestamp`, `@metadata` and `type` are left alone"),
        Setting("values", STRINGS, [], f"fields whose string value is {case}d, exact paths"),
        Setting("ignore_missing", BOOLEAN, False, "a missing field is skipped instead of being a failure"),
        Setting("fail_on_error", BOOLEAN, True, "on a failure, undo this processor's changes and fail the event "
                "(`error.message`); `false`: skip only the failing field"),
        Setting("alter_full_field", BOOLEAN, True, "change every segment of the name; `false`: only the last"),
    )


LOWERCASE_SETTINGS = _case_settings("lowercase")
UPPERCASE_SETTINGS = _case_settings("uppercase")


def build_lowercase(options: Section) -> Processor:
    return _build_case(options, LOWERCASE_SETTINGS, str.lower, "lowercase")


def build_uppercase(options: Section) -> Processor:
    return _build_case(options, UPPERCASE_SETTINGS, str.upper, "uppercase")


def _build_case(options: Section, settings: tuple[Setting, ...], change: Callable[[str], str], name: str) -> Processor:
    values = read_settings(options, settings)
    names = [field for field in values["fields"] if not _protected(field)]
    value_paths = [FieldPath(field) for field in values["values"]]
    if not names and not value_paths:
        values.error("fields", "list at least one field in `fields` or `values`")
    full = values["alter_full_field"]
    ignore_missing, fail_on_error = values["ignore_missing"], values["fail_on_error"]

    def edit(event: Event, item: tuple[bool, Any], undo: UndoLog | None) -> None:
        is_name, target = item
        if is_name:
            _rename_case_insensitive(event.fields, target.split("."), change, full, undo)
            return
        current = read_present(event, target)
        if not isinstance(current, str):
            raise FieldError(f'value of key "{target.name}" is not a string')
        put_field(event, target, change(current), undo)

    # One list, so that with fail_on_error a failing value also undoes the renames before it.
    items = [(True, field) for field in names] + [(False, path) for path in value_paths]

    def alter(event: Event) -> Event:
        return edit_each(event, items, edit, ignore_missing, fail_on_error, name)

    alter.__name__ = name
    return alter


def _protected(field: str) -> bool:
    lowered = field.lower()
    return any(lowered == name or lowered.startswith(name + ".") for name in PROTECTED_FIELDS)


def _rename_case_insensitive(node: dict[str, Any], segments: list[str], change: Callable[[str], str],
                             full: bool, undo: UndoLog | None) -> None:
    for index, segment in enumerate(segments):
        matches = [key for key in node if isinstance(key, str) and key.lower() == segment.lower()]
        if not matches:
            raise MissingField(".".join(segments))
        if len(matches) > 1:
            raise FieldError(f"key collision: {', '.join(matches)} all match {segment!r}")
        key = matches[0]
        last = index == len(segments) - 1
        if full or last:
            new_key = change(key)
            if new_key != key:
                if new_key in node:
                    raise FieldError(f"key collision: {new_key!r} already exists")
                value = node.pop(key)
                if undo is not None:
                    undo.append((node, key, value))
                    undo.append((node, new_key, MISSING))
                node[new_key] = value
                key = new_key
        if last:
            return
        child = node[key]
        if not isinstance(child, dict):
            raise MissingField(".".join(segments))
        node = child
