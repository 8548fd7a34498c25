"""Replays the recorded Entra ID, O365 and Azure fixtures through two source trees and compares the bytes shipped.

Issue 9 moves the ECS mappings out of the graph, o365audit and azure-eventhub inputs into module
processors, and its acceptance is that no event changes by a byte. This script proves it on the
paths a deployment ships: for each tree, the real `python -m forwarder -e -c forwarder.yml
--path.home HOME` (cwd and PYTHONPATH = the tree, so the tree's own `forwarder` package runs; the
script prints which file it imports) reads every record of tests/fixtures/{entraid,o365,azure}
from the fakes of tests/fakes, once through the module (modules.d) and once through the input
written alone in `forwarder.inputs`, with `normalize` true and false and `preserve_original_event`
true, into the file output. A run waits until the output holds the expected number of events, is
stopped with SIGTERM, and its lines are compared with the other tree's, sorted by
`@metadata._id`, as bytes.

Both trees get the same fixtures and fakes (this checkout's tests/), the same re-dated record
times (one base time for both), the same data/meta.json (so the same agent.id); the only value
blanked before comparing is agent.ephemeral_id, which is random per process.

Usage, from the repository root:

    python bench/replay_identical.py                      # 7301e6d (before issue 9) vs the working tree
    python bench/replay_identical.py --old 7301e6d --new 7301e6d   # the script against itself
    python bench/replay_identical.py --new /path/to/other/checkout --jobs 2 --keep

Exit status 0 only when every run delivered its events and every event is identical.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from replay_sources import SOURCES  # noqa: E402  (bench/ is sys.path[0]; ROOT is needed for tests.fakes)

BEFORE_ISSUE_9 = "7301e6d"
AGENT_UUID = "0f8e3a52-6c1d-4b7e-9a2f-5d4c3b2a1908"
EPHEMERAL_ID = re.compile(rb'"ephemeral_id":"[^"]*"')
BLANK_EPHEMERAL_ID = b'"ephemeral_id":"<random per process>"'
MAIN_SETTINGS = {
    "queue.mem": {"events": 4096, "flush.min_events": 512, "flush.timeout": "20ms"},
    "output.file": {"path": "${path.data}/events"},
    "logging.metrics.enabled": False,
}


@dataclass(frozen=True)
class Case:
    source: Any
    path: str  # "module" or "input"
    normalize: bool

    @property
    def label(self) -> str:
        return f"{self.source.name:8} {self.path:6} normalize={str(self.normalize).lower():5}"

    @property
    def directory(self) -> str:
        return f"{self.source.name}-{self.path}-normalize-{str(self.normalize).lower()}"


@dataclass
class Run:
    lines: list[bytes] = field(default_factory=list)
    problem: str | None = None


def git_tree(revision: str, target: Path) -> Path:
    """`git archive REV | tar -x -C target`: the revision's files, nothing of the working tree."""
    target.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", revision], stdout=subprocess.PIPE)
    extract = subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=False)
    archive.stdout.close()
    if archive.wait() != 0 or extract.returncode != 0:
        raise SystemExit(f"cannot extract revision {revision!r} with git archive (is it a commit of {ROOT}?)")
    return target


def tree_environment(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def imported_forwarder(tree: Path) -> str:
    """Where a child started as the forwarder is started (same interpreter, cwd and PYTHONPATH) imports it from."""
    result = subprocess.run([sys.executable, "-c", "import forwarder; print(forwarder.__file__)"], cwd=tree,
                            env=tree_environment(tree), capture_output=True, text=True, check=False)
    location = result.stdout.strip()
    if result.returncode != 0 or not Path(location).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"{tree}: the child imports forwarder from {location or result.stderr.strip()!r}, "
                         "not from this tree")
    return location


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)


def write_home(home: Path, case: Case, served: dict[str, str]) -> None:
    """forwarder.yml (JSON, which YAML reads), the module file if any, and the shared data/meta.json."""
    settings = dict(MAIN_SETTINGS)
    if case.path == "module":
        entry = case.source.module_entry(served, case.normalize)
        write_private(home / "modules.d" / f"{case.source.module}.yml", json.dumps([entry], indent=2))
    else:
        settings["forwarder.inputs"] = [case.source.standalone_input(served, case.normalize)]
    write_private(home / "forwarder.yml", json.dumps(settings, indent=2))
    write_private(home / "data" / "meta.json", json.dumps({"uuid": AGENT_UUID}))


def output_lines(home: Path) -> list[bytes]:
    """The complete lines of the file output (a line still being written is not counted yet)."""
    lines: list[bytes] = []
    for path in sorted((home / "data" / "events").glob("*.ndjson")):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        lines.extend(data[: data.rfind(b"\n") + 1].splitlines())
    return lines


