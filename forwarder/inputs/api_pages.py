"""One API answer as the context of a `publish_raw` chunk (the duo and cisco-secure-endpoint inputs).

These inputs decode each page themselves, because the cursor needs every
record's time and id; the events are built later, by a module-level builder,
in this process or in a worker process (`forwarder.workers`), and each payload
names its record by its position in the page. What travels to a worker is the
answer's raw bytes, once per page: pickling them is a copy, where re-encoding
each record for the trip took a fifth of the input process's time in a Duo
backfill (orjson.dumps, measured with py-spy), and pickling the decoded records
costs 6.7 µs each. The worker decodes the bytes once for all the records of the
page, with the same decoder the input used, so positions match and values are
the same (Secure Endpoint's integers beyond 64 bits stay exact). In one process
nothing is decoded twice: the page keeps the records the input decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (kind, raw answer) -> the page's records, in the order the input saw them. Module-level, to be pickled.
PageDecoder = Callable[[str, bytes], list[Any]]


class RawPage:
    """The records of one answer, and the answer's bytes; pickled, only the bytes (and how to decode them)."""

    def __init__(self, kind: str, body: bytes, records: list[Any] | None, decode: PageDecoder) -> None:
        self.kind = kind
        self.body = body
        self.decode = decode
        self._records = records

    def records(self) -> list[Any]:
        """The page's records, decoded from the bytes on first use in a worker process."""
        if self._records is None:
            self._records = self.decode(self.kind, self.body)
        return self._records

    def __getstate__(self) -> tuple[str, bytes, PageDecoder]:
        return self.kind, self.body, self.decode

    def __setstate__(self, state: tuple[str, bytes, PageDecoder]) -> None:
        self.kind, self.body, self.decode = state
        self._records = None
