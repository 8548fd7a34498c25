"""The `syslog` input: UDP, TCP and TLS listeners that turn syslog messages into events."""

from __future__ import annotations

import threading
import time
from typing import Any

from forwarder.inputs.base import InputContext, InputType
from forwarder.inputs.syslog_config import SyslogConfig, parse_config
from forwarder.inputs.syslog_listeners import POLL_SECONDS, TcpListener, UdpListener, address_text
from forwarder.inputs.syslog_parser import SyslogParser
from forwarder.pipeline.event import Event


class SyslogInput:
    def __init__(self, config: SyslogConfig, context: InputContext) -> None:
        self.config = config
        self.context = context
        self.parser = SyslogParser(config.format, config.timezone)
        # Set once every listener is bound; `addresses` then maps "udp"/"tcp" to the bound (host, port).
        self.listening = threading.Event()
        self.addresses: dict[str, tuple[str, int]] = {}
        self._closing = threading.Event()
        self._lost_at_shutdown = 0
        self._lost_lock = threading.Lock()

    def run(self) -> None:
        listeners: list[UdpListener | TcpListener] = []
        try:
            if self.config.udp is not None:
                listeners.append(UdpListener(self, self.config.udp))
            if self.config.tcp is not None:
                listeners.append(TcpListener(self, self.config.tcp))
            for listener in listeners:
                listener.start()
            bound = ", ".join(f"{protocol} {address_text(address)}" for protocol, address in self.addresses.items())
            self.context.log.info("syslog input %s listening on %s", self.context.input_id, bound)
            self.listening.set()
            while not self.context.stop.wait(POLL_SECONDS):
                for listener in listeners:
                    if listener.failure is not None:
                        raise listener.failure
        finally:
            self._closing.set()
            deadline = time.monotonic() + 1.0
            for listener in listeners:
                listener.close(deadline)
            self.listening.clear()
            if self._lost_at_shutdown:
                self.context.log.warning("syslog input %s: %d message(s) received while stopping were not forwarded "
                                         "(counted as dropped)", self.context.input_id, self._lost_at_shutdown)

    def lost_at_shutdown(self, count: int) -> None:
        """Messages already read from a socket when the pipeline stopped taking events: no sender can resend them."""
        with self._lost_lock:
            self._lost_at_shutdown += count
            self.context.stats.dropped += count

    @property
    def stopping(self) -> bool:
        return self._closing.is_set() or self.context.stop.is_set()

    def event(self, payload: bytes, truncated: bool, peer: Any) -> Event:
        parsed = self.parser.parse(payload)
        log: dict[str, Any] = {"source": {"address": address_text(peer)}}
        fields: dict[str, Any] = {"message": parsed.message, "log": log}
        meta: dict[str, Any] = {}
        tags = []
        if parsed.syslog:
            log["syslog"] = parsed.syslog
        if parsed.error:
            fields["error"] = {"message": parsed.error}
            tags.append("_parse_failure")
        if truncated:
            meta["truncated"] = True
            tags.append("_truncated")
        if tags:
            fields["tags"] = tags
        return Event(fields, parsed.timestamp, meta)


def create(config: SyslogConfig, context: InputContext) -> SyslogInput:
    return SyslogInput(config, context)


INPUT_TYPE = InputType("syslog", parse_config, create)
