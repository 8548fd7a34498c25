"""`output.console`: each event's JSON on stdout, for trying a config out."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import orjson

from forwarder.outputs.base import HostCheck, OutputType
from forwarder.outputs.batch_worker import BatchWorker
from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.queue import Batch
from forwarder.schema.declared import BOOLEAN, INTEGER, STRING, Setting, ignored, read_settings
from forwarder.schema.section import Section
from forwarder.stats import OutputStats

SETTINGS = (
    Setting("pretty", BOOLEAN, False, "indent each event's JSON over several lines"),
    Setting("index", STRING, "filebeat", "becomes `@metadata.beat`"),
    Setting("bulk_max_size", INTEGER, 2048, "most events written at a time", minimum=1),
    *ignored("codec", doc="events are always written as JSON: accepted, without effect"),
)


@dataclass
class ConsoleConfig:
    pretty: bool
    index: str
    bulk_max_size: int


def parse_config(section: Section) -> ConsoleConfig:
    values = read_settings(section, SETTINGS)
    return ConsoleConfig(pretty=values["pretty"], index=values["index"], bulk_max_size=values["bulk_max_size"])


class ConsoleOutput:
    def __init__(self, config: ConsoleConfig, encoder: EventEncoder, stats: OutputStats) -> None:
        self._config = config
        self._encoder = encoder
        self._stats = stats
        self._worker = BatchWorker("console", self._write, stats, config.bulk_max_size)

    def start(self, queue) -> None:
        self._worker.start(queue)

    def stop(self, timeout: float) -> None:
        self._worker.stop(timeout)

    def _write(self, batch: Batch) -> None:
        if self._config.pretty:
            # An event from the disk queue is only its encoded document: indent that.
            lines = [orjson.dumps(orjson.loads(e.encoded) if e.encoded is not None else self._encoder.document(e),
                                  option=orjson.OPT_INDENT_2, default=str) for e in batch.pending]
        else:
            lines = [self._encoder.encode(e) for e in batch.pending]
        data = b"\n".join(lines) + b"\n"
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        self._stats.bytes_written += len(data)


def check(config: ConsoleConfig) -> list[HostCheck]:
    return [HostCheck("stdout", True, "console output writes to standard output")]


OUTPUT_TYPE = OutputType(
    name="console",
    parse_config=parse_config,
    create=ConsoleOutput,
    check=check,
    index=lambda config: config.index,
)
