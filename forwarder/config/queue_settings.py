"""`queue.mem` or `queue.disk`: which queue holds events between the inputs and the output.

Filebeat's keys and defaults for both; exactly one may be set. `queue.disk`
adds `compression` (lz4, on by default; `none` turns it off) and
`compression_level` (lz4's: 0 is its fast default, higher levels compress
more and cost more CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forwarder.pipeline.disk_queue_settings import DiskQueueSettings
from forwarder.schema.section import Section

GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024
# Filebeat's floors: below them a queue would be all overhead.
MIN_MAX_SIZE = 10 * MIB
MIN_SEGMENT_SIZE = MIB


@dataclass
class MemoryQueueSettings:
    events: int
    bytes: int
    flush_min_events: int
    flush_timeout: float


def parse_queue(queue: Section, data_path: Path) -> tuple[MemoryQueueSettings, DiskQueueSettings | None]:
    if queue.has("mem") and queue.has("disk"):
        queue.error("disk", "cannot be set together with queue.mem: choose one queue (queue.disk keeps events on "
                            "disk through an output outage; queue.mem keeps them in memory)")
    memory = queue.section("mem")
    # Larger than Filebeat's 3200/1600: the queue counts events in flight, and it must hold
    # 2 × pipelining × bulk_max_size for the input to keep publishing while windows await ACKs.
    events = memory.integer("events", 8192, minimum=1)
    flush = memory.section("flush")
    flush_min_events = flush.integer("min_events", 2048, minimum=0)
    flush_timeout = flush.duration("timeout", 1.0)
    flush.finish()
    size = memory.size("bytes", 256 * MIB)
    memory.finish()
    disk = _parse_disk(queue.section("disk"), data_path) if queue.has("disk") else None
    queue.finish()
    return MemoryQueueSettings(events, size, flush_min_events, flush_timeout), disk


def _parse_disk(disk: Section, data_path: Path) -> DiskQueueSettings | None:
    path = Path(disk.string("path", str(data_path / "diskqueue")))
    if not path.is_absolute():
        path = data_path / path
    max_size = disk.size("max_size", 10 * GIB)
    if isinstance(max_size, int) and max_size < MIN_MAX_SIZE:
        disk.error("max_size", "must be at least 10MB")
    segment_size = disk.size("segment_size", None)
    if isinstance(segment_size, int) and segment_size < MIN_SEGMENT_SIZE:
        disk.error("segment_size", "must be at least 1MB")
    read_ahead = disk.integer("read_ahead", 512, minimum=1)
    write_ahead = disk.integer("write_ahead", 2048, minimum=1)
    retry_interval = disk.duration("retry_interval", 1.0)
    max_retry_interval = disk.duration("max_retry_interval", 30.0)
    compression = disk.string("compression", "lz4", choices=("lz4", "none"))
    level = disk.integer("compression_level", 0, minimum=0, maximum=16)
    disk.finish()
    if not isinstance(max_size, int):
        return None
    return DiskQueueSettings(
        path=path, max_size=max_size,
        segment_size=segment_size if isinstance(segment_size, int) else max(MIN_SEGMENT_SIZE, max_size // 10),
        read_ahead=read_ahead, write_ahead=write_ahead, retry_interval=retry_interval,
        max_retry_interval=max_retry_interval, compression_level=level if compression == "lz4" else None,
    )
