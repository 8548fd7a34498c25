"""The failure rules Filebeat's field-editing processors share: `ignore_missing` and `fail_on_error`.

lowercase, uppercase, urldecode, decode_base64_field, replace, truncate_fields
and convert all walk a list of fields and edit each in turn. Filebeat gives
them one behaviour: a missing field is skipped under `ignore_missing`; any
other failure either undoes every edit of this processor and fails the event
(`fail_on_error: true`, the default) or is logged and skipped. A failed event
is reported by raising, so the pipeline's single error policy sets
`error.message`, counts it and forwards the event as it was before this
processor (which is why the edits are undone first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, UndoLog, roll_back

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class MissingField(FieldError):
    """The field an edit reads is not in the event (what `ignore_missing` forgives)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"could not fetch value for key: {name}, Error: key not found")


def read_present(event: Event, path: FieldPath) -> Any:
    """The field's value; MissingField when it is absent."""
    value = path.get(event)
    if value is MISSING:
        raise MissingField(path.name)
    return value


def edit_each(
    event: Event,
    items: Iterable[Item],
    edit: Callable[[Event, Item, UndoLog | None], None],
    ignore_missing: bool,
    fail_on_error: bool,
    what: str,
) -> Event:
    """Applies `edit` to each item, recording changes in an undo log when a failure must undo them."""
    undo: UndoLog | None = [] if fail_on_error else None
    for item in items:
        try:
            edit(event, item, undo)
        except MissingField:
            if ignore_missing:
                continue
            if fail_on_error:
                roll_back(undo or [])
                raise
            log.debug("%s: a field is missing", what)
        except FieldError as exc:
            if fail_on_error:
                roll_back(undo or [])
                raise
            log.debug("%s: %s", what, exc)
    return event
