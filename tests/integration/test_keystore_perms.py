"""A keystore its group or others can read or write is refused, as Filebeat refuses it.

Its mode is the keystore's only protection (the values are not encrypted), so
`forwarder test config`, a start and the keystore commands all stop with one line
naming the file and the fix, unless `--strict.perms=false`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forwarder.config.keystore import Keystore

CONFIG = textwrap.dedent("""
    name: ${FWD_HOST_LABEL}
    output.file.path: ${path.data}/events
    forwarder.inputs:
      - type: syslog
        protocol.udp.host: "127.0.0.1:5514"
""")


def forwarder(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forwarder", *args, "--path.home", str(home)], cwd=home,
                          capture_output=True, text=True, timeout=60, check=False)


def setup_home(home: Path, keystore_mode: int) -> Path:
    config = home / "forwarder.yml"
    home.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG)
    os.chmod(config, 0o600)
    keystore = Keystore(home / "data" / "forwarder.keystore")
    keystore.add("FWD_HOST_LABEL", "edge-01")
    os.chmod(keystore.path, keystore_mode)
    return keystore.path


def assert_refused_in_one_line(result: subprocess.CompletedProcess, path: Path) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"keystore {path} must be readable and writable by its owner only" in errors[0]
    assert f"chmod 600 {path}" in errors[0] and "--strict.perms=false" in errors[0]
    assert "edge-01" not in result.stdout + result.stderr


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o604, 0o640], ids=oct)
def test_test_config_refuses_a_keystore_open_to_group_or_others(tmp_path, mode):
    path = setup_home(tmp_path, mode)
    assert_refused_in_one_line(forwarder(tmp_path, "test", "config"), path)


@pytest.mark.parametrize("command", [("run", "-e"), ("keystore", "list")])
def test_a_start_and_the_keystore_commands_refuse_a_world_writable_keystore(tmp_path, command):
    path = setup_home(tmp_path, 0o666)
    assert_refused_in_one_line(forwarder(tmp_path, *command), path)


def test_strict_perms_false_accepts_it_and_an_owner_only_keystore_is_fine(tmp_path):
    path = setup_home(tmp_path, 0o666)
    relaxed = forwarder(tmp_path, "test", "config", "--strict.perms=false")
    assert (relaxed.returncode, relaxed.stdout.strip()) == (0, "Config OK"), relaxed.stderr
    os.chmod(path, 0o600)
    strict = forwarder(tmp_path, "test", "config")
    assert (strict.returncode, strict.stdout.strip()) == (0, "Config OK"), strict.stderr
