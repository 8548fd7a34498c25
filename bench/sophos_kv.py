"""Sophos Firewall records through the `kv` parse alone, and through the whole `sophos_xg` mapping.

The lines are the test corpus (tests/fixtures/sophos: both SFOS generations,
every log type, 150–1,600 bytes, the firewall records the longest), repeated;
`--firewall-only` uses only the two generations' long Firewall records, the
bulk of a real firewall's log. Figures, all on one thread:

  reference   `line.split(" ")`, the cheapest split of the same text (C only)
  kv parse    `KeyValueParser().parse(line)`, the kv processor's parser, also as a ratio of the reference
  mapping     the `sophos_xg` processor on an event holding the line (kv parse + ECS mapping)

in lines per CPU second of this process (the best of three rounds).

Usage (from the repository root):

    python bench/sophos_kv.py [--seconds 3] [--firewall-only]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from forwarder.modules.sophos_processor import build_sophos_xg
from forwarder.pipeline.event import Event
from forwarder.processors.kv import KeyValueParser
from forwarder.schema.section import Section

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sophos"


def corpus(firewall_only: bool) -> list[str]:
    lines = [line for name in ("sfos18.log", "sfos19.log") for line in (CORPUS / name).read_text().splitlines()]
    if firewall_only:
        lines = [line for line in lines if 'log_type="Firewall"' in line and "ether_type" in line]
    return lines


def rate(work: Callable[[list[str]], None], lines: list[str], seconds: float) -> float:
    """Lines per CPU second of `work`, the best of three rounds of about `seconds`/3 CPU seconds each.

    CPU time of this process rather than wall time: on a shared machine the
    other processes then slow the figure less (caches and frequency still do).
    """
    best = 0.0
    for _ in range(3):
        done = 0
        start = time.process_time()
        while time.process_time() - start < seconds / 3:
            work(lines)
            done += len(lines)
        best = max(best, done / (time.process_time() - start))
    return best


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--seconds", type=float, default=3.0, help="time per figure")
    arguments.add_argument("--firewall-only", action="store_true", help="only the long Firewall records")
    options = arguments.parse_args()
    lines = corpus(options.firewall_only) * 50
    parser = KeyValueParser()
    mapping = build_sophos_xg(Section({"timezone": "UTC"}, "", "bench", []))

    def split(batch: list[str]) -> None:
        for line in batch:
            line.split(" ")

    def parse(batch: list[str]) -> None:
        for line in batch:
            parser.parse(line)

    def mapped(batch: list[str]) -> None:
        for line in batch:
            mapping(Event({"message": line}, 0.0))

    average = sum(map(len, lines)) / len(lines)
    pairs = sum(len(parser.pairs(line)) for line in lines) / len(lines)
    print(f"{len(lines) // 50} distinct lines, {average:.0f} bytes and {pairs:.0f} pairs per line on average")
    reference = rate(split, lines, options.seconds)
    print(f"reference  str.split(' ')     {reference:>10,.0f} lines/s")
    kv_rate = rate(parse, lines, options.seconds)
    print(f"kv parse   KeyValueParser     {kv_rate:>10,.0f} lines/s   ratio to reference {kv_rate / reference:.3f}")
    mapping_rate = rate(mapped, lines, options.seconds)
    print(f"mapping    sophos_xg          {mapping_rate:>10,.0f} lines/s   ratio to reference "
          f"{mapping_rate / reference:.3f}")


if __name__ == "__main__":
    main()
