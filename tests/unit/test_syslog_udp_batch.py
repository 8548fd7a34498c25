"""recvmmsg for the syslog UDP listener: the same datagrams, senders, truncation and drop counts as recvmsg."""

from __future__ import annotations

import os
import select
import socket
import sys
from pathlib import Path

import pytest

from forwarder.inputs.syslog_listeners import address_text, set_receive_buffer
from forwarder.inputs.syslog_udp_batch import address_from_bytes, open_batch_receiver
from forwarder.platform import current_platform

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="recvmmsg is Linux-only")


def receiver(family: int, host: str, max_message_size: int, capacity: int = 1024):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    current_platform().enable_kernel_drop_counter(sock)
    batch = open_batch_receiver(sock, max_message_size, capacity, current_platform().kernel_drops, address_text)
    assert batch is not None
    return sock, batch


def wait_readable(sock: socket.socket) -> None:
    assert _readable(sock, 10)


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_one_call_returns_what_recvmsg_would_in_order(family, host):
    sock, batch = receiver(family, host, max_message_size=64)
    payloads = [b"<13>one", b"", b"x" * 64, b"y" * 65 + b"cut", "<13>é ✓".encode()]
    with sock, socket.socket(family, socket.SOCK_DGRAM) as sender:
        sender.bind((host, 0))
        for payload in payloads:
            sender.sendto(payload, sock.getsockname()[:2])
        wait_readable(sock)
        datagrams: list = []
        while len(datagrams) < len(payloads):
            batch.receive(datagrams, 1024)
        source = address_text(sender.getsockname())
    assert datagrams == [(b"<13>one", source, False), (b"", source, False), (b"x" * 64, source, False),
                         (b"y" * 64, source, True), ("<13>é ✓".encode(), source, False)]


def test_a_call_takes_at_most_its_limit_and_the_capacity_and_leaves_the_rest():
    sock, batch = receiver(socket.AF_INET, "127.0.0.1", max_message_size=32, capacity=4)
    with sock, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for index in range(7):
            sender.sendto(b"%d" % index, sock.getsockname())
        wait_readable(sock)
        first: list = []
        batch.receive(first, 3)
        second: list = []
        batch.receive(second, 100)
        third: list = []
        batch.receive(third, 100)
        empty: list = []
        assert batch.receive(empty, 100) is None
    assert [d[0] for d in first] == [b"0", b"1", b"2"]
    assert [d[0] for d in second] == [b"3", b"4", b"5", b"6"][:batch.capacity]
    assert [d[0] for d in first + second + third] == [b"%d" % index for index in range(7)]
    assert empty == []


def test_senders_alternating_each_get_their_own_address():
    sock, batch = receiver(socket.AF_INET, "127.0.0.1", max_message_size=32)
    with sock, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        for sender in (first, second, first):
            sender.sendto(b"m", sock.getsockname())
        wait_readable(sock)
        datagrams: list = []
        while len(datagrams) < 3:
            batch.receive(datagrams, 1024)
        expected = [address_text(sender.getsockname()) for sender in (first, second, first)]
    assert [source for _, source, _ in datagrams] == expected


def test_the_kernel_drop_counter_comes_with_the_datagrams_read_after_a_drop():
    sock, batch = receiver(socket.AF_INET, "127.0.0.1", max_message_size=64)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    received: list = []
    with sock, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(2000):
            sender.sendto(b"<13>burst", sock.getsockname())
        while _readable(sock, 0.2):
            batch.receive(received, 1024)
        sender.sendto(b"<13>marker", sock.getsockname())
        assert _readable(sock, 10)
        drops = batch.receive(received, 1024)
    assert received[-1][0] == b"<13>marker"
    assert drops is not None and drops > 0
    assert len(received) + drops == 2001


def _readable(sock: socket.socket, seconds: float) -> bool:
    return bool(select.select([sock], [], [], seconds)[0])


@pytest.mark.skipif(os.geteuid() != 0, reason="SO_RCVBUFFORCE needs CAP_NET_ADMIN")
def test_read_buffer_beyond_rmem_max_is_granted_to_root():
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        set_receive_buffer(sock, rmem_max * 2)
        # Linux doubles what it is asked for (bookkeeping overhead) and reports the doubled size.
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == rmem_max * 4


def test_a_scoped_ipv6_sender_keeps_its_interface_as_recvmsg_names_it():
    """A link-local sender (fe80::…%eth0): the scope id in the sockaddr becomes `%interface`, as getnameinfo writes."""
    index = socket.if_nametoindex("lo")
    raw = (socket.AF_INET6.to_bytes(2, sys.byteorder) + (5514).to_bytes(2, "big") + bytes(4)
           + socket.inet_pton(socket.AF_INET6, "fe80::1") + index.to_bytes(4, sys.byteorder))
    expected, _ = socket.getnameinfo(("fe80::1", 5514, 0, index), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
    assert address_from_bytes(raw) == (expected, 5514) == ("fe80::1%lo", 5514)
    unscoped = raw[:24] + bytes(4)
    assert address_from_bytes(unscoped) == ("fe80::1", 5514)
