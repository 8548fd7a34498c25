"""Parser micro-benchmarks: lines (or events) per second of each text format issue 12 built, on one thread.

Each processor is built through its registered builder (the `forwarder.processors`
entry point, as a config file would build it) with realistic options, and run
over `--lines` prepared events; only the processor call is timed, not building
the events. Next to each figure, a reference measured in the same run on the
same text: `str.split` of the lines, or `json.loads` of each object for the
CrowdStrike JSON. The ratio (format / reference) is what to compare across
machines; the absolute rates move with the load.

  dissect          Filebeat-doc-like pattern over a firewall-style line, with `|integer` conversions
  decode_cef       Cisco ESA consolidated_event CEF records (the corpus line and others in its style)
  decode_csv       a 10-column CSV record with one quoted value holding the separator
  syslog_3164      RFC 3164 lines through the `syslog` processor (`format: auto`)
  syslog_5424      RFC 5424 lines with structured data through the same processor
  cisco_esa        every line of tests/fixtures/cisco_esa, log type from the file name as the filestream input sets it
  json_objects     the CrowdStrike fixtures pretty-printed, varied, through the filestream `json_objects` parser;
                   rate in objects/s (27 lines each on average)
  crowdstrike      the same, then the `crowdstrike_falcon` mapping on each decoded object

The garbage collector is off while a figure is measured, as the forwarder's runner
sets it and bench/umbrella_s3.py's stage timing does: otherwise the held events are
walked again and again by the collector. Time is CPU time of this process, the best
of 3 rounds.

Usage (from the repository root):

    python bench/parsers.py [--lines 20000] [--format NAME]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from forwarder.inputs.line_message import Message
from forwarder.inputs.line_parsers import build_chain, parse_parsers
from forwarder.pipeline.event import Event
from forwarder.schema.section import Section

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
NOW = 1_700_000_000.0
MAX_BYTES = 10 * 1024 * 1024


def build(name: str, options: dict[str, Any]) -> Callable[[Event], Event]:
    """The processor as a config's `processors: [{name: options}]` builds it; a config problem stops the bench."""
    problems: list[Any] = []
    builder = entry_points(group="forwarder.processors")[name].load()
    processor = builder(Section(options, f"processors.0.{name}", "bench", problems))
    if problems:
        raise SystemExit(f"{name}: {problems}")
    return processor


@dataclass
class Format:
    """One row of the table: what is timed (`work` on what `prepare` made) and its reference on the same text."""

    name: str
    texts: list[str]
    prepare: Callable[[list[str]], Any]
    work: Callable[[Any], None]
    reference_name: str
    reference: Callable[[list[str]], None]
    unit: str = "lines"


