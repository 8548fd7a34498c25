"""One request run ahead on a thread of its own, so a polling input's next page is on its way while the
current one is published.

An input that pages through an API spends most of a page's time mapping and
queueing its records; without read-ahead it then waits again for the next
answer. `ReadAhead(request)` starts the request at once; `result()` returns what
it returned, or raises on the input's thread what it raised (a refusal, the
forwarder stopping), so the input handles errors exactly as if it had made the
call itself. Only the request runs ahead: records are still checked,
deduplicated and published in order by the input, so its cursor moves as
before. The request must be stop-aware and must not share its connection with
anything else meanwhile. The thread is a daemon: a request still in flight
when the forwarder stops does not hold the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ReadAhead(Generic[T]):
    def __init__(self, request: Callable[[], T], name: str) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(request,), name=name, daemon=True)
        self._thread.start()

    def _run(self, request: Callable[[], T]) -> None:
        try:
            self._value = request()
        except BaseException as error:  # handed to the input's thread, which decides
            self._error = error

    def result(self) -> T:
        """What the request returned; raises what it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
