"""The `forwarder export` command line: its argparse parser and the checked request it yields.

Kept free of network and config imports so that building the CLI parser
costs nothing for the other sub-commands. Every mistake here is one line
naming the option, with exit status 1 like a config mistake (argparse's own
usage errors, such as a missing --since, keep its status 2).
"""

from __future__ import annotations

import argparse
import datetime
import re
from dataclasses import dataclass
from pathlib import Path

from forwarder.schema.section import parse_duration

MODULES = ("entraid",)
FORMATS = ("ndjson", "csv")
# A relative moment: a duration with a unit, read backwards from now (`90m`, `24h`, `7d`, `1h30m`).
_RELATIVE = re.compile(r"^\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d)(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d))*$")


class ExportUsageError(Exception):
    """An option the user got wrong; the message names it."""


@dataclass(frozen=True)
class ExportRequest:
    module: str
    fileset: str
    since: float
    until: float
    output_format: str
    output_path: Path | None


def add_export_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Registers `forwarder export MODULE --fileset NAME --since WHEN [--until WHEN] [--format F] [-o FILE]`."""
    export = commands.add_parser(
        "export", parents=[common], help="write a time range of a module's records to a file, once",
        description="One-shot export for investigations and audits; never touches the registry.")
    export.add_argument("module", metavar="MODULE", help=f"module to read ({', '.join(MODULES)})")
    export.add_argument("--fileset", required=True, metavar="NAME", help="fileset to export, e.g. signinlogs")
    export.add_argument("--since", required=True, metavar="WHEN",
                        help="start (inclusive): RFC 3339 time such as 2026-11-01T00:00:00Z, or relative: 24h, 7d")
    export.add_argument("--until", metavar="WHEN", default="now", help="end (exclusive), same forms; default now")
    export.add_argument("--format", dest="output_format", default="ndjson", metavar="|".join(FORMATS),
                        help="ndjson: the events the forwarder ships; csv: the portal-style columns (default ndjson)")
    export.add_argument("-o", dest="output_path", metavar="FILE",
                        help="write to FILE (through FILE.partial, renamed when complete); default stdout")


def export_request(args: argparse.Namespace, filesets: tuple[str, ...], now: float) -> ExportRequest:
    """The parsed arguments checked against the module's filesets; raises ExportUsageError."""
    if args.module not in MODULES:
        raise ExportUsageError(f"unknown module {args.module!r}: export supports {', '.join(MODULES)}")
    if args.fileset not in filesets:
        raise ExportUsageError(f"--fileset: unknown fileset {args.fileset!r} of module {args.module} "
                               f"(one of {', '.join(filesets)})")
    if args.output_format not in FORMATS:
        raise ExportUsageError(f"--format: unknown format {args.output_format!r} (one of {', '.join(FORMATS)})")
    since = parse_moment(args.since, now, "--since")
    until = parse_moment(args.until, now, "--until")
    if since >= until:
        raise ExportUsageError(f"--since ({format_moment(since)}) must be before --until ({format_moment(until)})")
    output_path = Path(args.output_path) if args.output_path else None
    return ExportRequest(args.module, args.fileset, since, until, args.output_format, output_path)


def parse_moment(text: str, now: float, option: str) -> float:
    """Epoch seconds of an RFC 3339 time (no offset means UTC), `now`, or a duration before now."""
    value = text.strip()
    if value.lower() == "now":
        return now
    if _RELATIVE.match(value):
        return now - parse_duration(value)
    try:
        moment = datetime.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise ExportUsageError(f"{option}: {text!r} is neither an RFC 3339 time (2026-11-01T00:00:00Z) "
                               "nor a duration before now (90m, 24h, 7d)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def format_moment(epoch: float) -> str:
    """UTC, seconds precision: how times appear in progress and summary lines."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
