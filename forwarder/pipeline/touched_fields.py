"""Which top-level fields a processor touches, so that a line's own fields may stay as read.

A plain ndjson line goes out as its own text (Event.raw_fields) unless something
could read or change one of its keys. A processor that knows exactly which
top-level fields it reads and writes says so here; the pipeline client then
keeps the line unmerged while none of them is among the line's keys. A
processor that says nothing may touch anything, and the line is merged first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

# A processor (pipeline.client.Processor, not imported: the client imports this module).
P = TypeVar("P", bound=Callable[..., Any])


def declare_fields(processor: P, keys: frozenset[str]) -> P:
    """Says that `processor` reads and writes no top-level field but `keys`, not even through Event.get."""
    processor.fields_touched = keys  # type: ignore[attr-defined]
    return processor


def touched_fields(processor: Callable[..., Any]) -> frozenset[str] | None:
    """The keys `declare_fields` gave the processor; None when it did not declare them (it may touch any)."""
    return getattr(processor, "fields_touched", None)