def repeated(texts: list[str], count: int) -> list[str]:
    return (texts * (count // len(texts) + 1))[:count]


def message_events(lines: list[str]) -> list[Event]:
    return [Event({"message": line}, NOW) for line in lines]


def run_processor(processor: Callable[[Event], Event]) -> Callable[[list[Event]], None]:
    def work(events: list[Event]) -> None:
        for event in events:
            processor(event)
    return work


def split_on(separator: str) -> Callable[[list[str]], None]:
    def reference(lines: list[str]) -> None:
        for line in lines:
            line.split(separator)
    return reference


def firewall_lines() -> list[str]:
    actions = [("allow", "tcp", 443), ("deny", "udp", 53), ("allow", "tcp", 22), ("drop", "icmp", 0)]
    lines = []
    for n in range(40):
        action, proto, port = actions[n % len(actions)]
        lines.append(f"2026-12-06T05:{n % 60:02d}:17.{n:03d}Z fw-edge-{n % 3} {action} {proto} "
                     f"src=10.{n % 7}.{n % 250}.{n + 10}:{40000 + n * 37} dst=203.0.113.{n % 200}:{port} "
                     f"rule=WAN-{n % 12} bytes={1500 + n * 131} session closed after {n % 9} retries")
    return lines


DISSECT_PATTERN = ("%{date} %{observer} %{action} %{proto} src=%{src_ip}:%{src_port|integer} "
                   "dst=%{dst_ip}:%{dst_port|integer} rule=%{rule} bytes=%{bytes|long} %{msg}")


def esa_cef_lines() -> list[str]:
    corpus = (FIXTURES / "cisco_esa" / "consolidated_event.@20220325T210000.s").read_text().splitlines()
    lines = [line[line.index("CEF:"):] for line in corpus]
    head = "CEF:0|Cisco|C100V Email Security Virtual Appliance|14.0.0-657|ESA_CONSOLIDATED_LOG_EVENT|" \
           "Consolidated Log Event|5|"
    verdicts = [("DELIVERED", "NEGATIVE", "pass"), ("QUARANTINED", "POSITIVE", "fail"), ("DROPPED", "SPAM", "none")]
    for n in range(20):
        act, verdict, dkim = verdicts[n % len(verdicts)]
        lines.append(head + f"startTime=Mar 25 2022 20:{n % 60:02d}:10 deviceExternalId=42127C7DDEE76852677B-"
                     f"F80CE8074CA3 ESAMID={1000 + n} ESAICID={100 + n} ESADCID={50 + n} ESAAMPVerdict=UNKNOWN "
                     f"ESAASVerdict={verdict} ESAAVVerdict=NEGATIVE ESADKIMVerdict={dkim} ESASPFVerdict=pass "
                     f"act={act} src=81.2.69.{n + 1} suser=sender{n}@example.com duser=rcpt{n}@example.org "
                     f"msg='Quarterly report {n} \\= final' ESAMsgSize={2048 + n * 97} ESAOF=true")
    return lines


def csv_lines() -> list[str]:
    return [f'2026-12-06 05:{n % 60:02d}:00,{n},host-{n % 9},10.0.{n % 250}.{n % 200},"Smith, John {n}",login,'
            f'success,{n * 13 % 1000},Mozilla/5.0,eu-west-{n % 3}' for n in range(40)]


def syslog_3164_lines() -> list[str]:
    return [f"<{(n % 24) * 8 + n % 8}>Dec  {n % 9 + 1} 05:{n % 60:02d}:17 host{n % 5} sshd[{1000 + n}]: "
            f"Accepted publickey for user{n} from 192.0.2.{n % 250} port {50000 + n} ssh2" for n in range(40)]


def syslog_5424_lines() -> list[str]:
    return [f"<{(n % 24) * 8 + n % 8}>1 2026-12-06T05:{n % 60:02d}:17.{n:03d}+01:00 host{n % 5}.example.com "
            f"app{n % 3} {2000 + n} ID{n % 47} [exampleSDID@32473 iut=\"{n % 4}\" eventSource=\"Application\" "
            f"eventID=\"{1000 + n}\"] An application event log entry number {n}" for n in range(40)]


def esa_lines() -> list[tuple[str, str]]:
    """(line, file path) of every corpus line, the path naming the subscription as an SCP push does."""
    pairs = []
    for path in sorted((FIXTURES / "cisco_esa").iterdir()):
        pairs.extend((line, f"/var/log/cisco/{path.name}") for line in path.read_text().splitlines() if line)
    return pairs


def crowdstrike_objects() -> list[str]:
    """Each fixture object several times with its offset and ids varied, pretty-printed as the connector writes."""
    objects = [json.loads(path.read_text()) for path in sorted((FIXTURES / "crowdstrike").glob("*.json"))]
    texts = []
    for round_ in range(4):
        for n, obj in enumerate(objects):
            varied = copy.deepcopy(obj)
            varied["metadata"]["offset"] = obj["metadata"]["offset"] + round_ * 1000 + n
            varied["metadata"]["eventCreationTime"] = obj["metadata"]["eventCreationTime"] + round_ * 60_000
            texts.append(json.dumps(varied, indent=4 if round_ % 2 == 0 else 2))
    return texts


def messages(objects: list[str]) -> list[Message]:
    """The objects as the file reader hands them on: one Message per line, with byte offsets."""
    out = []
    offset = 0
    for text in objects:
        for line in text.split("\n"):
            size = len(line.encode())
            out.append(Message(line, offset, offset + size + 1, size))
            offset += size + 1
    return out


def json_chain() -> Any:
    problems: list[Any] = []
    configs = parse_parsers(Section({"parsers": [{"json_objects": {"target": "crowdstrike"}}]}, "", "bench", problems))
    if problems:
        raise SystemExit(f"json_objects: {problems}")
    return build_chain(configs, MAX_BYTES)


def frame(lines: list[Message]) -> list[Message]:
    chain = json_chain()
    records = []
    for line in lines:
        records.extend(chain.feed(line, NOW))
    return records


def formats() -> list[Format]:
    esa = build("cisco_esa", {"timezone": "UTC"})
    falcon = build("crowdstrike_falcon", {})

    def esa_events(texts: list[str]) -> list[Event]:
        paths = dict(esa_lines())
        return [Event({"message": line, "log": {"file": {"path": paths[line]}}}, NOW) for line in texts]

    def map_framed(lines: list[Message]) -> None:
        for record in frame(lines):
            falcon(Event(dict(record.fields), NOW))

    def loads(objects: list[str]) -> None:
        for text in objects:
            json.loads(text)

    split = split_on(" ")
    return [
        Format("dissect", firewall_lines(), message_events,
               run_processor(build("dissect", {"tokenizer": DISSECT_PATTERN, "field": "message",
                                               "target_prefix": "fw"})), "str.split(' ')", split),
        Format("decode_cef", esa_cef_lines(), message_events, run_processor(build("decode_cef", {})),
               "str.split(' ')", split),
        Format("decode_csv", csv_lines(), message_events,
               run_processor(build("decode_csv_fields", {"fields": {"message": "csv"}})), "str.split(',')",
               split_on(",")),
        Format("syslog_3164", syslog_3164_lines(), message_events,
               run_processor(build("syslog", {"format": "auto", "timezone": "UTC"})), "str.split(' ')", split),
        Format("syslog_5424", syslog_5424_lines(), message_events,
               run_processor(build("syslog", {"format": "auto", "timezone": "UTC"})), "str.split(' ')", split),
        Format("cisco_esa", [line for line, _ in esa_lines()], esa_events, run_processor(esa), "str.split(' ')",
               split),
        Format("json_objects", crowdstrike_objects(), messages, frame, "json.loads", loads, "objects"),
        Format("crowdstrike", crowdstrike_objects(), messages, map_framed, "json.loads", loads, "objects"),
    ]


def best_seconds(runs: list[tuple[Callable[[], Any], Callable[[Any], None]]]) -> list[float]:
    """CPU seconds of the fastest of 3 rounds of each `work(prepare())`, the collector off, `prepare` not timed.

    The runs alternate within each round, so a burst of load from other processes
    hits the format and its reference alike rather than one of them.
    """
    best = [float("inf")] * len(runs)
    for _ in range(3):
        for index, (prepare, work) in enumerate(runs):
            prepared = prepare()
            gc.collect()
            gc.freeze()
            gc.disable()
            try:
                start = time.process_time()
                work(prepared)
                best[index] = min(best[index], time.process_time() - start)
            finally:
                gc.enable()
                gc.unfreeze()
            del prepared
    return [max(seconds, 1e-9) for seconds in best]


def check(fmt: Format) -> None:
    """Each distinct text once, untimed: a row whose processor reports an error would measure the error path."""
    prepared = fmt.prepare(fmt.texts)
    fmt.work(prepared)
    failed = [event.fields["error"] for event in prepared if isinstance(event, Event) and "error" in event.fields]
    if failed:
        raise SystemExit(f"{fmt.name}: {len(failed)} of {len(fmt.texts)} texts fail: {failed[0]}")


def measure(fmt: Format, count: int) -> None:
    check(fmt)
    texts = repeated(fmt.texts, count)
    reference_seconds, seconds = best_seconds([(lambda: texts, fmt.reference), (lambda: fmt.prepare(texts), fmt.work)])
    reference, rate = count / reference_seconds, count / seconds
    extra = ""
    if fmt.unit == "objects":
        lines_per_object = sum(text.count("\n") + 1 for text in texts) / count
        extra = f"  ({rate * lines_per_object:,.0f} lines/s, {lines_per_object:.0f} lines/object)"
    average = sum(map(len, texts)) / count
    print(f"{fmt.name:<13} {rate:>10,.0f} {fmt.unit}/s {1e6 / rate:>7.2f} µs  {average:>5.0f} B  "
          f"{fmt.reference_name:<15} {reference:>11,.0f}/s  ratio {rate / reference:.3f}{extra}")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--lines", type=int, default=20_000, help="lines (objects for the JSON rows) per round")
    arguments.add_argument("--format", help="only this row (dissect, decode_cef, decode_csv, syslog_3164, "
                           "syslog_5424, cisco_esa, json_objects, crowdstrike)")
    options = arguments.parse_args()
    rows = [fmt for fmt in formats() if options.format in (None, fmt.name)]
    if not rows:
        raise SystemExit(f"--format: no format named {options.format!r}")
    print(f"{options.lines:,} per round, best of 3, CPU time, one thread, gc off")
    print(f"{'format':<13} {'rate':>18} {'per item':>10} {'size':>7}  {'reference':<15} {'rate':>12}")
    for fmt in rows:
        measure(fmt, options.lines)


if __name__ == "__main__":
    main()
