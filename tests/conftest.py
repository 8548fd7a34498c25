"""Shared fixtures: a real pipeline (queue, acker, registry) without an output.

Input tests publish through a real `PipelineClient` and take what reached the
queue with `harness.take(n)`, which acknowledges it as an output would.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from forwarder.pipeline.client import AgentInfo, ClientSettings, PipelineClient
from forwarder.pipeline.event import Event
from forwarder.pipeline.pipeline import Pipeline
from forwarder.pipeline.queue import EventQueue
from forwarder.registry import Registry
from forwarder.stats import StatsTable


class PipelineHarness:
    def __init__(self, data_path: Path, max_events: int = 4096) -> None:
        self.data_path = data_path
        self.registry = Registry(data_path / "registry" / "forwarder", flush_interval=0)
        self.queue = EventQueue(max_events, 64 * 1024 * 1024, flush_min_events=1, flush_timeout=0.0)
        self.stats = StatsTable()
        self.pipeline = Pipeline(self.queue, self.registry, [], AgentInfo(name="test-host"), self.stats)
        self.stop = threading.Event()

    def connect(self, input_type: str, input_id: str = "test", **settings) -> PipelineClient:
        return self.pipeline.connect(ClientSettings(input_id=input_id, input_type=input_type, **settings))

    def take(self, count: int, timeout: float = 10.0, ack: bool = True) -> list[Event]:
        """Waits until `count` events are queued and returns them (acknowledged unless ack=False)."""
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        while len(events) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            batch = self.queue.get_batch(count - len(events), wait=min(remaining, 0.2))
            if batch is None:
                continue
            events.extend(batch.events)
            if ack:
                batch.ack_all()
        return events

    def close(self) -> None:
        self.stop.set()
        self.queue.close()
        self.registry.close()


@pytest.fixture
def harness(tmp_path: Path):
    h = PipelineHarness(tmp_path / "data")
    yield h
    h.close()
