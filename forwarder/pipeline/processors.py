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
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.conditions import build_condition
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
from forwarder.plugins import PROCESSORS, PluginError, PluginProblem
from forwarder.schema.section import Section

log = logging.getLogger(__name__)

# Filebeat refuses to drop these and always keeps them in include_fields.
MANDATORY_FIELDS = ("@timestamp", "type")


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
    condition = build_condition(options.section("when")) if options.has("when") else None
    options.ignore("tag")
    processor = builder(options)
    options.finish()
    return processor if condition is None else _only_when(condition, processor)


def _only_when(condition: Callable[[Event], bool], processor: Processor) -> Processor:
    def conditional(event: Event) -> Event | None:
        return processor(event) if condition(event) else event

    return conditional


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


def _from_to_pairs(options: Section) -> list[tuple[FieldPath, FieldPath]]:
    if not isinstance(options.raw("fields"), list) or not options.raw("fields"):
        options.error("fields", "is required (a list of {from: FIELD, to: FIELD})")
        return []
    pairs = []
    for entry in options.sections("fields"):
        source, target = entry.string("from"), entry.string("to")
        entry.finish()
        if source and target:
            pairs.append((FieldPath(source), FieldPath(target)))
    return pairs


def _build_move(options: Section, keep_source: bool) -> Processor:
    """rename (keep_source False) and copy_fields (True): same checks, same rollback."""
    pairs = _from_to_pairs(options)
    ignore_missing = options.boolean("ignore_missing", False)
    fail_on_error = options.boolean("fail_on_error", True)
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


def _required_fields(options: Section) -> list[str]:
    fields = options.string_list("fields")
    if fields == []:
        options.error("fields", "must list at least one field")
    return fields or []


def build_drop_fields(options: Section) -> Processor:
    names = [name for name in _required_fields(options) if name not in MANDATORY_FIELDS]
    ignore_missing = options.boolean("ignore_missing", False)
    exact = [FieldPath(name) for name in names if not _is_regex(name)]
    patterns = []
    for name in filter(_is_regex, names):
        try:
            patterns.append(re.compile(name[1:-1]))
        except re.error as exc:
            options.error("fields", f"invalid regular expression {name!r}: {exc}")

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
    names = _required_fields(options)
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
    fields = options.mapping("fields")
    target = options.string("target", "fields")
    if fields is None:
        return _noop
    payload: dict[str, Any] = dict(fields)
    for part in reversed(target.split(".") if target else []):
        payload = {part: payload}
    meta = payload.pop("@metadata", None)
    if "@timestamp" in payload:
        options.error("fields", "@timestamp cannot be set by add_fields")
    if meta is not None and not isinstance(meta, dict):
        options.error("fields", "@metadata must be an object")

    def add_fields(event: Event) -> Event:
        deep_update(event.fields, payload)
        if meta:
            deep_update(event.meta, meta)
        return event

    return add_fields


def build_add_tags(options: Section) -> Processor:
    tags = options.string_list("tags")
    target = FieldPath(options.string("target", "tags"))

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
    return lambda event: None


def _noop(event: Event) -> Event:
    return event


def build_rename(options: Section) -> Processor:
    return _build_move(options, keep_source=False)


def build_copy_fields(options: Section) -> Processor:
    return _build_move(options, keep_source=True)
