"""A real RabbitMQ broker (Debian's `rabbitmq-server`) on loopback, for the event stream tests.

Not a fake: the tests start the real broker with everything of its own under a
temporary directory (database, logs, Erlang cookie, node name, AMQP, TLS,
distribution and epmd ports), so it neither needs nor touches a system
broker. A config file creates the virtual host and the user a Cisco event
stream gives, and an `amqps` listener with a test CA. The broker is ready when
its AMQP listener accepts a login; it is stopped (SIGTERM: `rabbitmqctl stop`)
at the end, and its epmd with it. The tests are skipped when the package is
not installed (`.ci/run` installs it).

    pytest fixture `rabbitmq` (session scope): a `RabbitMqBroker`
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest
import trustme

VIRTUAL_HOST = "amp"
USER = "amp-stream-user"
PASSWORD = "amp-stream-password-Zq81"
HEARTBEAT = 1  # seconds, proposed to every client
START_TIMEOUT = 120.0  # a cold Erlang VM on a loaded 2-core machine


def _broker_command(name: str) -> str | None:
    """The broker's own script (the /usr/sbin wrappers switch to the rabbitmq user and its home, cookie and all)."""
    direct = Path("/usr/lib/rabbitmq/bin") / name
    if direct.exists():
        return str(direct)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RabbitMqBroker:
    def __init__(self, command: str, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.tls_port = _free_port()
        self.ca = trustme.CA()
        self.ca_file = base / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server_cert = self.ca.issue_cert("localhost", "127.0.0.1")
        server_cert.private_key_and_cert_chain_pem.write_to_path(str(base / "server.pem"))
        (base / "rabbitmq.conf").write_text("\n".join((
            f"listeners.tcp.default = 127.0.0.1:{self.port}",
            f"listeners.ssl.default = 127.0.0.1:{self.tls_port}",
            f"ssl_options.cacertfile = {self.ca_file}",
            f"ssl_options.certfile = {base / 'server.pem'}",
            f"ssl_options.keyfile = {base / 'server.pem'}",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
            f"default_vhost = {VIRTUAL_HOST}",
            f"default_user = {USER}",
            f"default_pass = {PASSWORD}",
            "loopback_users = none",
            # Short heartbeats: a client that stops serving its connection is cut off within seconds.
            f"heartbeat = {HEARTBEAT}",
            "")))
        (base / "enabled_plugins").write_text("[].\n")
        self.env = {
            **os.environ,
            "HOME": str(base),  # the Erlang cookie lives here, for the broker and rabbitmqctl alike
            "RABBITMQ_NODENAME": f"forwarder-test-{os.getpid()}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(_free_port()),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(_free_port()),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }
        self.output_path = base / "server.log"
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen([command], env=self.env, stdout=output, stderr=output,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def parameters(self, user: str = USER, password: str = PASSWORD) -> pika.ConnectionParameters:
        return pika.ConnectionParameters("127.0.0.1", self.port, VIRTUAL_HOST, pika.PlainCredentials(user, password),
                                         connection_attempts=1, socket_timeout=10, blocked_connection_timeout=30)

    def wait_ready(self) -> None:
        """Until the AMQP listener accepts our user's login (the broker opens it last when booting)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited ({self.process.returncode}):\n"
                                   + self.output_path.read_text(errors="replace")[-3000:])
            try:
                pika.BlockingConnection(self.parameters()).close()
                return
            except pika.exceptions.AMQPConnectionError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(0.2)  # returns at once if the broker dies
        raise RuntimeError(f"rabbitmq-server not ready within {START_TIMEOUT}s:\n"
                           + self.output_path.read_text(errors="replace")[-3000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        if os.path.exists(epmd):
            subprocess.run([epmd, "-kill"], check=False, env=self.env, capture_output=True, timeout=30)

    # What the tests do with queues, over the test's own AMQP connection.

    def fresh_queue(self, name: str) -> str:
        """A durable queue `name`, empty (as Cisco's stream queue: declared by the stream, read passively)."""
        with self.channel() as channel:
            channel.queue_delete(name)
            channel.queue_declare(name, durable=True)
        return name

    def publish(self, queue: str, bodies: list[bytes]) -> None:
        """Puts the bodies on the queue, persistent; on the queue when this returns.

        The channel and connection are closed cleanly after the last one, and the broker handles a channel's
        frames in order, so every message is queued by then without waiting for a confirm per message.
        """
        with self.channel() as channel:
            for body in bodies:
                channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))

    def counts(self, queue: str) -> tuple[int, int]:
        """(ready, unacknowledged) messages of the queue, as the broker reports them."""
        result = subprocess.run(
            [_broker_command("rabbitmqctl") or "rabbitmqctl", "list_queues", "-q", "-p", VIRTUAL_HOST,
             "--no-table-headers", "name", "messages_ready", "messages_unacknowledged"],
            check=False, env=self.env, capture_output=True, text=True, timeout=60)
        for line in result.stdout.splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[0] == queue:
                return int(fields[1]), int(fields[2])
        raise AssertionError(f"queue {queue} not listed: {result.stdout!r} {result.stderr[-500:]!r}")

    def close_connections(self, reason: str) -> None:
        """Closes every client connection from the broker's side (CONNECTION_FORCED), as a broker restart does."""
        subprocess.run([_broker_command("rabbitmqctl") or "rabbitmqctl", "close_all_connections", "-q", "-p",
                        VIRTUAL_HOST, reason], check=True, env=self.env, capture_output=True, timeout=60)

    def channel(self) -> _Channel:
        return _Channel(self.parameters())


class _Channel:
    """A channel on a connection of its own, closed with it."""

    def __init__(self, parameters: pika.ConnectionParameters) -> None:
        self.connection = pika.BlockingConnection(parameters)

    def __enter__(self):
        return self.connection.channel()

    def __exit__(self, *exc_info: object) -> None:
        self.connection.close()


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMqBroker]:
    command = _broker_command("rabbitmq-server")
    if command is None:
        pytest.skip("rabbitmq-server is not installed (Debian package rabbitmq-server; .ci/run installs it)")
    with tempfile.TemporaryDirectory(prefix="rabbitmq-") as base:
        broker = RabbitMqBroker(command, Path(base))
        try:
            broker.wait_ready()
            yield broker
        finally:
            broker.stop()
