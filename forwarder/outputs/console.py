"""`output.console`: each event's JSON on stdout, for trying a config out."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import orjson

from forwarder.schema.section import Section
from forwarder.outputs.base import HostCheck, OutputType
from forwarder.outputs.batch_worker import BatchWorker
from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.queue import Batch
from forwarder.stats import OutputStats


@dataclass
class ConsoleConfig:
    pretty: bool = False
    index: str = "filebeat"
    bulk_max_size: int = 2048


def parse_config(section: Section) -> ConsoleConfig:
    config = ConsoleConfig(
        pretty=section.boolean("pretty", False),
        index=section.string("index", "filebeat"),
        bulk_max_size=section.integer("bulk_max_size", 2048, minimum=1),
    )
    section.ignore("codec")
    return config


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
            lines = [orjson.dumps(self._encoder.document(e), option=orjson.OPT_INDENT_2, default=str)
                     for e in batch.pending]
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
