"""The "accepted but ignored" lines of one config load, collected wherever a setting is read.

A Filebeat key the forwarder accepts without acting on it is reported once at
start, with the reason, so a site moving from Filebeat sees what differs. The
settings are read deep inside input, output and processor parsers that only
know their `Section`; rather than thread a list through every parser, the load
opens a collector (`collecting_ignored`) and every reader reports into it. A
read outside a load (a unit test building one input) reports nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_COLLECTOR: ContextVar[list[str] | None] = ContextVar("ignored_settings", default=None)


@contextmanager
def collecting_ignored() -> Iterator[list[str]]:
    """Collects the lines reported by `report_ignored` while the block runs (each line once)."""
    lines: list[str] = []
    token = _COLLECTOR.set(lines)
    try:
        yield lines
    finally:
        _COLLECTOR.reset(token)


def report_ignored(source: str, key_path: str, reason: str) -> None:
    lines = _COLLECTOR.get()
    if lines is None:
        return
    line = f"{source}: {key_path}: ignored ({reason})"
    if line not in lines:
        lines.append(line)
