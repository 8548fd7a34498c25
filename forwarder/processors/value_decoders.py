"""`urldecode` and `decode_base64_field`: decode a string field into the same or another field.

Both follow Filebeat: `to` unset or empty writes the result over `from`; a
value that does not decode (a bad `%` escape, invalid base64) is a failure
under the shared `ignore_missing` / `fail_on_error` rules. Decoded bytes that
are not UTF-8 keep their invalid bytes as U+FFFD rather than failing.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError, FieldPath, UndoLog, put_field
from forwarder.processors.field_edits import edit_each, read_present
from forwarder.schema.declared import BOOLEAN, STRING, Setting, read_settings, section_list
from forwarder.schema.section import Section

_FAILURE_RULES = (
    Setting("ignore_missing", BOOLEAN, False, "a missing `from` field is skipped instead of being a failure"),
    Setting("fail_on_error", BOOLEAN, True, "on a failure, undo this processor's changes and fail the event "
            "(`error.message`); `false`: skip only the failing field"),
)
URLDECODE_PAIR_SETTINGS = (
    Setting("from", STRING, doc="the field holding URL-encoded text"),
    Setting("to", STRING, "", "the field the decoded text goes to; `\"\"` = over `from`"),
)
URLDECODE_SETTINGS = (
    Setting("fields", section_list("list of `{from, to}`", URLDECODE_PAIR_SETTINGS),
            doc="`{from: FIELD, to: FIELD}` pairs; the URL-encoded text of `from` is decoded (`%XX` escapes and "
            "`+` as space) into `to` (written over when it exists; no `to` = in place)"),
    *_FAILURE_RULES,
)
BASE64_FIELD_SETTINGS = (
    Setting("field.from", STRING, doc="the field holding base64 text (standard alphabet, padding optional)"),
    Setting("field.to", STRING, "", "the field the decoded text goes to; `\"\"` = over `from`"),
    *_FAILURE_RULES,
)

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url_unescape(text: str) -> str:
    """Go's url.QueryUnescape: `+` is a space, a `%` must start two hex digits."""
    bad = _BAD_ESCAPE.search(text)
    if bad:
        raise FieldError(f"invalid URL escape {text[bad.start():bad.start() + 3]!r}")
    return unquote_to_bytes(text.replace("+", " ")).decode("utf-8", "replace")


def build_urldecode(options: Section) -> Processor:
    values = read_settings(options, URLDECODE_SETTINGS)
    if not values["fields"]:
        values.error("fields", "list at least one {from: FIELD, to: FIELD}")
    pairs = [(FieldPath(item["from"] or ""), FieldPath(item["to"] or item["from"] or "")) for item in values["fields"]]
    ignore_missing, fail_on_error = values["ignore_missing"], values["fail_on_error"]

    def decode(event: Event, pair: tuple[FieldPath, FieldPath], undo: UndoLog | None) -> None:
        source, target = pair
        text = read_present(event, source)
        if not isinstance(text, str):
            raise FieldError(f"{source.name} is not a string")
        put_field(event, target, url_unescape(text), undo)

    def urldecode(event: Event) -> Event:
        return edit_each(event, pairs, decode, ignore_missing, fail_on_error, "urldecode")

    return urldecode


def build_decode_base64_field(options: Section) -> Processor:
    values = read_settings(options, BASE64_FIELD_SETTINGS)
    source = FieldPath(values["field.from"] or "")
    target = FieldPath(values["field.to"]) if values["field.to"] else source
    ignore_missing, fail_on_error = values["ignore_missing"], values["fail_on_error"]

    def decode(event: Event, path: FieldPath, undo: UndoLog | None) -> None:
        text = read_present(event, path)
        if not isinstance(text, str):
            raise FieldError(f"{path.name} is not a string")
        try:
            unpadded = text.rstrip("=")
            raw = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FieldError(f"error trying to decode {text[:40]!r}: {exc}") from None
        put_field(event, target, raw.decode("utf-8", "replace"), undo)

    def decode_base64_field(event: Event) -> Event:
        return edit_each(event, [source], decode, ignore_missing, fail_on_error, "decode_base64_field")

    return decode_base64_field
