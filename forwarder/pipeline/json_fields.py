"""decode_json_fields: JSON held in string fields becomes event fields, as in Filebeat.

Options and their defaults are Filebeat's, declared once in `SETTINGS`
(which the README's table is rendered from): `target` unset decodes in place,
'' merges into the event root; `document_id` is moved to `@metadata._id`, the
id the receiver deduplicates on. A string that is not JSON is left as it is;
with add_error_key the event says why.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event, parse_timestamp
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, deep_update, put_field, slot
from forwarder.pipeline.processor_settings import FIELD_NAMES
from forwarder.schema.declared import BOOLEAN, INTEGER, STRING, Setting, read_settings
from forwarder.schema.section import Section

log = logging.getLogger(__name__)

SETTINGS = (
    Setting("fields", FIELD_NAMES, doc="the fields holding JSON text; a field that is not a string is skipped"),
    Setting("max_depth", INTEGER, 1, "how deep to decode: above 1, string values holding a JSON object or array are "
            "decoded too", minimum=1),
    Setting("process_array", BOOLEAN, False, "with `max_depth` above 1, also decode the JSON strings in arrays"),
    Setting("target", STRING, None, "where the decoded value goes: unset = in place of the text, `\"\"` = merged "
            "into the event root (JSON objects only), otherwise that field", doc_default="— (in place)"),
    Setting("overwrite_keys", BOOLEAN, False, "with `target: \"\"`, decoded keys replace the event's "
            "(`@timestamp`, `@metadata` and `type` included, when valid); otherwise the event's are kept"),
    Setting("add_error_key", BOOLEAN, False, "a failure is written to the event's `error` (`message`, `type: json`)"),
    Setting("expand_keys", BOOLEAN, False, "dotted keys (`log.level`) become nested objects; a key given twice is "
            "a failure"),
    Setting("document_id", STRING, "", "a key of the decoded object that is moved to `@metadata._id` (the id "
            "receivers deduplicate on)", doc_default="—"),
)


def build_decode_json_fields(options: Section) -> Processor:
    values = read_settings(options, SETTINGS)
    paths = [FieldPath(name) for name in values["fields"]]
    max_depth = values["max_depth"]
    process_array = values["process_array"]
    target_name = values["target"]
    overwrite_keys = values["overwrite_keys"]
    add_error_key = values["add_error_key"]
    expand_keys = values["expand_keys"]
    document_id = values["document_id"]
    id_path = FieldPath(document_id) if document_id else None
    target = FieldPath(target_name) if target_name else None

    def json_error(event: Event, message: str, **extra: str) -> None:
        if add_error_key:
            event.fields["error"] = {"message": message, "type": "json", **extra}

    def decode_json_fields(event: Event) -> Event:
        for path in paths:
            text = path.get(event)
            if not isinstance(text, str):
                continue
            try:
                value = decode_json(text, max_depth, process_array)
            except ValueError as exc:
                json_error(event, f"parsing input as JSON: {exc}", data=text, field=path.name)
                continue
            doc_id = _take_document_id(value, id_path) if id_path is not None else None
            if target_name == "":
                if not isinstance(value, dict):
                    log.debug("decode_json_fields: %s is not a JSON object, cannot merge it into the event", path.name)
                    continue
                problem = _write_root(event, value, expand_keys, overwrite_keys)
                if problem:
                    json_error(event, problem)
            else:
                if expand_keys and isinstance(value, dict):
                    try:
                        value = expand_dotted_keys(value)
                    except ValueError as exc:
                        json_error(event, str(exc))
                try:
                    put_field(event, target or path, value)
                except FieldError as exc:
                    log.debug("decode_json_fields: cannot write %s: %s", (target or path).name, exc)
                    continue
            if doc_id is not None:
                event.meta["_id"] = doc_id
        return event

    return decode_json_fields


def decode_json(text: str, max_depth: int = 1, process_array: bool = False) -> Any:
    """One JSON document; with max_depth > 1, string values that hold JSON are decoded too.

    Integers too big for 64 bits become floats, as in Filebeat; arrays found on the
    way are only descended into with process_array.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    if max_depth > 1:
        _decode_nested(value, max_depth - 1, process_array)
    return value


def _decode_nested(node: Any, depth: int, process_array: bool) -> None:
    if isinstance(node, dict):
        slots: Any = node.items()
    elif isinstance(node, list) and process_array:
        slots = enumerate(node)
    else:
        return
    for key, item in list(slots):
        stripped = item.strip() if isinstance(item, str) else ""
        if len(stripped) > 1 and (stripped[0], stripped[-1]) in (("{", "}"), ("[", "]")):
            try:
                node[key] = decode_json(item, depth, process_array)
            except ValueError:
                continue


def _take_document_id(value: Any, id_path: FieldPath) -> str | None:
    if not isinstance(value, dict):
        return None
    doc_id = id_path.lookup(value)
    if not isinstance(doc_id, str):
        return None
    node, key = slot(value, id_path, False, None)
    del node[key]
    return doc_id


def _write_root(event: Event, keys: dict[str, Any], expand_keys: bool, overwrite_keys: bool) -> str | None:
    """Merges a decoded object into the event root the way Filebeat does; returns the last problem, if any."""
    if expand_keys:
        try:
            keys = expand_dotted_keys(keys)
        except ValueError as exc:
            return str(exc)
    if not overwrite_keys:
        keys.pop("@timestamp", None)
        keys.pop("@metadata", None)
        deep_update(event.fields, keys, overwrite=False, copy=False)
        return None
    problem = None
    timestamp = keys.pop("@timestamp", MISSING)
    if timestamp is not MISSING:
        try:
            if not isinstance(timestamp, str):
                raise TypeError
            event.timestamp = parse_timestamp(timestamp)
        except TypeError:
            problem = "@timestamp not overwritten (not string)"
        except ValueError:
            problem = f"@timestamp not overwritten (parse error on {timestamp})"
    meta = keys.pop("@metadata", MISSING)
    if meta is not MISSING:
        if isinstance(meta, dict):
            deep_update(event.meta, meta, copy=False)
        else:
            problem = "failed to update @metadata"
    kind = keys.pop("type", MISSING)
    if kind is not MISSING:
        if not isinstance(kind, str):
            problem = "type not overwritten (not string)"
        elif not kind or kind.startswith("_"):
            problem = f"type not overwritten (invalid value [{kind}])"
        else:
            event.fields["type"] = kind
    deep_update(event.fields, keys, copy=False)
    return problem


def expand_dotted_keys(node: dict[str, Any]) -> dict[str, Any]:
    """`{"a.b": 1}` → `{"a": {"b": 1}}`, recursively; a key given twice is an error, as in Filebeat."""
    result: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            value = expand_dotted_keys(value)
        *parents, last = str(key).split(".")
        target = result
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ValueError(f"cannot expand {key!r}: {part!r} already holds a value")
        _merge_distinct(target, last, value, key)
    return result


def _merge_distinct(target: dict[str, Any], key: str, value: Any, origin: str) -> None:
    existing = target.get(key, MISSING)
    if existing is MISSING:
        target[key] = value
    elif isinstance(existing, dict) and isinstance(value, dict):
        for sub_key, sub_value in value.items():
            _merge_distinct(existing, sub_key, sub_value, origin)
    else:
        raise ValueError(f"cannot expand {origin!r}: {key!r} is defined twice")
