"""One client connection of the fake Event Hubs peer: proton's engine and the service's behaviour on it.

`ConnectionHandler` owns a proton `Transport`/`Connection` pair in server mode and
answers the engine's events the way Event Hubs does: it opens what the client
opens, replies to CBS and management requests on the reply link the client
attached for that node, and streams partition events to receiver links as credit
allows. It runs only on the fake's thread; `FakeEventHubs` feeds it bytes and
sends what it produces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote_plus, urlparse

from proton import (
    UNDESCRIBED,
    Array,
    Collector,
    Condition,
    Connection,
    Data,
    Delivery,
    Event,
    Link,
    Message,
    Transport,
    symbol,
    timestamp,
)

from tests.fakes.eventhubs_partitions import (
    SELECTOR_FILTER,
    InvalidSelector,
    PartitionLog,
    StartPosition,
    StoredEvent,
)

if TYPE_CHECKING:
    from tests.fakes.eventhubs_amqp import FakeEventHubs

CBS_NODE = "$cbs"
MANAGEMENT_NODE = "$management"
EPOCH = symbol("com.microsoft:epoch")
_SAS_PREFIX = "SharedAccessSignature "
_BATCH = 64


@dataclass
class PartitionReceiver:
    """A client's receiver link on one partition and how far it has been sent."""

    link: Link
    consumer_group: str
    log: PartitionLog
    next_index: int
    epoch: int | None


