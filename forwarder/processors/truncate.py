"""`truncate_fields`: cut string fields to a number of bytes or characters.

A field that was cut gets `truncated` added to `log.flags`, as Filebeat does,
so a reader knows the text is incomplete. Byte limits never split a UTF-8
character: the cut moves back to the last whole character.
"""

from __future__ import annotations

from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, UndoLog, put_field
from forwarder.pipeline.processor_settings import FIELD_NAMES
from forwarder.processors.field_edits import edit_each, read_present
from forwarder.schema.declared import BOOLEAN, INTEGER, Setting, read_settings
from forwarder.schema.section import Section

TRUNCATE_FIELDS_SETTINGS = (
    Setting("fields", FIELD_NAMES, doc="the string fields to cut"),
    Setting("max_bytes", INTEGER, None, "the most UTF-8 bytes kept; exclusive with `max_characters`", minimum=1),
    Setting("max_characters", INTEGER, None, "the most characters kept; exclusive with `max_bytes`", minimum=1),
    Setting("ignore_missing", BOOLEAN, False, "a missing field is skipped instead of being a failure"),
    Setting("fail_on_error", BOOLEAN, True, "on a failure, undo this processor's changes and fail the event "
            "(`error.message`); `false`: skip only the failing field"),
)

_FLAGS = FieldPath("log.flags")


def build_truncate_fields(options: Section) -> Processor:
    values = read_settings(options, TRUNCATE_FIELDS_SETTINGS)
    max_bytes, max_characters = values["max_bytes"], values["max_characters"]
    if (max_bytes is None) == (max_characters is None):
        values.error("max_bytes", "set exactly one of max_bytes and max_characters")
    paths = [FieldPath(name) for name in values["fields"]]
    ignore_missing, fail_on_error = values["ignore_missing"], values["fail_on_error"]

    def cut(text: str) -> str | None:
        """The shortened text, or None when it already fits."""
        if max_characters is not None:
            return text[:max_characters] if len(text) > max_characters else None
        encoded = text.encode("utf-8")
        if len(encoded) <= max_bytes:
            return None
        return encoded[:max_bytes].decode("utf-8", "ignore")

    def truncate(event: Event, path: FieldPath, undo: UndoLog | None) -> None:
        value: Any = read_present(event, path)
        if not isinstance(value, str):
            raise FieldError(f"{path.name} is not a string (it is {type(value).__name__})")
        shorter = cut(value)
        if shorter is None:
            return
        put_field(event, path, shorter, undo)
        flags = _FLAGS.get(event)
        if flags is MISSING:
            put_field(event, _FLAGS, ["truncated"], undo)
        elif isinstance(flags, list) and "truncated" not in flags:
            put_field(event, _FLAGS, [*flags, "truncated"], undo)

    def truncate_fields(event: Event) -> Event:
        return edit_each(event, paths, truncate, ignore_missing, fail_on_error, "truncate_fields")

    return truncate_fields
