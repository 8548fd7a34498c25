"""`convert`: change a field's type (integer, long, float, double, string, boolean, ip), in place or into `to`.

Conversions follow Filebeat's: integer text is decimal with an optional
sign, or hexadecimal after `0x`, and must fit its size (`integer` is 32
bits, `long` 64); numbers are truncated; booleans accept the text
`1 t T TRUE true True` and its negatives (not numbers),
`ip` checks the text is an address and keeps it a string. `mode: rename`
removes `from` when `to` is another field.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError, FieldPath, UndoLog, delete_field, put_field
from forwarder.processors.field_edits import edit_each, read_present
from forwarder.processors.go_values import go_text
from forwarder.schema.declared import BOOLEAN, STRING, Setting, read_settings, section_list
from forwarder.schema.section import Section

_GO_INT = re.compile(r"([+-]?)(?:0[xX]([0-9a-fA-F]+)|([0-9]+))")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _to_int(bits: int) -> Callable[[Any], int]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def convert(value: Any) -> int:
        if isinstance(value, bool):
            number = int(value)
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("not a finite number")
            number = int(value)
        elif isinstance(value, str):
            number = _parse_go_int(value)
        else:
            raise ValueError(f"cannot convert a {type(value).__name__}")
        if not low <= number <= high:
            raise ValueError(f"{number} is out of range for a {bits}-bit integer")
        return number

    return convert


def _parse_go_int(text: str) -> int:
    """Filebeat's rule: decimal digits with an optional sign, or hexadecimal after a `0x` prefix."""
    match = _GO_INT.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid syntax {text!r}")
    sign, hex_digits, decimal = match.groups()
    number = int(hex_digits, 16) if hex_digits is not None else int(decimal, 10)
    return -number if sign == "-" else number


def _to_float(value: Any) -> float:
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str):
        if "_" in value or value != value.strip():
            raise ValueError(f"invalid syntax {value!r}")
        return float(value)
    raise ValueError(f"cannot convert a {type(value).__name__}")


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(f"invalid syntax {value!r}")
    raise ValueError(f"cannot convert a {type(value).__name__}")


def _to_string(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        raise ValueError(f"cannot convert a {type(value).__name__}")
    return go_text(value)


def _to_ip(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"cannot convert a {type(value).__name__}")
    ipaddress.ip_address(value)
    return value


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "integer": _to_int(32),
    "long": _to_int(64),
    "float": _to_float,
    "double": _to_float,
    "string": _to_string,
    "boolean": _to_boolean,
    "ip": _to_ip,
}

CONVERT_ITEM_SETTINGS = (
    Setting("from", STRING, doc="the field read"),
    Setting("to", STRING, "", "the field written; `\"\"` = `from` itself"),
    Setting("type", STRING, "", "the type converted to; unset = copied (or renamed) as it is",
            choices=("", *CONVERTERS)),
)
CONVERT_SETTINGS = (
    Setting("fields", section_list("list of `{from, to, type}`", CONVERT_ITEM_SETTINGS),
            doc="the conversions, applied in order"),
    Setting("ignore_missing", BOOLEAN, False, "a missing `from` field is skipped instead of being a failure"),
    Setting("fail_on_error", BOOLEAN, True, "on a failure, undo this processor's changes and fail the event "
            "(`error.message`); `false`: skip only the failing field"),
    Setting("mode", STRING, "copy", "with a `to`: `copy` keeps `from`, `rename` removes it",
            choices=("copy", "rename")),
)

Conversion = tuple[FieldPath, FieldPath, str, Callable[[Any], Any] | None]


def build_convert(options: Section) -> Processor:
    values = read_settings(options, CONVERT_SETTINGS)
    conversions: list[Conversion] = []
    if not values["fields"]:
        values.error("fields", "list at least one {from, to, type}")
    for index, item in enumerate(values["fields"]):
        source, target, kind = item["from"] or "", item["to"] or "", item["type"] or ""
        if not target and not kind:
            values.error("fields", f"item {index}: set `to` or `type` (or both)")
            continue
        converter = CONVERTERS.get(kind)
        conversions.append((FieldPath(source), FieldPath(target or source), kind, converter))
    ignore_missing, fail_on_error = values["ignore_missing"], values["fail_on_error"]
    rename = values["mode"] == "rename"

    def apply(event: Event, conversion: Conversion, undo: UndoLog | None) -> None:
        source, target, kind, converter = conversion
        value = read_present(event, source)
        if converter is not None:
            try:
                value = converter(value)
            except ValueError as exc:
                into = f" with target field [{target.name}]" if target.name != source.name else ""
                raise FieldError(f"failed in processor.convert: conversion of field [{source.name}] to type "
                                 f"[{kind}]{into} failed: unable to convert value [{go_text(value)}]: {exc}") from None
        if rename and target.name != source.name:
            delete_field(event, source, undo)
        put_field(event, target, value, undo)

    def convert(event: Event) -> Event:
        return edit_each(event, conversions, apply, ignore_missing, fail_on_error, "convert")

    return convert
