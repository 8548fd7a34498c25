"""Sums a py-spy raw recording of the forwarder by pipeline stage (used by filestream_logstash.py).

py-spy's raw format is one line per distinct stack, `frame;frame;...;leaf count`,
each frame `function (path:line)`. A sample belongs to the innermost frame that
names a stage; helpers shared by several stages (field_path, event, json_text,
threading, dataclass `__init__`s) are skipped so their time goes to their
caller. A leaf that is a call into C is classified by its source line: the
Logstash connection's `select`/`recv` is the socket, the compressor thread's
work item is zlib, and the ACK reader's `_on_ack` call line is where the
acknowledged window's events are freed (the call's frame held the last reference).

    python bench/profile_stages.py DIR/gil.txt [DIR/all.txt]
"""

from __future__ import annotations

import linecache
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")

STAGES = (
    "reading/splitting", "ndjson decode", "event building", "prepare/processors", "queue/acker",
    "freeing acknowledged events", "encoding", "compression (zlib, GIL released)", "socket",
    "waiting (idle)", "start-up (imports, config)", "other",
)

# (path suffix, function prefix or "", stage), checked from the innermost frame outwards.
RULES = (
    ("inputs/file_reader.py", "", "reading/splitting"),
    ("inputs/line_parsers.py", "", "reading/splitting"),
    ("inputs/ndjson_parser.py", "", "ndjson decode"),
    ("inputs/filestream.py", "FilestreamInput._event", "event building"),
    ("inputs/filestream.py", "FilestreamInput._publish", "event building"),
    ("inputs/filestream.py", "", "reading/splitting"),
    ("pipeline/queue.py", "", "queue/acker"),
    ("pipeline/acker.py", "", "queue/acker"),
    ("registry.py", "", "queue/acker"),
    ("pipeline/client.py", "", "prepare/processors"),
    ("pipeline/processors.py", "", "prepare/processors"),
    ("forwarder/processors/", "", "prepare/processors"),
    ("outputs/codec.py", "", "encoding"),
    ("outputs/logstash/window_encoder.py", "", "encoding"),
    ("outputs/logstash/frames.py", "", "encoding"),
    ("outputs/logstash/transport.py", "", "socket"),
    ("outputs/logstash/connection.py", "LumberjackConnection._on_ack", "queue/acker"),
    ("outputs/logstash/connection.py", "", "socket"),
    ("outputs/logstash/worker.py", "", "socket"),
    ("concurrent/futures/thread.py", "_WorkItem.run", "compression (zlib, GIL released)"),
    ("concurrent/futures/thread.py", "_worker", "waiting (idle)"),
    ("forwarder/cli.py", "", "start-up (imports, config)"),
    ("forwarder/config/", "", "start-up (imports, config)"),
    ("forwarder/plugins.py", "", "start-up (imports, config)"),
    ("<frozen", "", "start-up (imports, config)"),
    ("importlib", "", "start-up (imports, config)"),
)
SHARED_HELPERS = ("pipeline/field_path.py", "pipeline/event.py", "pipeline/json_text.py", "<string>")


def parse_frame(text: str) -> tuple[str, str, int]:
    found = FRAME.match(text)
    if not found:
        return text, "", 0
    return found["function"], found["path"], int(found["line"] or 0)


def source_line(path: str, line: int) -> str:
    candidate = ROOT / path if path.startswith("forwarder/") else Path(path)
    return linecache.getline(str(candidate), line) if line else ""


def leaf_stage(function: str, path: str, line: int) -> str | None:
    """Stages decided by what the innermost frame's line does in C."""
    if function in ("Condition.wait", "Event.wait") or path.endswith("selectors.py"):
        return "waiting (idle)"
    if path.endswith("logstash/connection.py"):
        text = source_line(path, line)
        if "select" in text or ".recv(" in text:
            return "waiting (idle)" if "select" in text else "socket"
        if "_on_ack(" in text:
            return "freeing acknowledged events"
    return None


def stage_of(frames: list[str]) -> str:
    function, path, line = parse_frame(frames[-1])
    decided = leaf_stage(function, path, line)
    if decided:
        return decided
    for frame in reversed(frames):
        function, path, line = parse_frame(frame)
        if any(helper in path for helper in SHARED_HELPERS):
            continue
        for suffix, prefix, stage in RULES:
            if suffix in path and function.startswith(prefix):
                return stage
    return "other"


def summarise(path: Path) -> tuple[int, Counter]:
    stages: Counter = Counter()
    total = 0
    for raw in path.read_text().splitlines():
        stack, _, count = raw.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        stages[stage_of(stack.split(";"))] += int(count)
    return total, stages


def report(path: Path) -> str:
    total, stages = summarise(path)
    rows = [f"{path}: {total} samples"]
    for stage in STAGES:
        if stages[stage]:
            rows.append(f"  {stages[stage] * 100 / total:5.1f} %  {stage}")
    return "\n".join(rows)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(report(Path(argument)))
