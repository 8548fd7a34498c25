"""A small threaded HTTPS server for fakes of remote APIs (identity platform, Graph, O365 Management API).

Tests give it a trustme CA (or let it make one), register handlers per method and
path pattern, script failures ahead of time ("the next 5 requests to this path
answer 429 with Retry-After: 1", "drop the connection"), and read back every
request it received. It speaks plain HTTP/1.1 with keep-alive, so clients reuse
connections as they would against the real service.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        """The body as an application/x-www-form-urlencoded form (first value of each field)."""
        return {key: values[0] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def json(self) -> Any:
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(payload).encode(), merged)

    @classmethod
    def dropped(cls) -> Reply:
        """Close the connection without answering, as a crashing peer or a dying proxy would."""
        return cls(drop=True)


Handler = Callable[[Request, re.Match[str]], Reply]


@dataclass
class _ScriptedFailure:
    method: str | None
    pattern: re.Pattern[str]
    remaining: int
    reply: Callable[[], Reply]


class FakeHttpsServer:
    """Use as a context manager or call start()/stop(); `url` is https://127.0.0.1:<port>."""

    def __init__(self, ca: trustme.CA | None = None, port: int = 0) -> None:
        self.ca = ca or trustme.CA()
        self._dir = Path(tempfile.mkdtemp(prefix="fake-https-"))
        self.ca_path = str(self._dir / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._context)
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._failures: list[_ScriptedFailure] = []
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.handler_errors: list[str] = []
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def route(self, method: str, path_pattern: str, handler: Handler) -> None:
        """`path_pattern` is a regular expression matched against the whole path (no query string)."""
        with self._lock:
            self._routes.append((method.upper(), re.compile(path_pattern), handler))

    def fail_next(
        self,
        path_pattern: str,
        count: int,
        status: int = 503,
        headers: dict[str, str] | None = None,
        body: Any = None,
        method: str | None = None,
    ) -> None:
        """The next `count` matching requests get this answer instead of reaching their handler."""
        payload = body if body is not None else {"error": {"code": "scriptedFailure", "message": f"HTTP {status}"}}
        self._script(path_pattern, count, method, lambda: Reply.json(payload, status, headers))

    def drop_next(self, path_pattern: str, count: int, method: str | None = None) -> None:
        self._script(path_pattern, count, method, Reply.dropped)

    def requests_to(self, path_pattern: str, method: str | None = None) -> list[Request]:
        pattern = re.compile(path_pattern)
        with self._lock:
            return [
                r for r in self.requests if pattern.fullmatch(r.path) and (method is None or r.method == method.upper())
            ]

    def start(self) -> FakeHttpsServer:
        server = _TlsHttpServer(("127.0.0.1", self._requested_port), _RequestHandler, self._context, self)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> FakeHttpsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _script(self, path_pattern: str, count: int, method: str | None, reply: Callable[[], Reply]) -> None:
        with self._lock:
            self._failures.append(
                _ScriptedFailure(method.upper() if method else None, re.compile(path_pattern), count, reply)
            )

    def dispatch(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            for failure in self._failures:
                if failure.remaining > 0 and failure.pattern.fullmatch(request.path) and (
                    failure.method is None or failure.method == request.method
                ):
                    failure.remaining -= 1
                    return failure.reply()
            routes = list(self._routes)
        for method, pattern, handler in routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                try:
                    return handler(request, match)
                except Exception as error:  # a broken fake must fail the test, not hang the client
                    self.handler_errors.append(f"{request.method} {request.path}: {error!r}")
                    return Reply.json({"error": {"code": "fakeHandlerError", "message": repr(error)}}, 500)
        return Reply.json({"error": {"code": "NotFound", "message": f"no route for {request.path}"}}, 404)


class _TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, context: ssl.SSLContext, fake: FakeHttpsServer) -> None:
        self.tls_context = context
        self.fake = fake
        super().__init__(address, handler)

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        """The TLS handshake runs on the connection's own thread, so a failing client cannot stall accept()."""
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-request are normal here (dropped-connection tests)."""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TlsHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `requests` instead of a stderr access log."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        reply = self.server.fake.dispatch(request)
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response_only(reply.status)
        if not any(name.lower() == "date" for name in reply.headers):
            self.send_header("Date", self.date_time_string())
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle
    do_PATCH = _handle
