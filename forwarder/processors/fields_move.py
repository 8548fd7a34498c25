"""`move_fields`: move the fields of one object (or of the event root) under a prefix.

`from` names the object read (`""` = the event root), `fields` picks which of
its keys move (none listed = all), `exclude` keeps some back, and `to` is the
prefix each moved key gets inside that same object: `to: "rpc."` nests them
under `rpc`, `to: "my_prefix_"` renames them in place. Everything is read
before anything is written, so a failure leaves the event as it was.
"""

from __future__ import annotations

from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, UndoLog, roll_back, slot
from forwarder.processors.field_edits import MissingField
from forwarder.schema.declared import BOOLEAN, STRING, STRINGS, Setting, read_settings
from forwarder.schema.section import Section

MOVE_FIELDS_SETTINGS = (
    Setting("from", STRING, "", "the object whose fields move; `\"\"` = the event root"),
    Setting("fields", STRINGS, [], "the keys of `from` that move; none listed = all of them"),
    Setting("exclude", STRINGS, [], "keys of `from` that never move"),
    Setting("to", STRING, doc="the prefix each moved key gets inside `from`: `rpc.` nests them under `rpc`, "
            "`my_prefix_` renames them"),
    Setting("ignore_missing", BOOLEAN, False, "a listed field that is missing is skipped instead of a failure"),
)


def build_move_fields(options: Section) -> Processor:
    values = read_settings(options, MOVE_FIELDS_SETTINGS)
    source = FieldPath(values["from"]) if values["from"] else None
    listed = list(values["fields"])
    excluded = set(values["exclude"])
    prefix = values["to"] or ""
    ignore_missing = values["ignore_missing"]
    if not prefix:
        values.error("to", "is required: the prefix the moved fields get")

    def move_fields(event: Event) -> Event:
        container = event.fields if source is None else source.get(event)
        if not isinstance(container, dict):
            if container is MISSING and ignore_missing:
                return event
            raise FieldError(f"{values['from']} is not an object in the event")
        names = listed or [key for key in container if isinstance(key, str)]
        moving: list[tuple[str, Any]] = []
        for name in names:
            if name in excluded:
                continue
            value = FieldPath(name).lookup(container)
            if value is MISSING:
                if ignore_missing:
                    continue
                raise MissingField(name)
            moving.append((name, value))
        undo: UndoLog = []
        try:
            for name, _ in moving:
                node, key = slot(container, FieldPath(name), False, undo)
                undo.append((node, key, node.pop(key)))
            for name, value in moving:
                node, key = slot(container, FieldPath(prefix + name), True, undo)
                if key in node:
                    raise FieldError(f"target field {prefix + name} already exists")
                undo.append((node, key, MISSING))
                node[key] = value
        except FieldError:
            roll_back(undo)
            raise
        return event

    return move_fields
