"""The Logstash output: its worker threads and how they are spread over the configured hosts.

`loadbalance: false` — every worker uses one host, picked at random so a
fleet of forwarders with the same host list spreads out, and moves to the
next host in the list when it fails. `loadbalance: true` — `worker`
connections to every host, all taking batches from the same queue, so
batches spread over the hosts and a down host's batches are picked up by the
others.
"""

from __future__ import annotations

import random
import threading
import time

from forwarder.backoff import Backoff
from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.logstash.config import HostAddress, LogstashConfig
from forwarder.outputs.logstash.connection import STALL_WARNING_AFTER, OutputCounters
from forwarder.outputs.logstash.pacing import WindowSize
from forwarder.outputs.logstash.window_encoder import WindowEncoder
from forwarder.outputs.logstash.worker import BatchSource, LumberjackWorker
from forwarder.pipeline.queue import EventQueue
from forwarder.stats import OutputStats


class LogstashOutput:
    def __init__(
        self,
        config: LogstashConfig,
        encoder: EventEncoder,
        stats: OutputStats,
        stall_warning_after: float = STALL_WARNING_AFTER,
    ) -> None:
        self.config = config
        self._encoder = WindowEncoder(encoder, config.compression_level, config.escape_html)
        self._counters = OutputCounters(stats)
        self._stall_warning_after = stall_warning_after
        self._stop = threading.Event()
        self._workers: list[LumberjackWorker] = []
        self._threads: list[threading.Thread] = []

    def start(self, queue: EventQueue) -> None:
        config = self.config
        source = BatchSource(queue, config.bulk_max_size)
        if config.loadbalance:
            placements = [([host], 0) for host in config.hosts for _ in range(config.workers)]
        else:
            first = random.randrange(len(config.hosts))
            placements = [(config.hosts, first) for _ in range(config.workers)]
        for number, (hosts, first) in enumerate(placements):
            worker = self._worker(hosts, first, source)
            thread = threading.Thread(target=worker.run, name=f"logstash-worker-{number}", daemon=True)
            self._workers.append(worker)
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        """Returns within `timeout`; events not yet acknowledged are left for the registry to replay."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        for worker in self._workers:
            worker.interrupt()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _worker(self, hosts: list[HostAddress], first: int, source: BatchSource) -> LumberjackWorker:
        config = self.config
        return LumberjackWorker(
            hosts,
            first,
            context=config.ssl_context,
            timeout=config.timeout,
            ttl=config.ttl,
            max_in_flight=config.windows_in_flight,
            window_size=WindowSize(config.bulk_max_size, config.slow_start),
            backoff=Backoff(config.backoff_init, config.backoff_max),
            encoder=self._encoder,
            source=source,
            counters=self._counters,
            stop=self._stop,
            stall_warning_after=self._stall_warning_after,
        )
