"""Start-up cost of the forwarder on its shipped config: this tree against an older revision, same run.

Times `python -m forwarder test config -c forwarder.yml` (which loads and
validates the whole config, so it imports every type the config names) for
each tree in turn, interleaved so that machine noise hits both alike, and
prints the medians, their ratio, and which cloud SDKs each tree imported
(from `-X importtime`).

    python bench/startup.py                 # old = 7301e6d (before entry-point plugins), new = this tree
    python bench/startup.py --old HEAD~5 --runs 40
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOUD_SDKS = ("azure", "msal", "boto3", "botocore", "uamqp", "duo_client")


def extract(revision: str, target: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def command(tree: Path, home: Path, *flags: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return ([sys.executable, *flags, "-m", "forwarder", "test", "config", "-c", str(home / "forwarder.yml"),
             "--path.home", str(home)], env)


def timed_run(tree: Path, home: Path) -> float:
    args, env = command(tree, home)
    started = time.perf_counter()
    subprocess.run(args, env=env, cwd=home, check=True, capture_output=True)
    return time.perf_counter() - started


def imported_sdks(tree: Path, home: Path) -> list[str]:
    args, env = command(tree, home, "-X", "importtime")
    stderr = subprocess.run(args, env=env, cwd=home, check=True, capture_output=True, text=True).stderr
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in stderr.splitlines() if "|" in line}
    return sorted(names & set(CLOUD_SDKS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default="7301e6d", help="git revision to compare against")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch_path = Path(scratch)
        old_tree = extract(args.old, scratch_path / "old")
        home = scratch_path / "home"
        home.mkdir()
        shutil.copy(ROOT / "forwarder.yml", home / "forwarder.yml")
        os.chmod(home / "forwarder.yml", 0o600)
        trees = {f"old ({args.old})": old_tree, "new (this tree)": ROOT}
        times: dict[str, list[float]] = {name: [] for name in trees}
        for tree in trees.values():
            timed_run(tree, home)  # warm the page cache and the .pyc files
        for _ in range(args.runs):
            for name, tree in trees.items():
                times[name].append(timed_run(tree, home))
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, tree in trees.items():
            sdks = ", ".join(imported_sdks(tree, home)) or "none"
            print(f"{name:<20} median {medians[name] * 1000:7.1f} ms over {args.runs} runs; "
                  f"cloud SDKs imported: {sdks}")
        old_median, new_median = medians.values()
        print(f"new / old = {new_median / old_median:.2f}")


if __name__ == "__main__":
    main()