class ConnectionHandler:
    def __init__(self, hub: FakeEventHubs) -> None:
        self.hub = hub
        self.transport = Transport(Transport.SERVER)
        # proton's built-in SASL (no Cyrus) can only serve ANONYMOUS, which is what the SDK uses for Event Hubs
        self.transport.sasl().allowed_mechs("ANONYMOUS")
        self.connection = Connection()
        self.collector = Collector()
        self.connection.collect(self.collector)
        self.transport.bind(self.connection)
        self.authorized = False
        self.receivers: dict[Link, PartitionReceiver] = {}
        self._tags = 0

    # --- driven by the fake's I/O loop --------------------------------------------------------------

    def push(self, data: bytes) -> None:
        if self.transport.capacity() < 0:
            return
        self.transport.push(data)

    def tick(self) -> float:
        """Runs proton's timers (idle-timeout heartbeats); returns seconds until they next need a call."""
        now = time.monotonic()
        deadline = self.transport.tick(now)
        return max(0.0, deadline - now) if deadline else 1.0

    def process_events(self) -> None:
        event = self.collector.peek()
        while event is not None:
            self._dispatch(event)
            self.collector.pop()
            event = self.collector.peek()

    def pump_partitions(self) -> None:
        """Sends stored events to every receiver link that has credit."""
        for receiver in list(self.receivers.values()):
            link = receiver.link
            while link.credit > 0 and link.state & Link.LOCAL_ACTIVE:
                events = receiver.log.read(receiver.next_index, min(link.credit, _BATCH))
                if not events:
                    break
                for stored in events:
                    self._send_event(link, stored)
                receiver.next_index += len(events)
                with self.hub.counters_lock:
                    self.hub.counters.events_delivered[receiver.log.partition_id] += len(events)

    def forget(self) -> None:
        """The socket is gone: release this connection's receivers so epochs and counts stay right."""
        for receiver in self.receivers.values():
            self._unregister(receiver)
        self.receivers.clear()

    # --- engine events ------------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        kind = event.type
        if kind == Event.CONNECTION_REMOTE_OPEN:
            self.connection.container = "fake-eventhubs"
            self.connection.open()
        elif kind == Event.SESSION_REMOTE_OPEN:
            event.session.open()
        elif kind == Event.LINK_REMOTE_OPEN:
            self._on_link_open(event.link)
        elif kind == Event.LINK_FLOW and event.link.is_sender:
            self.pump_partitions()
        elif kind == Event.DELIVERY:
            self._on_delivery(event.delivery)
        elif kind in (Event.LINK_REMOTE_CLOSE, Event.LINK_REMOTE_DETACH):
            self._end_link(event.link, closed=kind == Event.LINK_REMOTE_CLOSE)
        elif kind == Event.SESSION_REMOTE_CLOSE:
            event.session.close()
        elif kind == Event.CONNECTION_REMOTE_CLOSE:
            self.connection.close()

    def _on_link_open(self, link: Link) -> None:
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        if link.is_receiver:  # the client sends requests to $cbs or $management
            link.open()
            if link.remote_target.address in (CBS_NODE, MANAGEMENT_NODE):
                link.flow(100)
            else:
                self._refuse(link, "amqp:not-found", f"no node {link.remote_target.address!r} accepts messages here")
            return
        address = link.remote_source.address or ""
        if address in (CBS_NODE, MANAGEMENT_NODE):
            link.open()
            return
        self._attach_partition_receiver(link, address)

    def _attach_partition_receiver(self, link: Link, address: str) -> None:
        path = urlparse(address).path if "://" in address else address
        parts = path.strip("/").split("/")
        link.open()
        if len(parts) != 5 or parts[1].lower() != "consumergroups" or parts[3].lower() != "partitions":
            self._refuse(link, "amqp:not-found", f"the messaging entity '{address}' could not be found")
            return
        hub, consumer_group, partition = parts[0], parts[2].lower(), parts[4]  # groups are case-insensitive
        known = consumer_group in self.hub.consumer_groups and partition in self.hub.partitions
        if hub != self.hub.hub or not known:
            self._refuse(link, "amqp:not-found", f"the messaging entity '{address}' could not be found")
            return
        if not self.authorized:
            self._refuse(link, "amqp:unauthorized-access", "no valid put-token on $cbs for this connection")
            return
        try:
            position = StartPosition.parse(_selector_of(link))
        except InvalidSelector as error:
            self._refuse(link, "amqp:invalid-field", str(error))
            return
        properties = link.remote_properties or {}
        epoch = properties.get(EPOCH)
        log = self.hub.partitions[partition]
        receiver = PartitionReceiver(link, consumer_group, log, position.first_index(log.snapshot()), epoch)
        if not self._claim(receiver):
            return
        self.receivers[link] = receiver
        with self.hub.counters_lock:
            self.hub.counters.links_attached[partition] += 1

    def _claim(self, receiver: PartitionReceiver) -> bool:
        """Applies the service's epoch rules; returns False when the new receiver itself is refused."""
        key = (receiver.consumer_group, receiver.log.partition_id)
        active = self.hub.receivers.setdefault(key, [])
        epochs = [r.epoch for r in active if r.epoch is not None]
        if epochs and (receiver.epoch is None or receiver.epoch < max(epochs)):
            self._refuse(
                receiver.link,
                "amqp:link:stolen",
                f"a receiver with a higher epoch ({max(epochs)}) is already active on partition "
                f"{receiver.log.partition_id}",
            )
            return False
        if receiver.epoch is not None:
            for other in list(active):
                other.link.condition = Condition(
                    "amqp:link:stolen",
                    f"new receiver with epoch {receiver.epoch} was opened on partition {receiver.log.partition_id}",
                )
                other.link.close()
                self._unregister(other)
                with self.hub.counters_lock:
                    self.hub.counters.links_stolen += 1
        active.append(receiver)
        return True

    def _unregister(self, receiver: PartitionReceiver) -> None:
        active = self.hub.receivers.get((receiver.consumer_group, receiver.log.partition_id), [])
        if receiver in active:
            active.remove(receiver)

    def _end_link(self, link: Link, closed: bool) -> None:
        """Answers the client's detach in kind: close for close, detach for a detach it may resume."""
        receiver = self.receivers.pop(link, None)
        if receiver is not None:
            self._unregister(receiver)
        if not link.state & Link.LOCAL_ACTIVE:
            return
        if closed:
            link.close()
        else:
            link.detach()

    def _refuse(self, link: Link, condition: str, description: str) -> None:
        link.condition = Condition(condition, description)
        link.close()

    # --- requests on $cbs and $management -----------------------------------------------------------

    def _on_delivery(self, delivery: Delivery) -> None:
        link = delivery.link
        if link.is_sender:  # the client settled something we sent
            if delivery.remote_state or delivery.settled:
                delivery.settle()
            return
        if delivery.partial or not delivery.readable:
            return
        request = Message()
        request.decode(link.recv(delivery.pending))
        link.advance()
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        link.flow(1)
        node = link.remote_target.address
        if node == CBS_NODE:
            status, description = self._put_token(request)
            self._reply(link, request, status, description, None)
        else:
            status, description, body = self._management_read(request)
            self._reply(link, request, status, description, body)

    def _put_token(self, request: Message) -> tuple[int, str]:
        properties = request.properties or {}
        with self.hub.counters_lock:
            self.hub.counters.put_tokens += 1
        if properties.get("operation") != "put-token":
            return 400, f"unsupported $cbs operation {properties.get('operation')!r}"
        if self._token_valid(request.body):
            self.authorized = True
            return 200, "OK"
        with self.hub.counters_lock:
            self.hub.counters.rejected_put_tokens += 1
        return 401, "InvalidSignature: The token has an invalid signature."

    def _token_valid(self, token: object) -> bool:
        if isinstance(token, bytes):
            token = token.decode("utf-8", "replace")
        if not isinstance(token, str) or not token.startswith(_SAS_PREFIX):
            return False
        fields = {k: v[0] for k, v in parse_qs(token[len(_SAS_PREFIX) :]).items()}
        try:
            audience, signature, expiry = fields["sr"], fields["sig"], int(fields["se"])
        except (KeyError, ValueError):
            return False
        signed = f"{quote_plus(audience)}\n{expiry}".encode()
        expected = base64.b64encode(hmac.new(self.hub.key.encode(), signed, hashlib.sha256).digest()).decode()
        return (
            fields.get("skn") == self.hub.key_name and hmac.compare_digest(signature, expected) and expiry > time.time()
        )

    def _management_read(self, request: Message) -> tuple[int, str, dict | None]:
        properties = request.properties or {}
        with self.hub.counters_lock:
            self.hub.counters.management_reads += 1
        if properties.get("operation") != "READ":
            return 400, f"unsupported management operation {properties.get('operation')!r}", None
        if properties.get("name") != self.hub.hub:
            return 404, f"the messaging entity '{properties.get('name')}' could not be found", None
        kind = properties.get("type")
        if kind == "com.microsoft:eventhub":
            return (
                200,
                "OK",
                {
                    "name": self.hub.hub,
                    "created_at": timestamp(self.hub.created_ms),
                    "partition_ids": Array(UNDESCRIBED, Data.STRING, *self.hub.partitions),
                },
            )
        if kind == "com.microsoft:partition":
            log = self.hub.partitions.get(str(properties.get("partition")))
            if log is None:
                return 404, f"partition {properties.get('partition')!r} does not exist", None
            answer = log.properties(self.hub.hub)
            answer["last_enqueued_time_utc"] = timestamp(answer["last_enqueued_time_utc"])
            return 200, "OK", answer
        return 400, f"unsupported management type {kind!r}", None

    def _reply(self, request_link: Link, request: Message, status: int, description: str, body: object) -> None:
        reply_link = self._reply_link(request_link, request.reply_to)
        if reply_link is None:
            return
        reply = Message(
            body=body,
            correlation_id=request.id,
            # the SDK reads the description of management replies under the older key, of CBS under the newer one
            properties={"status-code": status, "status-description": description, "statusDescription": description},
        )
        self._transfer(reply_link, reply.encode())

    def _reply_link(self, request_link: Link, reply_to: str | None) -> Link | None:
        """The client's receiver link on the same node: the one named by reply-to, else any on the session."""
        node = request_link.remote_target.address
        candidates = []
        link = self.connection.link_head(Link.LOCAL_ACTIVE | Link.REMOTE_ACTIVE)
        while link is not None:
            if link.is_sender and link.remote_source.address == node and link.session == request_link.session:
                candidates.append(link)
            link = link.next(Link.LOCAL_ACTIVE | Link.REMOTE_ACTIVE)
        for link in candidates:
            if reply_to and link.remote_target.address == reply_to:
                return link
        return candidates[0] if candidates else None

    # --- transfers ----------------------------------------------------------------------------------

    def _send_event(self, link: Link, stored: StoredEvent) -> None:
        annotations = {
            symbol("x-opt-sequence-number"): stored.sequence_number,
            symbol("x-opt-offset"): str(stored.offset),
            symbol("x-opt-enqueued-time"): timestamp(stored.enqueued_ms),
        }
        if stored.partition_key is not None:
            annotations[symbol("x-opt-partition-key")] = stored.partition_key
        message = Message(body=stored.body, annotations=annotations, inferred=True)
        self._transfer(link, message.encode())

    def _transfer(self, link: Link, payload: bytes) -> None:
        self._tags += 1
        delivery = link.delivery(str(self._tags).encode())
        link.send(payload)
        link.advance()
        if link.snd_settle_mode == Link.SND_SETTLED:
            delivery.settle()


def _selector_of(link: Link) -> str | None:
    """The selector-filter string of the link's source, whether the client sent it described or bare."""
    data = link.remote_source.filter
    data.rewind()
    filters = data.get_object() if data.next() else None
    if not isinstance(filters, dict):
        return None
    value = filters.get(symbol(SELECTOR_FILTER))
    if value is None:
        return None
    selector = getattr(value, "value", value)
    return selector.decode() if isinstance(selector, bytes) else str(selector)
