"""`Message`: one record read from a file, on its way through the parsers to an event.

It lives apart from the reader and the parsers because all of them hand it on:
the reader cuts lines into Messages, each parser stage rewrites or joins them,
and the filestream input turns the survivors into events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# In `log.flags` when a line or a joined record was cut at the byte limit.
TRUNCATED_FLAG = "truncated"


@dataclass(slots=True)
class Message:
    """One record with the byte range it came from.

    The input's cursor must point after the last line of the record it
    publishes, never past lines still waiting in a multiline buffer, so every
    stage carries `end` along.
    """

    content: str
    offset: int
    # Byte offset right after the record's last line: where a restart resumes.
    end: int
    # Bytes of content as read, for the multiline byte limit.
    size: int
    # True when `end` lies inside an over-long line whose rest is being skipped.
    skip_to_newline: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    timestamp: float | None = None
    flags: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
