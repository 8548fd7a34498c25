"""Counters every part of the forwarder reports into, read by /stats and the metrics log line.

Each counter has a single writer thread in the normal case (an input's own
thread, an output worker), so plain attributes are enough; a lock guards only
the table of known inputs and outputs.

Error texts often quote what a server or library said, and that can be a
credential (an identity endpoint echoing `client_secret`). So `last_error` is
redacted when it is set, and every string an input adds to `extra` is
redacted in the snapshot: nothing read by /stats or the metrics line can carry
a known secret.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from forwarder.redaction import KNOWN_SECRETS


class _LastError:
    """`last_error` as an attribute whose value is redacted on assignment, whoever assigns it."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}"

    def __get__(self, instance: Any, owner: type | None = None) -> str:
        return getattr(instance, self._slot, "")

    def __set__(self, instance: Any, message: str) -> None:
        setattr(instance, self._slot, KNOWN_SECRETS.redact(str(message)))


class InputStats:
    last_error = _LastError()

    def __init__(self, input_id: str, input_type: str) -> None:
        self.input_id = input_id
        self.input_type = input_type
        self.published = 0
        self.filtered = 0
        self.dropped = 0
        self.errors = 0
        self.last_error = ""
        self.last_error_time = 0.0
        self.state = "starting"
        self.extra: dict[str, Any] = {}
        self.acker: Any = None

    def error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        self.last_error_time = time.time()

    def snapshot(self) -> dict[str, Any]:
        data = {
            "type": self.input_type,
            "state": self.state,
            "published": self.published,
            "acked": self.acker.acked if self.acker else 0,
            "in_flight": self.acker.in_flight if self.acker else 0,
            "filtered": self.filtered,
            "dropped": self.dropped,
            "errors": self.errors,
            "last_error": self.last_error,
        }
        data.update(KNOWN_SECRETS.redact_value(self.extra))
        return data


class OutputStats:
    last_error = _LastError()

    def __init__(self, output_type: str) -> None:
        self.output_type = output_type
        self.batches = 0
        self.acked = 0
        self.retries = 0
        self.reconnects = 0
        self.errors = 0
        self.last_error = ""
        self.in_flight = 0
        self.rtt_ms = 0.0
        self.bytes_written = 0

    def record_rtt(self, seconds: float) -> None:
        """Exponentially smoothed, so /stats shows a stable figure."""
        millis = seconds * 1000.0
        self.rtt_ms = millis if self.rtt_ms == 0 else 0.8 * self.rtt_ms + 0.2 * millis

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": self.output_type,
            "batches": self.batches,
            "acked": self.acked,
            "retries": self.retries,
            "reconnects": self.reconnects,
            "errors": self.errors,
            "last_error": self.last_error,
            "in_flight": self.in_flight,
            "rtt_ms": round(self.rtt_ms, 2),
            "bytes_written": self.bytes_written,
        }


class StatsTable:
    def __init__(self) -> None:
        self.started = time.time()
        self._lock = threading.Lock()
        self.inputs: dict[str, InputStats] = {}
        self.output: OutputStats | None = None
        self.queue: Any = None
        self.registry: Any = None
        self.workers: Any = None

    def add_input(self, stats: InputStats) -> InputStats:
        with self._lock:
            self.inputs[stats.input_id] = stats
        return stats

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            inputs = {name: s.snapshot() for name, s in self.inputs.items()}
        data: dict[str, Any] = {"uptime_s": round(time.time() - self.started, 1), "inputs": inputs}
        if self.output is not None:
            data["output"] = self.output.snapshot()
        if self.queue is not None:
            data["queue"] = self.queue.snapshot()
        if self.workers is not None:
            data["workers"] = self.workers.snapshot()
        if self.registry is not None:
            data["registry"] = {
                "entries": len(self.registry),
                "writes": self.registry.writes,
                "write_errors": self.registry.write_errors,
            }
        return data
