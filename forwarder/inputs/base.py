"""What every input gets from the runner, and what it must provide.

An input type is a config parser plus a class with `run()`: a plain loop that
reads its source and calls `context.client.publish(event, cursor)` until
`context.stop` is set. If `run` raises, the supervisor logs the error once and
restarts it with backoff; other inputs are not affected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from forwarder.pipeline.client import PipelineClient
from forwarder.schema.section import Section
from forwarder.stats import InputStats


@dataclass
class InputContext:
    input_id: str
    client: PipelineClient
    stop: threading.Event
    log: logging.Logger
    stats: InputStats
    data_path: Path
    # `forwarder --once`: a file input returns once every file it found is read to the end.
    once: bool = False


class Input(Protocol):
    def run(self) -> None: ...


@dataclass(frozen=True)
class InputType:
    """One row of the input table: parse the type's own keys, then build it."""

    name: str
    parse_config: Callable[[Section], Any]
    create: Callable[[Any, InputContext], Input]
    # The input id to use when the config gives none, from the parsed config.
    default_id: Callable[[Any], str] | None = None
    # For an input configured on its own (not by a module): the processors that map its records as its
    # module would, as `processors:` items naming registered processors (`[{"entraid_ecs": {...}}]`), so
    # an input never imports a module and a standalone input still ships the module's events.
    standalone_processors: Callable[[Any], list[dict[str, Any]]] | None = None
    # For a polling input whose source one poller should read once per process: (the source, e.g. API host +
    # tenant + app, as a tuple; the streams it reads). Inputs with equal results are merged into one at load
    # (config/shared_graph_pollers.py), inputs of one source that share some streams are reported.
    polled_streams: Callable[[Any], tuple[tuple[str, ...], tuple[str, ...]]] | None = None


class PermanentInputError(Exception):
    """A failure retrying cannot fix soon (bad credentials, bind refused): parks the input.

    The supervisor logs it once, shows it in /stats and retries only after
    `retry_after` seconds.
    """

    def __init__(self, message: str, retry_after: float = 1800.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
