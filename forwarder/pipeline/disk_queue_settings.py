"""The settings of `queue.disk`, in a module of their own so that reading the config does not load lz4."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class DiskQueueSettings:
    path: Path
    max_size: int
    segment_size: int
    read_ahead: int = 512
    write_ahead: int = 2048
    retry_interval: float = 1.0
    max_retry_interval: float = 30.0
    # None: frames are not compressed.
    compression_level: int | None = 0
