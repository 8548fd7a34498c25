"""Reading many UDP datagrams with one system call (Linux `recvmmsg`), for the `syslog` input.

Every socket call releases the interpreter lock, and getting it back waits for
whichever thread holds it, up to the switch interval (5 ms). A listener that
calls `recvmsg` once per datagram therefore reads one datagram per switch while
another thread of the forwarder computes (the worker pool's collectors, the
output), and at 50,000 datagrams a second the kernel's receive buffer overflows:
a plain Python reader beside one busy thread lost 55,000 of 537,000 datagrams
from syslog-ng's `loggen`, with the lock released once per `recvmmsg` none.

`recvmmsg` has no Python binding, so it is called through ctypes (which releases
the lock for the call). Where it is missing (not Linux, no such libc symbol) the
listener keeps its `recvmsg` loop; `open_batch_receiver` then returns None.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import socket
import sys
from collections.abc import Callable

from forwarder.inputs.syslog_events import Datagram
from forwarder.platform import current_platform

# sockaddr_storage: room for any peer address.
_ADDRESS_SIZE = 128
# Most bytes of receive buffers one receiver holds: fewer datagrams per call for a large max_message_size.
_MAX_BUFFER_BYTES = 8 << 20
# Bytes of a cmsghdr where size_t is 64 bits wide.
_CMSG_HEADER = 16
# A plain int: `int & socket.MSG_TRUNC` goes through the enum module's Python code, 0.7 µs a datagram.
# Looked up with a default: this module is imported on Windows too, where recvmmsg is never used.
_MSG_TRUNC = int(getattr(socket, "MSG_TRUNC", 0))


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MessageHeader(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MultiMessageHeader(ctypes.Structure):
    _fields_ = [("msg_hdr", _MessageHeader), ("msg_len", ctypes.c_uint)]


def address_from_bytes(raw: bytes) -> tuple[str, int] | None:
    """(host, port) of an IPv4 or IPv6 sockaddr as the kernel wrote it, the way `recvmsg` reports them."""
    family = int.from_bytes(raw[:2], sys.byteorder)
    port = int.from_bytes(raw[2:4], "big")
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6 and len(raw) >= 24:
        host = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        scope = int.from_bytes(raw[24:28], sys.byteorder) if len(raw) >= 28 else 0
        if scope:  # a link-local sender: `recvmsg` names its interface after a `%`
            host = f"{host}%{_interface_name(scope)}"
        return host, port
    return None


@functools.lru_cache(maxsize=64)
def _interface_name(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return str(index)


class BatchReceiver:
    """Up to `capacity` datagrams per `recvmmsg` call into buffers allocated once.

    `receive` appends (bytes, sender, truncated) to a list, exactly what a `recvmsg(max_message_size)`
    loop appends, and returns the kernel's drop counter when the last datagram carried it (SO_RXQ_OVFL).
    """

    def __init__(self, sock: socket.socket, call: Callable[..., int], max_message_size: int,
                 capacity: int, kernel_drops: Callable[[list[tuple[int, int, bytes]]], int | None],
                 source_text: Callable[[tuple[str, int]], str]) -> None:
        self._sock = sock
        self._call = call
        self._size = max_message_size
        self.capacity = max(1, min(capacity, _MAX_BUFFER_BYTES // max(1, max_message_size)))
        count = self.capacity
        self._control_size = socket.CMSG_SPACE(4)
        self._data = (ctypes.c_char * (count * max_message_size))()
        self._names = (ctypes.c_char * (count * _ADDRESS_SIZE))()
        self._control = (ctypes.c_char * (count * self._control_size))()
        self._vectors = (_IoVec * count)()
        self._headers = (_MultiMessageHeader * count)()
        data_address = ctypes.addressof(self._data)
        names_address = ctypes.addressof(self._names)
        control_address = ctypes.addressof(self._control)
        for index in range(count):
            self._vectors[index].iov_base = data_address + index * max_message_size
            self._vectors[index].iov_len = max_message_size
            header = self._headers[index].msg_hdr
            header.msg_name = names_address + index * _ADDRESS_SIZE
            header.msg_namelen = _ADDRESS_SIZE
            header.msg_iov = ctypes.addressof(self._vectors[index])
            header.msg_iovlen = 1
            header.msg_control = control_address + index * self._control_size
            header.msg_controllen = self._control_size
        # The kernel overwrites each header's address and control lengths: restored from this copy before a call.
        self._pristine = bytes(self._headers)
        self._stride = ctypes.sizeof(_MultiMessageHeader) // 4
        self._length_at = _MultiMessageHeader.msg_len.offset // 4
        self._flags_at = (_MultiMessageHeader.msg_hdr.offset + _MessageHeader.msg_flags.offset) // 4
        self._name_length_at = (_MultiMessageHeader.msg_hdr.offset + _MessageHeader.msg_namelen.offset) // 4
        self._kernel_drops = kernel_drops
        self._source_text = source_text
        self._dont_wait = int(socket.MSG_DONTWAIT)  # only ever built where recvmmsg exists (Linux)
        self._last_address = b""
        self._last_source = ""

    def receive(self, datagrams: list[Datagram], limit: int) -> int | None:
        """Adds what the socket holds now, at most `limit` datagrams; returns the kernel's drop counter or None."""
        limit = min(limit, self.capacity)
        if limit <= 0:
            return None
        ctypes.memmove(self._headers, self._pristine, limit * ctypes.sizeof(_MultiMessageHeader))
        received = self._call(self._sock.fileno(), self._headers, limit, self._dont_wait, None)
        if received < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return None
            raise OSError(code, f"recvmmsg: {errno.errorcode.get(code, code)}")
        words = memoryview(self._headers).cast("B").cast("I")
        data = memoryview(self._data).cast("B")
        names = memoryview(self._names).cast("B")
        stride, size = self._stride, self._size
        length_at, flags_at, name_length_at = self._length_at, self._flags_at, self._name_length_at
        append = datagrams.append
        for index in range(received):
            base = index * stride
            start = index * size
            name_start = index * _ADDRESS_SIZE
            address = names[name_start:name_start + words[base + name_length_at]]
            if address != self._last_address:
                self._last_address = bytes(address)
                peer = address_from_bytes(self._last_address)
                self._last_source = self._source_text(peer) if peer else ""
            append((bytes(data[start:start + words[base + length_at]]), self._last_source,
                    words[base + flags_at] & _MSG_TRUNC != 0))
        return self._drop_counter(received - 1) if received else None

    def _drop_counter(self, index: int) -> int | None:
        """The SO_RXQ_OVFL counter the kernel attached to datagram `index`, if it did.

        A 64-bit cmsghdr (open_batch_receiver checks the width) is its length (8 bytes), level and type
        (4 each), then the data.
        """
        length = self._headers[index].msg_hdr.msg_controllen
        if length < _CMSG_HEADER + 4:
            return None
        start = index * self._control_size
        raw = bytes(self._control[start:start + length])
        level = int.from_bytes(raw[8:12], sys.byteorder)
        kind = int.from_bytes(raw[12:16], sys.byteorder)
        return self._kernel_drops([(level, kind, raw[_CMSG_HEADER:_CMSG_HEADER + 4])])


def open_batch_receiver(sock: socket.socket, max_message_size: int, capacity: int,
                        kernel_drops: Callable[[list[tuple[int, int, bytes]]], int | None],
                        source_text: Callable[[tuple[str, int]], str]) -> BatchReceiver | None:
    """A BatchReceiver for `sock`, or None where `recvmmsg` cannot be called (the caller reads one at a time)."""
    call = current_platform().recvmmsg()
    if call is None or ctypes.sizeof(ctypes.c_size_t) != 8 or socket.CMSG_LEN(0) != _CMSG_HEADER:
        return None
    return BatchReceiver(sock, call, max_message_size, capacity, kernel_drops, source_text)
