"""Filebeat's processors, by Filebeat's names and options, built once from config.

`build_processors` turns a `processors:` list into plain callables
`processor(event) -> event | None` (None drops the event). Everything that can
be prepared from the config is prepared here, so that on the publishing thread
a processor does only dict operations. A processor that fails on one event
never raises: like Filebeat it leaves a trace on the event (`error.message`,
or the `error` object of decode_json_fields) or skips the field, and the event
keeps flowing.

Fields are read and written through `field_path`, with Filebeat's mapstr
rules, so failures, rollbacks and error messages match Filebeat's. Processor
names are looked up in the `forwarder.processors` entry points (ours are the
`build_*` functions here and in json_fields/host_metadata), so a plugin's
processor is configured exactly like Filebeat's own.

Each processor's options are declared once (`*_SETTINGS`, read by
`read_settings`); the README's processor tables are rendered from them.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.conditions import build_condition, condition_fields
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import (
    MISSING,
    FieldError,
    FieldPath,
    UndoLog,
    copy_value,
    deep_update,
    delete_field,
    put_field,
    roll_back,
    set_error_message,
    slot,
)
from forwarder.pipeline.processor_settings import COMMON_SETTINGS, FIELD_NAMES, FIELD_PAIRS
from forwarder.pipeline.touched_fields import declare_fields, touched_fields
from forwarder.plugins import PROCESSORS, PluginError, PluginProblem
from forwarder.schema.declared import BOOLEAN, MAPPING, STRING, STRINGS, Setting, SettingValues, read_settings
from forwarder.schema.section import Section

log = logging.getLogger(__name__)

# Filebeat refuses to drop these and always keeps them in include_fields.
MANDATORY_FIELDS = ("@timestamp", "type")


def _move_settings(verb: str) -> tuple[Setting, ...]:
    """rename and copy_fields take the same options."""
    return (
        Setting("fields", FIELD_PAIRS, doc=f"the fields to {verb}, in order, as `{{from: FIELD, to: FIELD}}`; "
                "`to` must not exist yet"),
        Setting("ignore_missing", BOOLEAN, False, "a missing `from` field is skipped instead of being a failure"),
        Setting("fail_on_error", BOOLEAN, True, "on a failure, undo this processor's changes to the event and set "
                "`error.message`; `false`: skip only the failing pair"),
    )


RENAME_SETTINGS = _move_settings("rename")
COPY_FIELDS_SETTINGS = _move_settings("copy")
DROP_FIELDS_SETTINGS = (
    Setting("fields", FIELD_NAMES, doc="the fields to remove, with everything under them; `/regex/` removes every "
            "field whose dotted name matches; `@timestamp` and `type` are always kept"),
    Setting("ignore_missing", BOOLEAN, False, "a missing field is never a failure; without this it is logged at "
            "debug level"),
)
INCLUDE_FIELDS_SETTINGS = (
    Setting("fields", FIELD_NAMES, doc="the only fields kept, with everything under them; `type`, `@timestamp` and "
            "`@metadata` always stay"),
)
ADD_FIELDS_SETTINGS = (
    Setting("fields", MAPPING, doc="the fields to add: objects are merged into those already there, other values "
            "replace; `@timestamp` cannot be set"),
    Setting("target", STRING, "fields", "the (dotted) field they are added under; `\"\"` = the event root, where "
            "an `@metadata` object goes to the event's metadata"),
)
ADD_TAGS_SETTINGS = (
    Setting("tags", STRINGS, doc="the tags appended (one string or a list)"),
    Setting("target", STRING, "tags", "the field holding the list; a field that holds something else is left as "
            "it is"),
)


def build_processors(items: list[Section]) -> list[Processor]:
    """One processor per item of a `processors:` list; problems are reported through the sections."""
    processors = []
    for item in items:
        processor = _build_item(item)
        if processor is not None:
            processors.append(processor)
    return processors


def _build_item(item: Section) -> Processor | None:
    before = len(item.problems)
    if "if" in item.data:
        processor = _build_if_then_else(item)
    else:
        processor = _build_named(item)
    return processor if len(item.problems) == before else None


def _build_named(item: Section) -> Processor | None:
    names = [str(name) for name in item.data]
    if len(names) != 1:
        found = f"found {', '.join(names)}" if names else "found none"
        item.error("", f"each processor item needs exactly one processor name ({found})")
        item.ignore(*item.data)
        return None
    name = names[0]
    if name not in PROCESSORS:
        known = PROCESSORS.names()
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
        item.error(name, f"unknown processor{hint}")
        item.ignore(name)
        return None
    try:
        builder = PROCESSORS.get(name)
    except PluginError as error:
        item.problems.append(PluginProblem(item.source, item.key_path(name), str(error)))
        item.ignore(name)
        return None
    options = item.section(name)
    condition = read_settings(options, COMMON_SETTINGS)["when"]
    processor = builder(options)
    condition_reads = condition_fields(options.raw("when"))
    options.finish()
    return processor if condition is None else _only_when(condition, processor, condition_reads)


def _only_when(condition: Callable[[Event], bool], processor: Processor,
               condition_reads: frozenset[str] | None) -> Processor:
    def conditional(event: Event) -> Event | None:
        return processor(event) if condition(event) else event

    touched = touched_fields(processor)
    if touched is None or condition_reads is None:
        return conditional
    return declare_fields(conditional, touched | condition_reads)


def _build_if_then_else(item: Section) -> Processor | None:
    condition = build_condition(item.section("if"))
    then = _nested_list(item, "then", required=True)
    otherwise = _nested_list(item, "else", required=False)
    item.finish()
    if condition is None:
        return None

    def if_then_else(event: Event) -> Event | None:
        for processor in then if condition(event) else otherwise:
            event = processor(event)
            if event is None:
                return None
        return event

    return if_then_else


def _nested_list(item: Section, key: str, required: bool) -> list[Processor]:
    raw = item.raw(key)
    if raw is None:
        if required:
            item.error(key, "is required (a list of processors)")
        return []
    if isinstance(raw, dict):
        return build_processors([item.section(key)])
    return build_processors(item.sections(key))


def _build_move(values: SettingValues, keep_source: bool) -> Processor:
    """rename (keep_source False) and copy_fields (True): same checks, same rollback."""
    pairs: list[tuple[FieldPath, FieldPath]] = values["fields"]
    ignore_missing = values["ignore_missing"]
    fail_on_error = values["fail_on_error"]
    what = "copy fields in copy_fields processor" if keep_source else "rename fields in processor"

    def move(event: Event) -> Event:
        undo: UndoLog | None = [] if fail_on_error else None
        for source, target in pairs:
            try:
                if target.get(event) is not MISSING:
                    raise FieldError(f"target field {target.name} already exists, drop or rename this field first")
                value = source.get(event)
                if value is MISSING:
                    if ignore_missing:
                        continue
                    raise FieldError(f"could not fetch value for key: {source.name}, Error: key not found")
                if keep_source:
                    value = copy_value(value)
                else:
                    delete_field(event, source, undo)
                put_field(event, target, value, undo)
            except FieldError as exc:
                message = f"failed to {what}: {exc}"
                log.debug(message)
                if fail_on_error:
                    roll_back(undo or [])
                    set_error_message(event, message)
                    return event
        return event

    return move


def build_drop_fields(options: Section) -> Processor:
    values = read_settings(options, DROP_FIELDS_SETTINGS)
    names = [name for name in values["fields"] if name not in MANDATORY_FIELDS]
    ignore_missing = values["ignore_missing"]
    exact = [FieldPath(name) for name in names if not _is_regex(name)]
    patterns = []
    for name in filter(_is_regex, names):
        try:
            patterns.append(re.compile(name[1:-1]))
        except re.error as exc:
            values.error("fields", f"invalid regular expression {name!r}: {exc}")

    def drop_fields(event: Event) -> Event:
        for path in exact:
            try:
                delete_field(event, path)
            except FieldError as exc:
                if not ignore_missing:
                    log.debug("drop_fields: cannot drop %s: %s", path.name, exc)
        if patterns:
            for key in _flat_keys(event.fields, ""):
                if any(pattern.search(key) for pattern in patterns):
                    with suppress(FieldError):
                        delete_field(event, FieldPath(key))
        return event

    return drop_fields


def _is_regex(name: str) -> bool:
    return len(name) > 2 and name.startswith("/") and name.endswith("/")


def _flat_keys(node: dict[str, Any], prefix: str) -> list[str]:
    """Every key, objects and leaves alike, as dotted paths (objects before what they contain)."""
    keys = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        keys.append(path)
        if isinstance(value, dict):
            keys.extend(_flat_keys(value, path + "."))
    return keys


def build_include_fields(options: Section) -> Processor:
    names = read_settings(options, INCLUDE_FIELDS_SETTINGS)["fields"]
    paths = [FieldPath(name) for name in dict.fromkeys([*names, "type"]) if not name.startswith("@")]

    def include_fields(event: Event) -> Event:
        kept: dict[str, Any] = {}
        for path in paths:
            value = path.get(event)
            if value is not MISSING:
                try:
                    node, key = slot(kept, path, True, None)
                except FieldError:
                    continue
                node[key] = value
        event.fields = kept
        return event

    return include_fields


def build_add_fields(options: Section) -> Processor:
    values = read_settings(options, ADD_FIELDS_SETTINGS)
    fields, target = values["fields"], values["target"]
    if fields is None:
        return _noop
    payload: dict[str, Any] = dict(fields)
    for part in reversed(target.split(".") if target else []):
        payload = {part: payload}
    meta = payload.pop("@metadata", None)
    if "@timestamp" in payload:
        values.error("fields", "@timestamp cannot be set by add_fields")
    if meta is not None and not isinstance(meta, dict):
        values.error("fields", "@metadata must be an object")

    def add_fields(event: Event) -> Event:
        deep_update(event.fields, payload)
        if meta:
            deep_update(event.meta, meta)
        return event

    return add_fields


def build_add_tags(options: Section) -> Processor:
    values = read_settings(options, ADD_TAGS_SETTINGS)
    tags = values["tags"]
    target = FieldPath(values["target"])

    def add_tags(event: Event) -> Event:
        try:
            node, key = slot(target.root(event), target, True, None)
        except FieldError as exc:
            log.debug("add_tags: %s", exc)
            return event
        current = node.get(key, MISSING)
        if current is MISSING:
            node[key] = list(tags)
        elif isinstance(current, list):
            node[key] = current + tags
        else:
            log.debug("add_tags: %s is a %s, not a list of tags", target.name, type(current).__name__)
        return event

    return add_tags


def build_drop_event(options: Section) -> Processor:
    """No option of its own: it drops every event its `when` matches (every event, without one)."""
    return lambda event: None


def _noop(event: Event) -> Event:
    return event


def build_rename(options: Section) -> Processor:
    return _build_move(read_settings(options, RENAME_SETTINGS), keep_source=False)


def build_copy_fields(options: Section) -> Processor:
    return _build_move(read_settings(options, COPY_FIELDS_SETTINGS), keep_source=True)
