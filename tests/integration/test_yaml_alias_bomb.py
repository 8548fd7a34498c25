"""A "billion laughs" config (a few hundred bytes of nested YAML anchors) is refused in one line.

Without the bound, `forwarder test config` expanded it into hundreds of millions of nodes
(2.5 GB, then MemoryError). The child gets a 1 GiB address-space limit here, so the
unbounded behaviour fails quickly instead of exhausting a shared machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MEMORY_LIMIT = 1024**3


def laughs(levels: int = 9) -> str:
    """Each level is a list of nine aliases to the previous one: 9**levels strings once expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_test_config(home: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forwarder", "test", "config", "--path.home", str(home), *extra],
                          cwd=home, capture_output=True, text=True, timeout=120, preexec_fn=limit_memory, check=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


MAIN = textwrap.dedent("""
    output.file.path: ${path.data}/events
    forwarder.inputs:
      - type: syslog
        protocol.udp.host: "127.0.0.1:5514"
""")


def assert_refused_in_one_line(result: subprocess.CompletedProcess, path: Path, reason: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"config error: {path}: refused: "), lines
    assert reason in lines[0]



def test_an_alias_bomb_in_the_main_config_is_refused(tmp_path):
    config = write(tmp_path / "forwarder.yml", MAIN + "fields:\n  " + laughs().replace("\n", "\n  "))
    assert len(config.read_bytes()) < 1024
    assert_refused_in_one_line(run_test_config(tmp_path), config, "aliases expand to")


@pytest.mark.parametrize("kind", ["modules", "inputs"])
def test_an_alias_bomb_in_a_module_or_input_file_is_refused(tmp_path, kind):
    write(tmp_path / "forwarder.yml", MAIN + "forwarder.config.inputs.path: ${path.config}/inputs.d/*.yml\n")
    bomb = "- " + laughs().replace("\n", "\n  ").rstrip() + "\n"
    included = write(tmp_path / f"{kind}.d" / "bomb.yml", bomb)
    assert_refused_in_one_line(run_test_config(tmp_path), included, "aliases expand to")


def test_a_recursive_alias_is_refused(tmp_path):
    config = write(tmp_path / "forwarder.yml", MAIN + "fields: &loop\n  again: *loop\n")
    assert_refused_in_one_line(run_test_config(tmp_path), config, "recursive alias")


def test_shared_defaults_through_anchors_and_merge_keys_still_load(tmp_path):
    write(tmp_path / "forwarder.yml", textwrap.dedent("""
        output.file.path: ${path.data}/events
        forwarder.inputs:
          - &edge_syslog
            type: syslog
            tags: [edge]
            protocol.udp.host: "127.0.0.1:5514"
          - <<: *edge_syslog
            protocol.udp.host: "127.0.0.1:5515"
        """))
    result = run_test_config(tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "Config OK"), result.stderr
