"""The `syslog` input: UDP, TCP and TLS listeners that turn syslog messages into events.

The listeners hand over raw messages in chunks (a TCP read's frames, what a UDP socket holds) with the
builder that parses them (syslog_events.py), so parsing and building run wherever the pipeline builds
events: in this process, or in its worker processes (`forwarder.workers`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from forwarder.inputs.base import InputContext, InputType
from forwarder.inputs.syslog_config import SyslogConfig, parse_config
from forwarder.inputs.syslog_events import Datagram, SyslogChunk, build_datagram_event, build_stream_event
from forwarder.inputs.syslog_listeners import (
    POLL_SECONDS,
    Listener,
    ListenerContext,
    SyslogCounters,
    UdpListener,
    address_text,
)
from forwarder.inputs.syslog_tcp import TcpListener


class SyslogInput:
    def __init__(self, config: SyslogConfig, context: InputContext) -> None:
        self.config = config
        self.context = context
        # Set once every listener is bound; `addresses` then maps "udp"/"tcp" to the bound (host, port).
        self.listening = threading.Event()
        self.addresses: dict[str, tuple[str, int]] = {}
        self._counters = SyslogCounters(context.stats)

    def run(self) -> None:
        # Set when run() ends for any reason (stop, or a listener failed): every listener then stops.
        stop_listeners = threading.Event()
        listener_context = ListenerContext(self.context.input_id, self._publish, self._try_publish, stop_listeners,
                                           self._counters, self.context.log)
        listeners: dict[str, Listener] = {}
        try:
            if self.config.udp is not None:
                listeners["udp"] = UdpListener(listener_context, self.config.udp)
            if self.config.tcp is not None:
                listeners["tcp"] = TcpListener(listener_context, self.config.tcp)
            for protocol, listener in listeners.items():
                self.addresses[protocol] = listener.address
                listener.start()
            bound = ", ".join(f"{protocol} {address_text(address)}" for protocol, address in self.addresses.items())
            self.context.log.info("syslog input %s listening on %s", self.context.input_id, bound)
            self.listening.set()
            while not self.context.stop.wait(POLL_SECONDS):
                for listener in listeners.values():
                    if listener.failure is not None:
                        raise listener.failure
        finally:
            stop_listeners.set()
            deadline = time.monotonic() + 1.0
            for listener in listeners.values():
                listener.close(deadline)
            self.listening.clear()
            if self._counters.lost_at_shutdown:
                self.context.log.warning("syslog input %s: %d message(s) received while stopping were not forwarded "
                                         "(counted as dropped)", self.context.input_id,
                                         self._counters.lost_at_shutdown)

    def _publish(self, frames: Sequence[bytes], source: str, truncated: bool) -> bool:
        chunk = SyslogChunk(self.config.format, self.config.timezone, time.time(), source, truncated)
        return self.context.client.publish_raw(build_stream_event, chunk, frames)

    def _try_publish(self, datagrams: list[Datagram]) -> bool:
        chunk = SyslogChunk(self.config.format, self.config.timezone, time.time())
        return self.context.client.try_publish_raw(build_datagram_event, chunk, datagrams)


def create(config: SyslogConfig, context: InputContext) -> SyslogInput:
    return SyslogInput(config, context)


INPUT_TYPE = InputType("syslog", parse_config, create)
