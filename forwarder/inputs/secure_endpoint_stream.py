"""The `cisco-secure-endpoint-stream` input: a Cisco Secure Endpoint event stream read over AMQP 0-9-1.

The broker keeps a message until the consumer acknowledges it, so the
acknowledgement must mean "delivered": messages are consumed with manual
acknowledgement and a bounded prefetch, each message's event is published
with a cursor naming its delivery (connection number, delivery tag), and the
pipeline's commit listener reports which deliveries the output acknowledged.
Only then is the message acknowledged to the broker (`basic_ack` with
`multiple`, since commits come in delivery order). A crash, a lost connection
or a stop leaves the rest unacknowledged and the broker delivers them again:
those events may repeat, with the same `@metadata._id`, at most `prefetch`
of them per interruption.

pika's connection is not thread-safe: the acker thread's listener only
records the newest committed delivery and wakes the connection's own thread
(`add_callback_threadsafe`), which sends the acknowledgement. That thread only
serves the connection (deliveries, heartbeats, acknowledgements), so it never
waits for a full queue; a publishing thread hands what arrived, as one chunk
of message bodies, to `client.publish_raw` with `build_stream_event` (the
event is built there, or in a worker process with `forwarder.workers`), the
chunk's last delivery as its cursor, and waits for room when it must.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time
from typing import Any

import pika
import pika.exceptions

from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.secure_endpoint_stream_config import (
    SecureEndpointStreamConfig,
    default_id,
    parse_config,
    standalone_processors,
)
from forwarder.inputs.secure_endpoint_stream_events import build_stream_event

DELIVERY = "delivery"
# pika narrates every connection step at INFO and logs each failed attempt at ERROR with its internals;
# this input reports connections and failures itself, one line each.
logging.getLogger("pika").setLevel(logging.CRITICAL)
IDLE_WAIT = 0.5  # longest wait for broker traffic, or for deliveries to publish, before the stop flag is seen
STOP_DRAIN = 3.0  # at stop, how long acknowledgements of published events are still passed on (< input join timeout)


class StreamSession:
    """One connection and its channel: the deliveries received, published and acknowledged on it."""

    def __init__(self, number: int, connection: pika.BlockingConnection, channel: Any) -> None:
        self.number = number
        self.connection = connection
        self.channel = channel
        # (delivery tag, body, redelivered): appended on the connection's thread, taken by the publishing thread.
        self.received: collections.deque[tuple[int, bytes, bool]] = collections.deque()
        self.arrived = threading.Event()
        self.closing = threading.Event()
        self.publish_failure: BaseException | None = None
        self.published_tag = 0
        self.acked_tag = 0
        self.committed_tag = 0
        self.ack_scheduled = False
        self.cancelled_by_broker = False

    def receive(self, delivery_tag: int, body: bytes, redelivered: bool) -> None:
        """The consumer callback (connection's thread)."""
        self.received.append((delivery_tag, body, redelivered))
        self.arrived.set()

    def take_received(self) -> list[tuple[int, bytes, bool]]:
        """Everything received so far, in delivery order (at most the prefetch); [] after `closing`."""
        self.arrived.clear()
        if self.closing.is_set():
            return []
        received = self.received
        return [received.popleft() for _ in range(len(received))]

    @property
    def unacknowledged(self) -> int:
        """Published events whose messages the broker still holds for us."""
        return self.published_tag - self.acked_tag


class SecureEndpointStreamInput:
    def __init__(self, config: SecureEndpointStreamConfig, context: InputContext) -> None:
        self.config = config
        self.context = context
        self._sessions = itertools.count(1)
        self._session: StreamSession | None = None
        self._lock = threading.Lock()
        self._last_warning = ""
        self._consumed = False

    def run(self) -> None:
        remove_listener = self.context.client.on_commit(self.on_commit)
        backoff = self.config.backoff_init
        try:
            while not self.context.stop.is_set():
                try:
                    self._consume()
                except (pika.exceptions.AMQPError, OSError) as error:
                    if self._consumed:
                        backoff = self.config.backoff_init  # a connection that worked: retry soon
                    self._warn_once(f"connection to {self.config.broker} failed or was lost "
                                    f"({_describe(error)}){_hint(error)}; reconnecting in {backoff:g}s; "
                                    "unacknowledged messages come again")
                    self._count("reconnects")
                    self.context.stop.wait(backoff)
                    backoff = min(backoff * 2, self.config.backoff_max)
        finally:
            remove_listener()

    def on_commit(self, cursor: dict[str, Any]) -> None:
        """The pipeline's commit listener (acker thread): records the delivery and wakes the connection's thread."""
        delivery = cursor.get(DELIVERY)
        if not isinstance(delivery, list) or len(delivery) != 2:
            return
        with self._lock:
            session = self._session
            if session is None or delivery[0] != session.number:
                return  # a closed connection's delivery: the broker delivers that message again
            session.committed_tag = max(session.committed_tag, delivery[1])
            if session.ack_scheduled:
                return
            session.ack_scheduled = True
        # A connection closing meanwhile refuses the callback: its messages come again.
        with contextlib.suppress(pika.exceptions.AMQPError):
            session.connection.add_callback_threadsafe(lambda: self._acknowledge(session))

    def _consume(self) -> None:
        """Reads from one connection until stop or a failure; `_consumed` says whether it got that far."""
        config = self.config
        self._consumed = False
        connection = self._connect()
        try:
            channel = connection.channel()
            waiting = self._declare_queue(channel)
            channel.basic_qos(prefetch_count=config.prefetch)
            session = StreamSession(next(self._sessions), connection, channel)
            channel.add_on_cancel_callback(lambda _frame: setattr(session, "cancelled_by_broker", True))
            channel.basic_consume(config.queue, lambda _channel, method, _properties, body: session.receive(
                method.delivery_tag, body, method.redelivered))
            with self._lock:
                self._session = session
            self._consumed = True
            self._last_warning = ""
            self.context.stats.state = "running"
            self.context.log.info("%s: consuming queue %s on %s (%d message(s) waiting, prefetch %d)",
                                  self.context.input_id, config.queue, config.broker, waiting, config.prefetch)
            self._serve(session)
            self._drain(session)
        finally:
            with self._lock:
                self._session = None
            _close_quietly(connection)

    def _connect(self) -> pika.BlockingConnection:
        config = self.config
        context = config.ssl_context()
        parameters = pika.ConnectionParameters(
            host=config.host, port=config.port, virtual_host=config.virtual_host,
            credentials=pika.PlainCredentials(config.user, config.password, erase_on_connect=False),
            ssl_options=pika.SSLOptions(context, config.host) if context else None,
            connection_attempts=1, socket_timeout=config.timeout, stack_timeout=config.timeout,
            blocked_connection_timeout=max(config.timeout, 60.0),
            client_properties={"connection_name": self.context.input_id})
        try:
            return pika.BlockingConnection(parameters)
        except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError):
            raise PermanentInputError(
                f"{config.broker} refused user {config.user!r}: check amqp_user and amqp_password against the event "
                "stream's amqp_credentials (Cisco shows the password once: create a new stream if it is lost)"
            ) from None
        except pika.exceptions.ProbableAccessDeniedError:
            raise PermanentInputError(
                f"{config.broker} refused user {config.user!r} access to virtual host {config.virtual_host!r}: "
                "check the path of amqp_url and the user's permissions") from None

    def _declare_queue(self, channel: Any) -> int:
        """Checks the queue exists (passively, as Cisco asks); returns its message count."""
        try:
            return channel.queue_declare(self.config.queue, passive=True, durable=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == 404:
                raise PermanentInputError(
                    f"queue {self.config.queue!r} does not exist on {self.config.broker}: check queue against the "
                    "event stream's queue_name (GET /v1/event_streams lists the streams)") from None
            if error.reply_code == 403:
                raise PermanentInputError(
                    f"user {self.config.user!r} may not read queue {self.config.queue!r} on {self.config.broker}: "
                    "check queue and amqp_user against the event stream's amqp_credentials") from None
            raise

    def _serve(self, session: StreamSession) -> None:
        """Serves the connection while the publishing thread hands its deliveries over, until stop."""
        publisher = threading.Thread(target=self._publish_received, args=(session,), daemon=True,
                                     name=f"{self.context.input_id}-publish")
        publisher.start()
        try:
            while not self.context.stop.is_set() and publisher.is_alive():
                if session.cancelled_by_broker:
                    # The queue was deleted (or the stream removed): reconnecting finds out which and says so.
                    raise pika.exceptions.AMQPChannelError(
                        f"the broker cancelled the consumer of queue {self.config.queue}")
                session.connection.process_data_events(time_limit=IDLE_WAIT)
        finally:
            # Deliveries not handed over yet are left to the broker, which delivers them again; a chunk being
            # handed over (waiting for room in the queue) is finished first, so chunks never overlap.
            session.closing.set()
            session.arrived.set()
            publisher.join()
        if session.publish_failure is not None:
            raise session.publish_failure

    def _publish_received(self, session: StreamSession) -> None:
        """The publishing thread: hands what arrived to the pipeline, one chunk per wake-up, in delivery order."""
        client = self.context.client
        try:
            while not session.closing.is_set():
                deliveries = session.take_received()
                if not deliveries:
                    session.arrived.wait(IDLE_WAIT)
                    continue
                last_tag = deliveries[-1][0]
                bodies = [body for _tag, body, _redelivered in deliveries]
                if not client.publish_raw(build_stream_event, None, bodies, {DELIVERY: [session.number, last_tag]}):
                    return
                session.published_tag = last_tag
                self._count("messages", len(deliveries))
                redelivered = sum(1 for _tag, _body, again in deliveries if again)
                if redelivered:
                    self._count("redelivered", redelivered)
        except BaseException as error:  # handed to the connection's thread, which ends the session with it
            session.publish_failure = error

    def _drain(self, session: StreamSession) -> None:
        """At stop: passes on the acknowledgements the output still gives, for a short while."""
        deadline = time.monotonic() + STOP_DRAIN
        while session.unacknowledged and time.monotonic() < deadline:
            session.connection.process_data_events(time_limit=0.1)

    def _acknowledge(self, session: StreamSession) -> None:
        """On the connection's thread: acknowledges every delivery up to the newest committed one."""
        with self._lock:
            session.ack_scheduled = False
            tag = session.committed_tag
        if tag > session.acked_tag and session.channel.is_open:
            session.channel.basic_ack(delivery_tag=tag, multiple=True)
            self._count("acknowledged", tag - session.acked_tag)
            session.acked_tag = tag

    def _count(self, name: str, amount: int = 1) -> None:
        extra = self.context.stats.extra
        extra[name] = extra.get(name, 0) + amount

    def _warn_once(self, text: str) -> None:
        """One line per kind of failure, not one per reconnection attempt; /stats always has the last."""
        self.context.stats.error(text)
        kind = text.split(";", 1)[0]
        if kind != self._last_warning:
            self._last_warning = kind
            self.context.log.warning("%s: %s", self.context.input_id, text)


def _describe(error: BaseException) -> str:
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}" if text != type(error).__name__ else text


def _hint(error: BaseException) -> str:
    """What to change when the failure is a certificate the site must configure."""
    if "CERTIFICATE_VERIFY_FAILED" in str(error) or "certificate verify failed" in str(error):
        return (" (the broker's certificate is not trusted: set ssl.certificate_authorities to the CA that signed "
                "it, and check the host name in amqp_url)")
    return ""


def _close_quietly(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except (pika.exceptions.AMQPError, OSError):
        pass


def create(config: SecureEndpointStreamConfig, context: InputContext) -> SecureEndpointStreamInput:
    return SecureEndpointStreamInput(config, context)


INPUT_TYPE = InputType("cisco-secure-endpoint-stream", parse_config, create, default_id, standalone_processors)
