"""`decode_xml`: turn XML text into fields, the way Filebeat maps XML to an object.

Each element becomes a key (its local name, lower-cased unless `to_lower:
false`), attributes become keys beside the child elements, an element with
only text becomes that text, text beside attributes or children goes to
`#text`, and repeated elements become a list. The text is parsed with
defusedxml, which refuses DTDs and entity definitions: an entity-expansion
"billion laughs" document fails the event instead of exhausting memory.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import (
    MISSING,
    FieldError,
    FieldPath,
    UndoLog,
    deep_update,
    put_field,
    roll_back,
    slot,
)
from forwarder.schema.declared import BOOLEAN, STRING, Setting, read_settings, rejected
from forwarder.schema.section import Section

DECODE_XML_SETTINGS = (
    Setting("field", STRING, "message", "the field holding the XML text"),
    Setting("target_field", STRING, None, "where the decoded object goes: unset = in place of the text, `\"\"` = "
            "merged into the event root, otherwise that field", doc_default="— (in place)"),
    Setting("overwrite_keys", BOOLEAN, True, "with `target_field: \"\"`, decoded keys replace the event's; `false` "
            "keeps the event's (a named target is always written)"),
    Setting("document_id", STRING, "", "a (dotted) key of the decoded object, e.g. `catalog.book.seq`, moved to "
            "`@metadata._id`"),
    Setting("to_lower", BOOLEAN, True, "lower-case the element and attribute names"),
    Setting("ignore_missing", BOOLEAN, False, "a missing `field` is not a failure"),
    Setting("ignore_failure", BOOLEAN, False, "text that is not XML leaves the event as it is instead of failing it"),
    *rejected("schema", message="the `wineventlog` schema is not supported: remove `schema` to get the generic XML "
              "mapping (different field names), or ship the XML and decode it downstream"),
)

_DOCUMENT_ID = FieldPath("@metadata._id")


def xml_to_object(text: str, to_lower: bool) -> dict[str, Any]:
    """The document as `{root name: content}`; ValueError when it is not well-formed or declares entities."""
    try:
        root = fromstring(text)
    except (ParseError, DefusedXmlException) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return {_name(root.tag, to_lower): _content(root, to_lower)}


def _name(tag: str, to_lower: bool) -> str:
    local = tag.rpartition("}")[2]
    return local.lower() if to_lower else local


def _content(element: Element, to_lower: bool) -> Any:
    node: dict[str, Any] = {_name(key, to_lower): value for key, value in element.attrib.items()}
    repeated: set[str] = set()
    for child in element:
        key = _name(child.tag, to_lower)
        value = _content(child, to_lower)
        if key not in node:
            node[key] = value
        elif key in repeated:
            node[key].append(value)
        else:
            node[key] = [node[key], value]
            repeated.add(key)
    text = (element.text or "").strip()
    if not node:
        return text
    if text:
        node["#text"] = text
    return node


def _take(decoded: dict[str, Any], path: FieldPath) -> Any:
    """Removes and returns the value at `path` (dotted, from the root element's name), or None."""
    try:
        node, key = slot(decoded, path, False, None)
    except FieldError:
        return None
    return node.pop(key, None)


def build_decode_xml(options: Section) -> Processor:
    values = read_settings(options, DECODE_XML_SETTINGS)
    source = FieldPath(values["field"])
    target_name = values["target_field"]
    target = None if target_name is None or target_name == "" else FieldPath(target_name)
    to_root = target_name == ""
    overwrite, to_lower = values["overwrite_keys"], values["to_lower"]
    document_id = FieldPath(values["document_id"]) if values["document_id"] else None
    ignore_missing, ignore_failure = values["ignore_missing"], values["ignore_failure"]

    def fail(message: str) -> None:
        if not ignore_failure:
            raise FieldError(f"failed in decode_xml on the {source.name!r} field: {message}")

    def decode_xml(event: Event) -> Event:
        text = source.get(event)
        if text is MISSING:
            if not ignore_missing:
                fail("key not found")
            return event
        if not isinstance(text, str):
            fail(f"the field is a {type(text).__name__}, not XML text")
            return event
        try:
            decoded = xml_to_object(text, to_lower)
        except ValueError as exc:
            fail(str(exc))
            return event
        except RecursionError:
            fail("XML nested too deeply")
            return event
        identifier = _take(decoded, document_id) if document_id else None
        undo: UndoLog = []
        try:
            if to_root:
                deep_update(event.fields, decoded, overwrite=overwrite, copy=False)
            else:
                put_field(event, target or source, decoded, undo)
            if isinstance(identifier, str) and identifier:
                put_field(event, _DOCUMENT_ID, identifier, undo)
        except FieldError as exc:
            roll_back(undo)
            fail(str(exc))
        return event

    return decode_xml
