"""The zlib streams inside compressed windows: ISA-L's deflate where it is installed, the standard library's otherwise.

At Filebeat's default `compression_level: 3`, the standard library's zlib
took a quarter of the forwarder's main process on the issue-16 filestream
bench (5.5 µs of 20 an event). ISA-L's level 1 deflates the same windows
about eight times faster and smaller (bench/README.md, "Compression"). Every
reader inflates either stream alike — Logstash's Inflater, go-lumber's
compress/zlib — since both are RFC 1950 zlib with an Adler-32 trailer.

ISA-L has four levels, not ten: `compression_level` 1–3 map to its level 1,
4–6 to 2 and 7–9 to 3, keeping "higher: smaller windows, more CPU".
"""

from __future__ import annotations

try:
    from isal import isal_zlib as _library
except ImportError:  # no wheel for this platform: the standard library's zlib
    import zlib as _library

    LIBRARY = "zlib"

    def library_level(level: int) -> int:
        return level
else:
    LIBRARY = "isa-l"

    def library_level(level: int) -> int:
        """The ISA-L level for a zlib `compression_level` of 1–9."""
        return 1 if level <= 3 else 2 if level <= 6 else 3


def compress(data: bytes, level: int) -> bytes:
    """One complete zlib stream of `data` at `compression_level` `level` (1–9)."""
    return _library.compress(data, library_level(level))
