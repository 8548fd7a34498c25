"""How many events a Logstash worker puts in a window."""

from __future__ import annotations

SLOW_START_WINDOW = 10


class WindowSize:
    """Events per Lumberjack window.

    Without slow start every batch goes out whole. With it, a connection
    starts at 10 events, grows ×1.5 after each acknowledged window and halves
    after a failure (never below 1, never above `bulk_max_size`), so a
    Logstash that chokes on large windows is probed gently.
    """

    def __init__(self, bulk_max_size: int, slow_start: bool) -> None:
        self.maximum = bulk_max_size
        self.slow_start = slow_start
        self.size = min(SLOW_START_WINDOW, bulk_max_size) if slow_start else bulk_max_size

    def grow(self) -> None:
        if self.slow_start:
            self.size = min(self.maximum, max(self.size + 1, int(self.size * 1.5)))

    def shrink(self) -> None:
        if self.slow_start:
            self.size = max(1, self.size // 2)
