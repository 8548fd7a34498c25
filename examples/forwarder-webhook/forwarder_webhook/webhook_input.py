"""The `webhook` input: JSON posted over HTTP, answered 200 only once every event of it is acknowledged.

A sender's retry is the only copy a webhook has, so the answer must mean
"delivered": each request's events are published with a cursor naming the
request, and the handler waits until the pipeline commits that cursor, which
it does only after the output acknowledged those events and all before them.
While the queue is full the request is refused at once with 503 and
Retry-After rather than held open, and a request not acknowledged within
`ack_timeout` gets 503 too: the sender retries, and the events' `_id` (the
delivery header, or a hash of the body) lets the receiver drop the duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.pipeline.event import Event
from forwarder_webhook.webhook_config import WebhookConfig, default_id, parse_config

REQUESTS = "requests"


class Refused(Exception):
    """A request answered with an error status; the message is the response body's text."""

    def __init__(self, status: int, message: str, counter: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.counter = counter
        self.headers = headers or {}


class AcknowledgedRequests:
    """The newest request whose events are all committed, and a way to wait for one's turn."""

    def __init__(self) -> None:
        self._committed = 0
        self._changed = threading.Condition()

    def on_commit(self, cursor: dict[str, Any]) -> None:
        """The pipeline's commit listener: only hands off, never blocks."""
        sequence = cursor.get(REQUESTS)
        if isinstance(sequence, int):
            with self._changed:
                self._committed = max(self._committed, sequence)
                self._changed.notify_all()

    def wait(self, sequence: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._committed >= sequence, timeout)


class WebhookInput:
    def __init__(self, config: WebhookConfig, context: InputContext) -> None:
        self.config = config
        self.context = context
        self.acknowledged = AcknowledgedRequests()
        self._sequence = itertools.count(1)
        self._publish_lock = threading.Lock()
        self._counter_lock = threading.Lock()

    def run(self) -> None:
        config = self.config
        try:
            server = ThreadingHTTPServer((config.listen_address, config.listen_port), self._handler_class())
        except OSError as error:
            raise PermanentInputError(f"cannot listen on {config.listen_address}:{config.listen_port}: "
                                      f"{error.strerror or error}") from None
        server.daemon_threads = True
        remove_listener = self.context.client.on_commit(self.acknowledged.on_commit)
        serving = threading.Thread(target=server.serve_forever, name=f"{self.context.input_id}-http", daemon=True)
        serving.start()
        self.context.log.info("%s: listening on http://%s:%d%s", self.context.input_id, config.listen_address,
                              server.server_address[1], config.url)
        try:
            self.context.stop.wait()
        finally:
            server.shutdown()
            server.server_close()
            remove_listener()

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One POST: checks, publishes, waits for the acknowledgement; returns status, headers and body."""
        try:
            records = self._check(path, headers, body)
            sequence = self._publish(records, self._delivery_id(headers, body))
            if not self.acknowledged.wait(sequence, self.config.ack_timeout):
                raise Refused(503, f"not acknowledged within {self.config.ack_timeout:g} s: retry later",
                              "unacknowledged", {"Retry-After": str(self.config.retry_after)})
        except Refused as refused:
            self._count(refused.counter)
            return refused.status, refused.headers, json.dumps({"message": str(refused)}).encode()
        self._count("acknowledged")
        return 200, {}, b'{"message": "success"}'

    def _check(self, path: str, headers: Any, body: bytes) -> list[dict[str, Any]]:
        config = self.config
        if path.split("?", 1)[0] != config.url:
            raise Refused(404, "not found", "not_found")
        if config.secret_header and not hmac.compare_digest(
                (headers.get(config.secret_header) or "").encode(), (config.secret_value or "").encode()):
            raise Refused(401, "incorrect secret", "unauthorized")
        if config.hmac_header and not self._signature_matches(headers.get(config.hmac_header) or "", body):
            raise Refused(401, "invalid HMAC signature", "unauthorized")
        try:
            document = json.loads(body)
        except ValueError as error:
            raise Refused(400, f"the body is not JSON: {error}", "bad_requests") from None
        records = document if isinstance(document, list) else [document]
        if not records or not all(isinstance(record, dict) for record in records):
            raise Refused(400, "the body must be a JSON object or a non-empty array of objects", "bad_requests")
        if self.context.client.saturated():
            raise Refused(503, "the forwarder's queue is full: retry later", "backpressure",
                          {"Retry-After": str(config.retry_after)})
        return records

    def _signature_matches(self, signature: str, body: bytes) -> bool:
        config = self.config
        expected = hmac.new((config.hmac_key or "").encode(), body, config.hmac_type).hexdigest()
        if not signature.startswith(config.hmac_prefix):
            return False
        return hmac.compare_digest(signature[len(config.hmac_prefix):].lower().encode(), expected.encode())

    def _delivery_id(self, headers: Any, body: bytes) -> str:
        delivery = headers.get(self.config.id_header) if self.config.id_header else None
        return delivery or hashlib.sha256(body).hexdigest()[:32]

    def _publish(self, records: list[dict[str, Any]], delivery: str) -> int:
        """Publishes one request's events in one piece, the cursor naming the request on the last one."""
        client = self.context.client
        with self._publish_lock:
            sequence = next(self._sequence)
            for index, record in enumerate(records):
                event = Event({self.config.prefix: record}, meta={"_id": f"{delivery}-{index}"}, record=record)
                cursor = {REQUESTS: sequence} if index == len(records) - 1 else None
                if not client.publish(event, cursor):
                    raise Refused(503, "the forwarder is stopping: retry later", "stopping",
                                  {"Retry-After": str(self.config.retry_after)})
        return sequence

    def _count(self, name: str) -> None:
        with self._counter_lock:
            extra = self.context.stats.extra
            extra[name] = extra.get(name, 0) + 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        webhook = self

        class WebhookRequestHandler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    self._answer(411, {}, b'{"message": "Content-Length is required"}')
                    return
                if int(length) > webhook.config.max_body_size:
                    self._answer(413, {"Connection": "close"}, b'{"message": "the body is larger than max_body_size"}')
                    return
                body = self.rfile.read(int(length))
                self._answer(*webhook.handle(self.path, self.headers, body))

            def do_GET(self) -> None:
                self._answer(405, {"Allow": "POST"}, b'{"message": "only POST is accepted"}')

            do_PUT = do_DELETE = do_PATCH = do_GET

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Access lines stay out of the forwarder's log; /stats counts every outcome."""

        return WebhookRequestHandler


def create(config: WebhookConfig, context: InputContext) -> WebhookInput:
    return WebhookInput(config, context)


INPUT_TYPE = InputType("webhook", parse_config, create, default_id)