def log_tail(home: Path) -> str:
    log = home / "stderr.log"
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def wait_for(condition, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def run_forwarder(tree: Path, home: Path, expected: int, timeout: float) -> Run:
    """Starts the forwarder of `tree` on `home`, waits for `expected` events, stops it with SIGTERM."""
    command = [sys.executable, "-m", "forwarder", "-e", "-c", str(home / "forwarder.yml"), "--path.home", str(home)]
    with open(home / "stderr.log", "ab") as log:
        process = subprocess.Popen(command, cwd=tree, env=tree_environment(tree), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + timeout
        arrived = wait_for(lambda: process.poll() is not None or len(output_lines(home)) >= expected, deadline)
        if process.poll() is not None:
            return Run(output_lines(home), f"the forwarder exited ({process.returncode}) early:\n{log_tail(home)}")
        started = wait_for(lambda: "forwarder started" in (home / "stderr.log").read_text(errors="replace"),
                           time.monotonic() + 30)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        run = Run(output_lines(home))
        if not arrived or not started:
            run.problem = f"{len(run.lines)} of {expected} events after {timeout:.0f}s:\n{log_tail(home)}"
        elif code != 0:
            run.problem = f"exit status {code} after SIGTERM:\n{log_tail(home)}"
        elif len(run.lines) != expected:
            run.problem = f"{len(run.lines)} events, {expected} expected"
        return run
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def replay(tree: Path, home: Path, case: Case, base_time: int, timeout: float) -> Run:
    with ExitStack() as stack:
        served = case.source.serve(stack, base_time)
        write_home(home, case, served)
        return run_forwarder(tree, home, case.source.expected, timeout)


def comparable(lines: list[bytes]) -> list[bytes]:
    """Lines with agent.ephemeral_id blanked, sorted by @metadata._id (inputs with several pollers interleave)."""
    blanked = [EPHEMERAL_ID.sub(BLANK_EPHEMERAL_ID, line) for line in lines]
    return sorted(blanked, key=lambda line: (str(orjson.loads(line).get("@metadata", {}).get("_id", "")), line))


def pretty(line: bytes) -> list[str]:
    """The event as indented JSON in its own key order (order is part of the bytes)."""
    return json.dumps(orjson.loads(line), indent=2, ensure_ascii=False).splitlines()


def first_difference(old: list[bytes], new: list[bytes], names: tuple[str, str]) -> str:
    for index, (left, right) in enumerate(zip(old, new, strict=False)):
        if left != right:
            diff = "\n".join(difflib.unified_diff(pretty(left), pretty(right), *names, lineterm=""))
            if not diff:  # same JSON values, different bytes (number or escape spelling)
                at = next((i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b),
                          min(len(left), len(right)))
                diff = (f"same JSON, bytes differ at offset {at}:\n"
                        f"  {left[max(at - 60, 0):at + 60]!r}\n  {right[max(at - 60, 0):at + 60]!r}")
            return f"event {index + 1} (sorted by @metadata._id):\n{diff}"
    return f"{len(old)} events in {names[0]}, {len(new)} in {names[1]}"


def compare(case: Case, runs: dict[str, Run], names: tuple[str, str]) -> bool:
    old, new = runs[names[0]], runs[names[1]]
    problems = [f"  {name}: {run.problem}" for name, run in zip(names, (old, new), strict=True) if run.problem]
    old_lines, new_lines = comparable(old.lines), comparable(new.lines)
    identical = not problems and old_lines == new_lines
    differing = sum(left != right for left, right in zip(old_lines, new_lines, strict=False))
    verdict = "identical" if identical else f"DIFFERENT ({differing} event(s) differ)"
    print(f"{case.label}  {len(old_lines):3} events  {verdict}")
    for problem in problems:
        print(problem)
    if old_lines != new_lines:
        print("  " + first_difference(old_lines, new_lines, names).replace("\n", "\n  "))
    return identical


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default=BEFORE_ISSUE_9,
                        help="git revision of the reference tree (default %(default)s)")
    parser.add_argument("--new", default=str(ROOT),
                        help="directory of the tree to check, or a git revision (default: the working tree)")
    parser.add_argument("--base-time", type=int, default=int(time.time()) // 60 * 60,
                        help="epoch seconds the fixtures' times are re-dated from (default: this minute)")
    parser.add_argument("--jobs", type=int, default=4, help="forwarder runs at a time (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a run may take to deliver its events")
    parser.add_argument("--keep", action="store_true", help="keep the extracted trees and forwarder homes")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="replay-identical-"))
    started = time.monotonic()
    try:
        old_tree = git_tree(args.old, work / "old-tree")
        new_tree = Path(args.new).resolve() if Path(args.new).is_dir() else git_tree(args.new, work / "new-tree")
        names = (f"old {args.old}", f"new {args.new if not Path(args.new).is_dir() else new_tree}")
        for name, tree in zip(names, (old_tree, new_tree), strict=True):
            print(f"{name}: forwarder imported from {imported_forwarder(tree)}")
        print(f"base time {args.base_time}, {args.jobs} runs at a time\n")
        cases = [Case(source, path, normalize) for source in SOURCES for path in ("module", "input")
                 for normalize in (True, False)]
        sides = ("old", "new")
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {(case, name): pool.submit(replay, tree, work / side / case.directory, case, args.base_time,
                                                 args.timeout)
                       for case in cases for name, tree, side in zip(names, (old_tree, new_tree), sides, strict=True)}
            results = {case: {name: futures[(case, name)].result() for name in names} for case in cases}
        verdicts: dict[str, list[bool]] = {}
        for case in cases:
            verdicts.setdefault(case.source.name, []).append(compare(case, results[case], names))
        print()
        for source in SOURCES:
            runs = verdicts[source.name]
            print(f"{source.name:8} {source.expected} records x {len(runs)} runs: "
                  f"{'identical' if all(runs) else f'{runs.count(False)} run(s) DIFFERENT'}")
        everything = all(all(runs) for runs in verdicts.values())
        print(f"\n{'IDENTICAL' if everything else 'DIFFERENT'} ({time.monotonic() - started:.0f}s)"
              + (f"; homes kept in {work}" if args.keep else ""))
        return 0 if everything else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
