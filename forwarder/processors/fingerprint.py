"""`fingerprint`: a hash of chosen fields, the same value Filebeat computes for the same event.

The fields are sorted by name and hashed as `|name|value|name|value|`, each
value printed as Go prints it, so a fingerprint used as a document id or a
dedup key keeps matching what Filebeat wrote before the switch. Objects and
lists cannot be fingerprinted (their order is not defined); a missing field is
a failure unless `ignore_missing`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import xxhash

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, put_field
from forwarder.pipeline.processor_settings import FIELD_NAMES
from forwarder.processors.go_values import go_text, go_utc_time_text
from forwarder.schema.declared import BOOLEAN, STRING, Setting, read_settings
from forwarder.schema.section import Section

METHODS: dict[str, Callable[[bytes], bytes]] = {
    "md5": lambda data: hashlib.md5(data, usedforsecurity=False).digest(),
    "sha1": lambda data: hashlib.sha1(data, usedforsecurity=False).digest(),
    "sha256": lambda data: hashlib.sha256(data).digest(),
    "sha384": lambda data: hashlib.sha384(data).digest(),
    "sha512": lambda data: hashlib.sha512(data).digest(),
    "xxhash": lambda data: xxhash.xxh64(data).digest(),
}
ENCODINGS: dict[str, Callable[[bytes], str]] = {
    "hex": bytes.hex,
    "base32": lambda digest: base64.b32encode(digest).decode("ascii"),
    "base64": lambda digest: base64.b64encode(digest).decode("ascii"),
}

FINGERPRINT_SETTINGS = (
    Setting("fields", FIELD_NAMES, doc="the fields hashed (in name order, so the order listed does not matter); "
            "`@timestamp` may be one of them"),
    Setting("target_field", STRING, "fingerprint", "the field the fingerprint is written to"),
    Setting("method", STRING, "sha256", "the hash", choices=tuple(METHODS)),
    Setting("encoding", STRING, "hex", "how the hash is written", choices=tuple(ENCODINGS)),
    Setting("ignore_missing", BOOLEAN, False, "a missing field is left out instead of failing the event"),
)


def build_fingerprint(options: Section) -> Processor:
    values = read_settings(options, FINGERPRINT_SETTINGS)
    paths = [FieldPath(name) for name in sorted(set(values["fields"]))]
    target = FieldPath(values["target_field"])
    digest = METHODS.get(values["method"], METHODS["sha256"])
    encode = ENCODINGS.get(values["encoding"], ENCODINGS["hex"])
    ignore_missing = values["ignore_missing"]

    def fingerprint(event: Event) -> Event:
        parts = []
        for path in paths:
            value: Any = go_utc_time_text(event.timestamp) if path.is_timestamp else path.get(event)
            if value is MISSING:
                if ignore_missing:
                    continue
                raise FieldError(f"failed to find field [{path.name}] in event")
            if isinstance(value, (dict, list)):
                raise FieldError(f"cannot compute fingerprint using non-scalar field [{path.name}]")
            parts.append(f"|{path.name}|{go_text(value)}")
        source = "".join(parts) + "|"
        put_field(event, target, encode(digest(source.encode("utf-8"))))
        return event

    return fingerprint
