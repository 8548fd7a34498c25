"""The kinds of processor option that declared settings have no built-in type for, and the keys every processor takes.

Filebeat's processors take a few shapes beyond plain values: a list of field
names that must not be empty, a list of `{from, to}` pairs (rename,
copy_fields), and the `when` condition. Each is a `ValueType` with its own
reader here, so a processor's declaration stays one `Setting` per key and the
README shows the same type name for the same shape in every table.
"""

from __future__ import annotations

from typing import Any

from forwarder.pipeline.conditions import build_condition
from forwarder.pipeline.field_path import FieldPath
from forwarder.schema.declared import STRING, Setting, ValueType, ignored, read_settings
from forwarder.schema.section import Section

# One `{from, to}` item of `fields` in rename and copy_fields.
FIELD_PAIR_SETTINGS = (
    Setting("from", STRING, doc="the field read"),
    Setting("to", STRING, doc="the field written"),
)


def _read_field_names(section: Section, key: str, setting: Setting, default: Any) -> list[str]:
    names = section.string_list(key, default)
    if names == []:
        section.error(key, "must list at least one field")
    return names or []


def _read_field_pairs(section: Section, key: str, setting: Setting, default: Any) -> list[tuple[FieldPath, FieldPath]]:
    """The pairs whose `from` and `to` are both readable; any problem is reported under `fields.N`."""
    raw = section.raw(key)
    if not isinstance(raw, list) or not raw:
        section.error(key, "is required (a list of {from: FIELD, to: FIELD})")
        return []
    pairs = []
    for entry in section.sections(key):
        values = read_settings(entry, FIELD_PAIR_SETTINGS)
        entry.finish()
        if values["from"] and values["to"]:
            pairs.append((FieldPath(values["from"]), FieldPath(values["to"])))
    return pairs


def _read_condition(section: Section, key: str, setting: Setting, default: Any) -> Any:
    return build_condition(section.section(key)) if section.has(key) else default


# Field names (dotted paths) of which at least one is required.
FIELD_NAMES = ValueType("list of fields", _read_field_names)
# `[{from: FIELD, to: FIELD}, …]`, read into (source, target) field paths.
FIELD_PAIRS = ValueType("list of `{from, to}`", _read_field_pairs)
# A Filebeat condition, compiled (None when absent or when it has problems, which are reported).
CONDITION = ValueType("condition", _read_condition)

# The keys of any processor, read before its own (a plugin's processor takes them too).
COMMON_SETTINGS = (
    Setting("when", CONDITION, None, "the processor runs only on events that match this condition: `equals`, "
            "`contains`, `regexp`, `range`, `has_fields`, `network`, or `and`/`or`/`not` of conditions",
            doc_default="— (every event)"),
    *ignored("tag"),
)
