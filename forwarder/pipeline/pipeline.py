"""Wires inputs to the queue, the ackers and the registry."""

from __future__ import annotations

import time

from forwarder.pipeline.acker import InputAcker
from forwarder.pipeline.client import AgentInfo, ClientSettings, PipelineClient, Processor
from forwarder.pipeline.queue import EventQueue
from forwarder.registry import Registry
from forwarder.stats import InputStats, StatsTable


class Pipeline:
    def __init__(
        self,
        queue: EventQueue,
        registry: Registry,
        global_processors: list[Processor],
        agent: AgentInfo,
        stats: StatsTable,
    ) -> None:
        self.queue = queue
        self.registry = registry
        self.global_processors = global_processors
        self.agent = agent
        self.stats = stats
        self._ackers: list[InputAcker] = []

    def connect(self, settings: ClientSettings) -> PipelineClient:
        """A client for one input; it reads its committed cursors from the registry whenever it is asked."""
        stats = self.stats.add_input(InputStats(settings.input_id, settings.input_type))
        acker = InputAcker(self.registry.commit, settings.key_prefix)
        stats.acker = acker
        self._ackers.append(acker)
        prefix = settings.key_prefix
        return PipelineClient(settings, self.queue, acker, self.global_processors, self.agent, stats,
                              lambda: self.registry.with_prefix(prefix))

    def wait_acked(self, timeout: float) -> bool:
        """True when every published event was acknowledged within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        return all(acker.wait_all_done(max(0.0, deadline - time.monotonic())) for acker in self._ackers)
