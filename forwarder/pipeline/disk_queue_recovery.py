"""Opening the disk queue after a stop or a crash: check every segment, cut torn tails, find where to resume.

A frame is durable once fsynced, and only then are its events acknowledged to
their inputs; so whatever a crash leaves half-written at the end of a segment
holds only events no input was told were safe. They are cut off with one
warning naming the bytes; the file and API inputs send them again from their
cursors, which never moved past them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from forwarder.pipeline.disk_queue_acks import Position, load_position
from forwarder.pipeline.disk_segments import (
    FrameInfo,
    SegmentFiles,
    SegmentScan,
    scan_segment,
    segment_ids,
    segment_name,
)


@dataclass
class Recovered:
    # The segments still holding events the output has not acknowledged, oldest first.
    segments: list[tuple[int, SegmentScan]] = field(default_factory=list)
    # Their frames to send again, with how many leading events of each the output had already acknowledged.
    unread: list[tuple[int, FrameInfo, int]] = field(default_factory=list)
    position: Position = field(default_factory=lambda: Position(1, 0))
    next_segment_id: int = 1


def recover(directory: Path, files: SegmentFiles, log: logging.Logger) -> Recovered:
    ids = segment_ids(directory)
    saved = load_position(directory)
    recovered = Recovered(next_segment_id=ids[-1] + 1 if ids else 1)
    for segment_id in ids:
        path = directory / segment_name(segment_id)
        scan = scan_segment(path)
        if scan.damage and segment_id == ids[-1]:
            log.warning("disk queue: %s: %s; cut %d byte(s) after byte %d. They hold only events that were never "
                        "acknowledged to their inputs: file and API inputs send them again, syslog messages among "
                        "them are lost", path, scan.damage, scan.torn_bytes, scan.valid_end)
        elif scan.damage:
            # Not the segment being written when the forwarder stopped: this is damage after the fact (a bad
            # sector, a copied or edited file), and its events may already be acknowledged to their inputs.
            log.error("disk queue: %s: %s; cut %d byte(s) after byte %d of a segment that was complete: the "
                      "events in them are lost, and their inputs may have been told they were safe", path,
                      scan.damage, scan.torn_bytes, scan.valid_end)
        if scan.damage:
            if scan.valid_end == 0:
                files.delete(path)
                continue
            files.cut(path, scan.valid_end)
            scan.size = scan.valid_end
        unread = _unread_frames(segment_id, scan, saved)
        if not unread:
            files.delete(path)
            continue
        recovered.segments.append((segment_id, scan))
        recovered.unread.extend(unread)
    if recovered.unread:
        segment_id, frame, skip = recovered.unread[0]
        recovered.position = Position(segment_id, frame.first_index + skip)
    else:
        recovered.position = Position(recovered.next_segment_id, 0)
    return recovered


def _unread_frames(segment_id: int, scan: SegmentScan, saved: Position | None) -> list[tuple[int, FrameInfo, int]]:
    """The frames of a segment with events past the saved position, each with how many of its events to skip."""
    if saved is not None and segment_id < saved.segment:
        return []
    acknowledged = saved.index if saved is not None and segment_id == saved.segment else 0
    unread = []
    for frame in scan.frames:
        if frame.first_index + frame.count <= acknowledged:
            continue
        unread.append((segment_id, frame, max(0, acknowledged - frame.first_index)))
    return unread
