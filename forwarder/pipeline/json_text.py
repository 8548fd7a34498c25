"""Records as JSON text, whatever numbers they hold.

orjson is the fast path, but it refuses integers beyond 64 bits, which a
source may well send (a 30-digit id, a counter). A record that cannot be
encoded must not stop its input or its output on a retry loop, so those rare
values go through the standard library's encoder, which writes any integer.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def json_text(value: Any) -> str:
    """Compact JSON text of `value` (a parsed record), as orjson would write it where it can."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def json_bytes(value: Any, default: Any = None) -> bytes:
    """`json_text` as UTF-8 bytes, with orjson's `default` hook for values JSON has no type for."""
    try:
        return orjson.dumps(value, default=default)
    except orjson.JSONEncodeError:
        try:
            return orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default or str).encode()
