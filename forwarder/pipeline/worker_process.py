"""The worker processes' side of `forwarder.workers`: build, prepare and encode the chunks inputs hand over.

A zygote is forked at start, before the forwarder runs a single thread, and
forks every worker: a fork of a process whose threads may hold locks can
deadlock, a fork of the single-threaded zygote cannot, and a worker killed
later is replaced by a fresh fork with the same configured pipeline (the
processors, the module mappings) without reading the configuration again.

A worker reads a chunk (builder, context, raw payloads), runs exactly what
the main process would run in-process — the builder, the module mapping, the
common fields and processors of `PipelineClient.prepare`, the output's JSON
encoding — and sends back one result per payload: the encoded document, a
list of them, or None when nothing is to be sent. With each result go the
changes of the input's counters and the log records written meanwhile, which
the main process adds to /stats and logs under its own handlers.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import pickle
import socket
import struct
import threading
from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate, pairwise
from typing import Any

from forwarder.pipeline.builders import Builder, count_build_failure
from forwarder.pipeline.client import PipelineClient
from forwarder.pipeline.event import Event
from forwarder.platform import current_platform
from forwarder.stats import InputStats

log = logging.getLogger("forwarder.workers")

# One result per payload: an encoded document, several, or None (dropped by a processor, nothing to send).
Result = bytes | list[bytes] | None


class EncodedChunk:
    """A chunk's documents as one byte string with their lengths, and how many each payload made.

    Pickled as three byte strings: unpickling a list of 500 documents cost the main process 1.6 µs a
    document, slicing them from one string a tenth of that.
    """

    __slots__ = ("counts", "lengths", "documents")

    def __init__(self, results: list[Result]) -> None:
        try:
            # The common case, every payload made one document, in C: a None or a list refuses to join.
            self.documents = b"".join(results)  # type: ignore[arg-type]
        except TypeError:
            pass
        else:
            self.counts = b""
            self.lengths = array("I", map(len, results)).tobytes()  # type: ignore[arg-type]
            return
        counts = array("I")
        lengths = array("I")
        documents: list[bytes] = []
        one_each = True
        for result in results:
            if type(result) is bytes:
                counts.append(1)
                lengths.append(len(result))
                documents.append(result)
            elif result is None:
                one_each = False
                counts.append(0)
            else:
                one_each = False
                counts.append(len(result))
                lengths.extend(len(document) for document in result)
                documents.extend(result)
        # Empty when every payload made exactly one document, the common case, which then needs no counts.
        self.counts = b"" if one_each else counts.tobytes()
        self.lengths = lengths.tobytes()
        self.documents = b"".join(documents)

    def __getstate__(self) -> tuple[bytes, bytes, bytes]:
        return self.counts, self.lengths, self.documents

    def __setstate__(self, state: tuple[bytes, bytes, bytes]) -> None:
        self.counts, self.lengths, self.documents = state

    @property
    def one_document_each(self) -> bool:
        return not self.counts

    def split(self) -> list[bytes]:
        """Every document of the chunk, in order."""
        lengths = array("I")
        lengths.frombytes(self.lengths)
        documents = self.documents
        return [documents[start:end] for start, end in pairwise(accumulate(lengths, initial=0))]

    def per_payload(self) -> list[list[bytes]]:
        """The documents of each payload, in order (an empty list: nothing to send)."""
        documents = self.split()
        if self.one_document_each:
            return [[document] for document in documents]
        counts = array("I")
        counts.frombytes(self.counts)
        result: list[list[bytes]] = []
        index = 0
        for count in counts:
            result.append(documents[index:index + count])
            index += count
        return result


# The output's JSON encoding of a prepared event (EventEncoder.encode_or_replace).
Encode = Callable[[Event], bytes]
# Makes the prepare-side clients of every input, in the order of settings.inputs, once the agent is known.
ClientFactory = Callable[[Any], list[PipelineClient]]

_LENGTH = struct.Struct("!Q")


class Channel:
    """Length-prefixed messages over a Unix socket, read straight into one buffer.

    multiprocessing's Connection copies a large message twice under the interpreter lock (into a
    BytesIO, then out of it); a chunk's results are hundreds of kilobytes, so that was a tenth of the
    main process's time.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock

    def send_bytes(self, data: bytes) -> None:
        self._socket.sendall(_LENGTH.pack(len(data)))
        self._socket.sendall(data)

    def recv_bytes(self) -> bytearray:
        """The next message; EOFError when the other side has closed."""
        (size,) = _LENGTH.unpack(self._read(_LENGTH.size))
        return self._read(size)

    def send(self, value: Any) -> None:
        self.send_bytes(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))

    def recv(self) -> Any:
        return pickle.loads(self.recv_bytes())

    def close(self) -> None:
        """Shut down first: a thread blocked reading this socket wakes with EOF, and so does the worker."""
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()

    def _read(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        filled = 0
        while filled < size:
            received = self._socket.recv_into(view[filled:])
            if not received:
                raise EOFError
            filled += received
        return buffer


def encode_chunk(client: PipelineClient, encode: Encode, build: Builder, context: Any,
                 payloads: Sequence[Any]) -> EncodedChunk:
    """What a worker does with one chunk; the main process does the same when a chunk cannot go to a worker."""
    stats = client.stats
    results: list[Result] = []
    for payload in payloads:
        try:
            results.append(_build_and_encode(client, encode, build, context, payload))
        except Exception as error:  # prepare and encode have their own error policies: this is a defect
            count_build_failure(stats, error)
            results.append(None)
    return EncodedChunk(results)


def _build_and_encode(client: PipelineClient, encode: Encode, build: Builder, context: Any, payload: Any) -> Result:
    built = build(context, payload, client.stats)
    if built is None:
        return None
    if isinstance(built, Event):
        return _encode(client, encode, built)
    return [document for document in (_encode(client, encode, event) for event in built) if document is not None]


def _encode(client: PipelineClient, encode: Encode, event: Event) -> bytes | None:
    prepared = client.prepare(event)
    return None if prepared is None else encode(prepared)


class Zygote:
    """The forked parent of every worker; `spawn` asks it for one more."""

    def __init__(self, make_clients: ClientFactory, encode: Encode) -> None:
        ours, theirs = socket.socketpair()
        pid = current_platform().fork()
        if pid == 0:
            ours.close()
            _run_zygote(theirs, make_clients, encode)
        theirs.close()
        self.pid = pid
        self._control = ours
        self._lock = threading.Lock()

    def spawn(self) -> tuple[int, Channel]:
        """A new worker's pid and the connection to it; OSError when the zygote is gone."""
        with self._lock:
            self._control.sendall(b"w")
            message, fds, _flags, _address = socket.recv_fds(self._control, 32, 1)
        if not message or not fds:
            raise OSError("the worker zygote has exited")
        return int(message), Channel(socket.socket(fileno=fds[0]))

    def close(self) -> None:
        """The zygote exits when its control socket closes (and, on Linux, when this process dies)."""
        self._control.close()


def _run_zygote(control: socket.socket, make_clients: ClientFactory, encode: Encode) -> None:
    platform = current_platform()
    try:
        # Workers are reaped by the kernel: the main process learns of a death from its closed connection.
        platform.become_zygote()
        _detach_stdio()
        while control.recv(1):
            ours, theirs = socket.socketpair()
            pid = platform.fork()
            if pid == 0:
                control.close()
                ours.close()
                platform.become_worker()
                _run_worker(Channel(theirs), make_clients, encode)
            theirs.close()
            socket.send_fds(control, [str(pid).encode()], [ours.fileno()])
            ours.close()
    finally:
        os._exit(0)


def _run_worker(connection: Channel, make_clients: ClientFactory, encode: Encode) -> None:
    """Serves chunks until the main process closes the connection (or dies)."""
    try:
        records = _capture_logs()
        clients = make_clients(connection.recv())
        while True:
            try:
                chunk_id, index, build, context, payloads = pickle.loads(connection.recv_bytes())
            except EOFError:
                return
            client = clients[index]
            before = _counters(client.stats)
            results = encode_chunk(client, encode, build, context, payloads)
            changes = _counter_changes(before, client.stats)
            connection.send_bytes(pickle.dumps((chunk_id, results, changes, records[:]), pickle.HIGHEST_PROTOCOL))
            records.clear()
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        os._exit(0)


def _detach_stdio() -> None:
    """A worker must not hold the forwarder's stdout open (console output, a test reading it to EOF)."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)


class _RecordList(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _capture_logs() -> list[tuple[str, int, str]]:
    """Log records go back to the main process with the next result, not to inherited file handles."""
    handler = _RecordList()
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    return handler.records


def log_worker_records(records: list[tuple[str, int, str]]) -> None:
    """Logs, under this process's handlers, what a worker logged while it built a chunk."""
    for name, level, message in records:
        logging.getLogger(name).log(level, "%s", message)


def _counters(stats: InputStats) -> tuple[int, dict[str, Any]]:
    return stats.filtered, copy.deepcopy(stats.extra)


def _counter_changes(before: tuple[int, dict[str, Any]], stats: InputStats) -> tuple[int, dict[str, Any]]:
    """How the input's counters moved during one chunk (see `add_counter_changes`)."""
    filtered, extra = before
    return stats.filtered - filtered, _changes(extra, stats.extra)


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Numbers as differences, mappings of counters (per category, say) key by key, anything else as its value."""
    changed: dict[str, Any] = {}
    for key, value in new.items():
        previous = old.get(key)
        if value == previous:
            continue
        if _is_number(value):
            changed[key] = value - (previous if _is_number(previous) else 0)
        elif isinstance(value, dict):
            changed[key] = _changes(previous if isinstance(previous, dict) else {}, value)
        else:
            changed[key] = value
    return changed


def add_counter_changes(counters: dict[str, Any], changes: dict[str, Any]) -> None:
    """Adds what `_changes` found in a worker to the main process's counters of the input."""
    for key, change in changes.items():
        if _is_number(change):
            current = counters.get(key)
            counters[key] = (current if _is_number(current) else 0) + change
        elif isinstance(change, dict):
            nested = counters.get(key)
            if not isinstance(nested, dict):
                nested = counters[key] = {}
            add_counter_changes(nested, change)
        else:
            counters[key] = change


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
