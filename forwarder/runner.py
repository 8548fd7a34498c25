"""Runs the forwarder: builds the pipeline from Settings, supervises inputs, shuts down cleanly.

Start order: data-directory lock, the modes of the forwarder's own files
narrowed to owner-only (an earlier version left them 0644/0755), registry,
queue, output, then one supervised thread per input. Stop order
(SIGTERM/SIGINT): inputs are told to stop and the queue stops taking new
events, the output keeps delivering what
is queued for up to `shutdown_timeout`, then the output stops and the
registry is flushed. Anything not acknowledged by then was never committed
and is read again at the next start.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import threading
import time
import uuid
from pathlib import Path

from forwarder.config.settings import Settings
from forwarder.data_lock import DataDirectoryLock, StartupError
from forwarder.disk import (
    FILE_MODE,
    DiskError,
    OwnedDirectory,
    disk_problem,
    tighten_owned_modes,
    write_atomically,
)
from forwarder.filebeat_registry.startup import import_on_first_start
from forwarder.inputs.base import InputContext, PermanentInputError
from forwarder.log_files import owned_log_directory
from forwarder.monitoring import MonitoringServer
from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.client import AgentInfo, PipelineClient
from forwarder.pipeline.disk_queue import DiskQueue
from forwarder.pipeline.pipeline import Pipeline
from forwarder.pipeline.queue import EventQueue
from forwarder.pipeline.workers import WorkerPool, worker_count
from forwarder.registry import Registry
from forwarder.stats import InputStats, OutputStats, StatsTable

log = logging.getLogger("forwarder")

RESTART_BACKOFF_INIT = 1.0
RESTART_BACKOFF_MAX = 60.0
INPUT_JOIN_TIMEOUT = 5.0


class Forwarder:
    def __init__(self, settings: Settings, stop: threading.Event | None = None, once: bool = False) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        # `--once`: stop when every (file) input has returned and all it published is acknowledged.
        self.once = once
        self.stats = StatsTable()
        self._input_threads: list[threading.Thread] = []

    def run(self) -> int:
        settings = self.settings
        encoder = EventEncoder(settings.output_type.index(settings.output_config))
        # Forked first: no thread runs yet, and the zygote must not inherit the data directory's lock.
        workers = open_worker_pool(settings, encoder)
        lock = DataDirectoryLock(settings.paths.data)
        try:
            lock.acquire()
        except BaseException:
            if workers is not None:
                workers.close()
            raise
        tighten_modes(settings)
        collector = CycleCollector()
        collector.start()
        try:
            # Bound before anything starts: a port in use is one line at start, not a failure with inputs running.
            monitoring = self._bind_monitoring() if settings.http_enabled else None
            queue = open_queue(settings, encoder)
            registry = Registry(settings.registry_path / "forwarder", settings.registry_flush,
                                settings.registry_permissions)
            import_on_first_start(registry, settings.registry_path, settings.inputs)
            registry.start()
            output_stats = OutputStats(settings.output_type.name)
            output = settings.output_type.create(settings.output_config, encoder, output_stats)
            agent = AgentInfo(name=settings.name, id=persistent_agent_id(settings.paths.data))
            pipeline = Pipeline(queue, registry, settings.processors, agent, self.stats)
            self.stats.output, self.stats.queue, self.stats.registry = output_stats, queue, registry
            if workers is not None:
                workers.start(agent)
                self.stats.workers = workers
            try:
                output.start(queue)
            except DiskError as exc:
                registry.close()
                raise StartupError(str(exc)) from None
            for index, spec in enumerate(settings.inputs):
                client = pipeline.connect(spec.client)
                if workers is not None:
                    workers.attach(client, index, queue)
                thread = threading.Thread(target=self._supervise, args=(spec, client), daemon=True,
                                          name=f"input-{spec.client.input_id}")
                thread.start()
                self._input_threads.append(thread)
            if monitoring is not None:
                monitoring.start()
            log.info("forwarder started: %d input(s), output %s, data in %s", len(settings.inputs),
                     settings.output_type.name, settings.paths.data)
            if self.once:
                self._wait_for_inputs_and_acks(pipeline)
            else:
                self._wait_for_stop()
            try:
                self._shutdown(queue, pipeline, output, registry, workers)
            finally:
                if monitoring is not None:
                    monitoring.stop()
        finally:
            if workers is not None:
                workers.close()
            collector.stop()
            lock.release()
        return 0

    def _wait_for_inputs_and_acks(self, pipeline: Pipeline) -> None:
        for thread in self._input_threads:
            while thread.is_alive() and not self.stop.is_set():
                thread.join(0.5)
        acknowledged = False
        while not self.stop.is_set() and not acknowledged:
            acknowledged = pipeline.wait_acked(0.5)
        if acknowledged:
            log.info("--once: every input read its files to the end and every event was acknowledged")

    def _bind_monitoring(self) -> MonitoringServer:
        settings = self.settings
        try:
            return MonitoringServer(settings.http_host, settings.http_port, self.stats, settings.name)
        except OSError as exc:
            raise StartupError(f"cannot serve /stats on {settings.http_host}:{settings.http_port}: "
                               f"{exc.strerror or exc} (choose another http.port, or set http.enabled: false)"
                               ) from None

    def _wait_for_stop(self) -> None:
        period = self.settings.logging.metrics_period if self.settings.logging.metrics_enabled else None
        while not self.stop.wait(period):
            log.info("metrics", extra={"monitoring": self.stats.snapshot()})

    def _shutdown(self, queue: EventQueue | DiskQueue, pipeline: Pipeline, output, registry: Registry,
                  workers: WorkerPool | None) -> None:
        log.info("stopping: waiting up to %.0fs for queued events to be acknowledged", self.settings.shutdown_timeout)
        if workers is not None:
            workers.close_intake()
        queue.close()
        deadline = time.monotonic() + INPUT_JOIN_TIMEOUT
        for thread in self._input_threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not pipeline.wait_acked(self.settings.shutdown_timeout):
            log.info("stopping with %d event(s) unacknowledged; they will be sent again at the next start",
                     queue.active_events)
        output.stop(5.0)
        queue.finish()
        registry.close()  # RegistryError if the last positions cannot be saved: the caller exits 1
        log.info("forwarder stopped")

    def _supervise(self, spec, client: PipelineClient) -> None:
        """Runs one input; restarts it with backoff if it fails, parks it on a permanent error."""
        input_id = spec.client.input_id
        stats: InputStats = client.stats
        input_log = logging.getLogger(f"forwarder.input.{spec.client.input_type}")
        backoff = RESTART_BACKOFF_INIT
        while not self.stop.is_set():
            context = InputContext(input_id, client, self.stop, input_log, stats, self.settings.paths.data,
                                   self.once)
            started = time.monotonic()
            try:
                stats.state = "running"
                spec.input_type.create(spec.config, context).run()
                if self.stop.is_set() or self.once:
                    break
                input_log.warning("input %s returned unexpectedly; restarting in %.0fs", input_id, backoff)
            except PermanentInputError as exc:
                stats.state = "parked"
                stats.error(str(exc))
                input_log.error("input %s parked: %s; retrying in %.0f min", input_id, exc, exc.retry_after / 60)
                self.stop.wait(exc.retry_after)
                continue
            except Exception as exc:
                stats.state = "failed"
                stats.error(f"{type(exc).__name__}: {exc}")
                input_log.error("input %s failed: %s: %s; restarting in %.0fs", input_id, type(exc).__name__, exc,
                                backoff)
                input_log.debug("input %s failure details", input_id, exc_info=True)
            if time.monotonic() - started > RESTART_BACKOFF_MAX:
                backoff = RESTART_BACKOFF_INIT
            self.stop.wait(backoff)
            backoff = min(backoff * 2, RESTART_BACKOFF_MAX)
        stats.state = "stopped"


class CycleCollector:
    """Python's cycle collector on a timer instead of on allocation counts.

    Events are acyclic and freed by reference counting. Run on allocation
    counts, the collector keeps walking the young objects every record
    creates (a decoded Graph page or O365 blob is tens of thousands of them):
    measured, 20 % of the forwarder's CPU per Entra ID sign-in (109 → 87 µs).
    The few cycles that do occur (exceptions, HTTP connection pools) are
    collected every `interval` seconds instead; objects alive at start are
    frozen out of every scan.
    """

    def __init__(self, interval: float = 30.0) -> None:
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._run, name="cycle-collector", daemon=True)

    def start(self) -> None:
        gc.freeze()
        gc.disable()
        self._thread.start()

    def stop(self) -> None:
        """Hands collection back to Python (the forwarder may run inside a longer-lived process)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        gc.enable()
        gc.unfreeze()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            gc.collect()


