"""decode_csv_fields: one CSV record held in a string field becomes a list of strings, as in Filebeat.

`fields` maps each source field to its target (`message: decoded.csv`).
Quoting follows RFC 4180 (`""` inside quotes is a quote); `separator` is one
character; `trim_leading_space` drops blanks that follow a separator.

With `fail_on_error` (the default) any failure — a missing field unless
`ignore_missing`, a field that is not a string, more than one record, a
target that already exists without `overwrite_keys` — undoes what this
processor wrote and raises, so the pipeline forwards the event as it was
with `error.message`. With `fail_on_error: false` the failing field is
skipped and the others are still decoded.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, UndoLog, put_field, roll_back
from forwarder.schema.declared import BOOLEAN, Setting, ValueType, read_settings
from forwarder.schema.section import Section


def _read_field_map(section: Section, key: str, setting: Setting, default: Any) -> list[tuple[FieldPath, FieldPath]]:
    raw = section.raw(key)
    if not isinstance(raw, dict) or not raw:
        section.error(key, "is required: a mapping of source field to target field (`message: decoded.csv`)")
        return []
    pairs = []
    for source, target in raw.items():
        if not isinstance(target, str) or not target:
            section.error(f"{key}.{source}", "must name the target field (a string)")
            continue
        pairs.append((FieldPath(str(source)), FieldPath(target)))
    return pairs


def _read_separator(section: Section, key: str, setting: Setting, default: Any) -> str:
    value = section.string(key, default)
    if value is None or len(value) != 1:
        section.error(key, f"must be exactly one character (got {value!r})")
        return default
    return value


FIELD_MAP = ValueType("mapping of field → field", _read_field_map)
SEPARATOR = ValueType("character", _read_separator)
SETTINGS = (
    Setting("fields", FIELD_MAP, doc="source field → target field of the decoded list (the same name decodes in "
            "place, with `overwrite_keys`)"),
    Setting("separator", SEPARATOR, ",", "the character between values"),
    Setting("ignore_missing", BOOLEAN, False, "a missing source field is skipped instead of being a failure"),
    Setting("overwrite_keys", BOOLEAN, False, "a target field that exists is replaced; otherwise that is a failure"),
    Setting("trim_leading_space", BOOLEAN, False, "blanks after a separator are dropped"),
    Setting("fail_on_error", BOOLEAN, True, "on a failure, undo this processor's changes and set `error.message`; "
            "`false`: skip only the failing field"),
)


class CsvFieldError(ValueError):
    """A field could not be decoded."""


def split_record(text: str, separator: str, trim_leading_space: bool) -> list[str]:
    """The values of the single CSV record in `text`."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator, quotechar='"', doublequote=True,
                               skipinitialspace=trim_leading_space, strict=True))
    except csv.Error as error:
        raise CsvFieldError(f"error decoding CSV: {error}") from None
    if len(rows) != 1:
        raise CsvFieldError(f"CSV field holds {len(rows)} records, expected exactly one")
    return rows[0]


def build_decode_csv_fields(options: Section) -> Processor:
    values = read_settings(options, SETTINGS)
    pairs: list[tuple[FieldPath, FieldPath]] = values["fields"]
    separator = values["separator"]
    ignore_missing = values["ignore_missing"]
    overwrite_keys = values["overwrite_keys"]
    trim_leading_space = values["trim_leading_space"]
    fail_on_error = values["fail_on_error"]

    def decode_one(event: Event, source: FieldPath, target: FieldPath, undo: UndoLog) -> None:
        text = source.get(event)
        if text is MISSING:
            if ignore_missing:
                return
            raise CsvFieldError(f"could not fetch value for field {source.name}")
        if not isinstance(text, str):
            raise CsvFieldError(f"field {source.name} is not a string")
        decoded = split_record(text, separator, trim_leading_space)
        if not overwrite_keys and target.get(event) is not MISSING:
            raise CsvFieldError(f"target field {target.name} already has a value")
        try:
            put_field(event, target, decoded, undo)
        except FieldError as error:
            raise CsvFieldError(f"cannot write {target.name}: {error}") from None

    def decode_csv_fields(event: Event) -> Event:
        undo: UndoLog = []
        for source, target in pairs:
            try:
                decode_one(event, source, target, undo)
            except CsvFieldError:
                if fail_on_error:
                    roll_back(undo)
                    raise
        return event

    return decode_csv_fields
