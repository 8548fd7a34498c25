"""A fake Azure Event Hubs namespace speaking AMQP 1.0 (python-qpid-proton's engine), for the real SDK.

`azure.eventhub.EventHubConsumerClient` connects to it without TLS through a
connection string with `UseDevelopmentEmulator=true` and does exactly what it
does against the service: SASL ANONYMOUS, a CBS `put-token` on `$cbs` (the SAS
token's signature is checked against the fake's key; a wrong key gets 401),
`$management` READs of the hub and of partitions, and one receiver link per
partition on `<hub>/ConsumerGroups/<cg>/Partitions/<id>` whose selector filter
(offset, sequence number or enqueued time; `>`, `>=`; `-1`, `@latest`) picks the
first event. Events carry the service's message annotations and flow as link
credit allows; events sent while a receiver is attached reach it at once.
Receivers with `com.microsoft:epoch` behave as exclusive readers: an equal or
higher epoch detaches the others with `amqp:link:stolen`.

Proton leaves out trailing null fields, which the SDK's decoder cannot read, so
every outgoing byte goes through `FramePadder` (see amqp_frame_padding.py).

Usage::

    with FakeEventHubs(hub="insights-logs-signinlogs", partitions=4) as hub:
        hub.send("0", b'{"records": []}')
        client = EventHubConsumerClient.from_connection_string(hub.connection_string, consumer_group="$Default")
        ...
        hub.drop_connections()          # every client connection reset, to test reconnects
        hub.counters.links_attached     # {"0": 2, ...}
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

from tests.fakes.amqp_frame_padding import FramePadder
from tests.fakes.eventhubs_amqp_session import ConnectionHandler, PartitionReceiver
from tests.fakes.eventhubs_partitions import PartitionLog, StoredEvent

DEFAULT_KEY_NAME = "RootManageSharedAccessKey"
DEFAULT_KEY = "ZmFrZS1ldmVudC1odWJzLWtleS1mb3ItdGVzdHMtb25seQ=="


@dataclass
class FakeEventHubsCounters:
    """What clients did; read them to assert on behaviour (values only grow)."""

    connections: int = 0
    put_tokens: int = 0
    rejected_put_tokens: int = 0
    management_reads: int = 0
    links_attached: Counter[str] = field(default_factory=Counter)  # partition id → receiver links attached
    links_stolen: int = 0
    events_delivered: Counter[str] = field(default_factory=Counter)  # partition id → transfers sent
    dropped_connections: int = 0


class _ClientSocket:
    """One accepted TCP connection: proton's transport plus the padded bytes still to write."""

    def __init__(self, sock: socket.socket, handler: ConnectionHandler) -> None:
        self.sock = sock
        self.handler = handler
        self.padder = FramePadder()
        self.outbound = bytearray()
        self.read_closed = False