def open_worker_pool(settings: Settings, encoder: EventEncoder) -> WorkerPool | None:
    """The worker processes `forwarder.workers` asks for; None when everything runs in this process."""
    count = worker_count(settings.workers)
    if count <= 1 or not settings.inputs:
        return None

    def make_clients(agent: AgentInfo) -> list[PipelineClient]:
        # In a worker: the same inputs' pipeline (module mapping, processors), counting into its own stats.
        return [PipelineClient(spec.client, None, None, settings.processors, agent,
                               InputStats(spec.client.input_id, spec.client.input_type), dict)
                for spec in settings.inputs]

    return WorkerPool(count, make_clients, encoder.encode_or_replace)


def open_queue(settings: Settings, encoder: EventEncoder) -> EventQueue | DiskQueue:
    disk = settings.disk_queue
    if disk is None:
        return EventQueue(settings.queue_events, settings.queue_bytes, settings.flush_min_events,
                          settings.flush_timeout)
    try:
        return DiskQueue(disk, encoder.encode)
    except OSError as exc:
        raise StartupError(disk_problem(exc, disk.path, "queue.disk.path")) from None


def tighten_modes(settings: Settings) -> None:
    """Narrows what an earlier version left group-writable or open to others; logs what changed in one line."""
    changes = tighten_owned_modes(owned_directories(settings))
    if changes.tightened:
        log.info("made owner-only what an earlier version left open (directories 0750, files their configured "
                 "mode): %s", "; ".join(changes.tightened))
    if changes.failed:
        log.warning("cannot make these owner-only: %s", "; ".join(changes.failed))


def owned_directories(settings: Settings) -> list[OwnedDirectory]:
    """The forwarder's own directories and files under path.data and path.logs; input paths are never among them."""
    owned = [
        OwnedDirectory(settings.paths.data, re.compile(r"meta\.json|forwarder\.lock"), FILE_MODE),
        OwnedDirectory(settings.registry_path),
        OwnedDirectory(settings.registry_path / "forwarder", re.compile(r".+"), settings.registry_permissions),
    ]
    if settings.logging.to_files:
        owned.append(owned_log_directory(settings.logging))
    return owned + settings.output_type.owned_directories(settings.output_config)


def persistent_agent_id(data_path: Path) -> str:
    """`agent.id` stays the same across restarts, like Filebeat's meta.json uuid."""
    meta = Path(data_path) / "meta.json"
    try:
        return str(json.loads(meta.read_text())["uuid"])
    except (OSError, ValueError, KeyError, TypeError):
        agent_id = str(uuid.uuid4())
        try:
            write_atomically(meta, json.dumps({"uuid": agent_id}).encode(), FILE_MODE)
        except OSError as exc:
            log.warning("%s; agent.id will change at the next start", disk_problem(exc, meta, "path.data"))
        return agent_id