class FakeEventHubs:
    """An Event Hubs namespace with one hub on 127.0.0.1:<free port>, served from a background thread."""

    def __init__(
        self,
        hub: str = "insights-logs-signinlogs",
        partitions: int = 4,
        *,
        key_name: str = DEFAULT_KEY_NAME,
        key: str = DEFAULT_KEY,
        consumer_groups: tuple[str, ...] = ("$Default",),
        host: str = "127.0.0.1",
    ) -> None:
        self.hub = hub
        self.consumer_groups = {group.lower() for group in consumer_groups}  # the service ignores their case
        self.key_name = key_name
        self.key = key
        self.created_ms = 1_700_000_000_000
        self.partitions = {str(n): PartitionLog(str(n)) for n in range(partitions)}
        self.counters = FakeEventHubsCounters()
        self.counters_lock = threading.Lock()
        self.receivers: dict[tuple[str, str], list[PartitionReceiver]] = {}  # (consumer group, partition) → links
        self._listener = socket.create_server((host, 0))
        self._listener.setblocking(False)
        self.host = host
        self.port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._clients: dict[socket.socket, _ClientSocket] = {}
        self._stopping = threading.Event()
        self._drop_requested = threading.Event()
        self._drop_done = threading.Condition()
        self._drops_completed = 0
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="fake-eventhubs", daemon=True)
        self._thread.start()

    # --- test API -------------------------------------------------------------------------------------

    @property
    def fully_qualified_namespace(self) -> str:
        """The namespace as the SDK sees it; the blob checkpoint store puts it in its blob names."""
        return f"{self.host}:{self.port}"

    @property
    def partition_ids(self) -> list[str]:
        return list(self.partitions)

    def connection_string_for(self, key: str | None = None, key_name: str | None = None) -> str:
        """A connection string for this hub; pass another `key` to get one the fake refuses (CBS 401)."""
        return (
            f"Endpoint=sb://{self.fully_qualified_namespace}/;SharedAccessKeyName={key_name or self.key_name};"
            f"SharedAccessKey={key or self.key};EntityPath={self.hub};UseDevelopmentEmulator=true"
        )

    @property
    def connection_string(self) -> str:
        return self.connection_string_for()

    def send(self, partition: str | int, body: bytes, partition_key: str | None = None) -> tuple[str, int]:
        """Appends an event to a partition; returns its (offset, sequence_number) as the SDK reports them."""
        stored = self.partitions[str(partition)].append(body, partition_key)
        self._wake()
        return str(stored.offset), stored.sequence_number

    def events(self, partition: str | int) -> list[StoredEvent]:
        """Everything stored in a partition, oldest first."""
        return self.partitions[str(partition)].snapshot()

    def active_receivers(self, partition: str | int, consumer_group: str = "$Default") -> int:
        """How many receiver links are attached to a partition for a consumer group right now."""
        return len(list(self.receivers.get((consumer_group.lower(), str(partition)), ())))

    def drop_connections(self, timeout: float = 5.0) -> None:
        """Resets every client connection (no AMQP close), as a network failure or a service restart would."""
        with self._drop_done:
            target = self._drops_completed + 1
            self._drop_requested.set()
            self._wake()
            if not self._drop_done.wait_for(lambda: self._drops_completed >= target, timeout):
                raise TimeoutError("the fake Event Hubs thread did not drop its connections")

    def close(self) -> None:
        """Stops serving; raises if the peer's thread died of a bug, so a hanging test gets the real cause."""
        self._stopping.set()
        self._wake()
        self._thread.join(timeout=5)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        if self.failure is not None:
            raise RuntimeError("the fake Event Hubs thread failed") from self.failure

    def __enter__(self) -> FakeEventHubs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the peer's thread ----------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # already woken, or closing
            self._wake_w.send(b"\0")

    def _serve(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping.is_set():
                timeout = min((c.handler.tick() for c in self._clients.values()), default=1.0)
                for key, mask in self._selector.select(timeout=max(0.0, min(timeout, 1.0))):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._on_socket(key.data, mask)
                if self._drop_requested.is_set():
                    self._drop_all()
                for client in list(self._clients.values()):
                    client.handler.pump_partitions()
                    self._flush(client)
        except BaseException as error:
            self.failure = error
            raise
        finally:
            for client in list(self._clients.values()):
                self._discard(client)
            self._selector.close()

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _ClientSocket(sock, ConnectionHandler(self))
        self._clients[sock] = client
        self._selector.register(sock, selectors.EVENT_READ, client)
        with self.counters_lock:
            self.counters.connections += 1

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _on_socket(self, client: _ClientSocket, mask: int) -> None:
        if mask & selectors.EVENT_READ and not client.read_closed:
            try:
                data = client.sock.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                client.read_closed = True
                client.handler.transport.close_tail()
            elif data:
                client.handler.push(data)
            client.handler.process_events()
        if mask & selectors.EVENT_WRITE:
            self._write(client)

    def _flush(self, client: _ClientSocket) -> None:
        """Moves what proton produced through the padder to the socket; ends the socket when proton is done."""
        client.handler.process_events()
        transport = client.handler.transport
        while True:
            pending = transport.pending()
            if pending <= 0:
                break
            client.outbound += client.padder.feed(transport.peek(pending))
            transport.pop(pending)
        self._write(client)
        if client.sock not in self._clients:
            return
        head_done = transport.pending() < 0 and not client.outbound
        if head_done or (client.read_closed and transport.closed):
            self._discard(client)

    def _write(self, client: _ClientSocket) -> None:
        if client.sock not in self._clients:
            return
        try:
            while client.outbound:
                sent = client.sock.send(client.outbound)
                del client.outbound[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self._discard(client)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbound else 0)
        self._selector.modify(client.sock, events, client)

    def _discard(self, client: _ClientSocket) -> None:
        if self._clients.pop(client.sock, None) is None:
            return
        client.handler.forget()
        self._selector.unregister(client.sock)
        client.sock.close()

    def _drop_all(self) -> None:
        self._drop_requested.clear()
        for client in list(self._clients.values()):
            # SO_LINGER 0 turns close() into a TCP RST: the client sees a reset, not an orderly AMQP close
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self._discard(client)
            with self.counters_lock:
                self.counters.dropped_connections += 1
        with self._drop_done:
            self._drops_completed += 1
            self._drop_done.notify_all()
