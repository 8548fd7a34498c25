"""The `forwarder` command as a user runs it: exit codes, messages, files it changes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from forwarder import __version__


def forwarder(*args, cwd, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "forwarder", *args], check=False, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def write(path, text, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    os.chmod(path, mode)
    return path


GOOD = textwrap.dedent("""
    forwarder.inputs:
      - type: syslog
        protocol.udp.host: "127.0.0.1:5514"
    output.file.path: ${path.data}/events
""")


def test_version(tmp_path):
    result = forwarder("version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"forwarder version {__version__}"


def test_test_config_ok_and_flags_after_the_command(tmp_path):
    write(tmp_path / "conf" / "forwarder.yml", GOOD)
    result = forwarder("test", "config", "--path.config", str(tmp_path / "conf"), cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "Config OK"), result.stderr


def test_test_config_reports_each_problem_on_one_line(tmp_path):
    write(tmp_path / "forwarder.yml", """
        forwarder.inputs:
          - type: syslog
            protocol.udp.host: "127.0.0.1:5514"
            formatt: rfc5424
        queue.mem.events: many
        name: ${FWD_CLI_MISSING}
        output.file.path: /tmp/x
        """)
    result = forwarder("test", "config", "-c", "forwarder.yml", cwd=tmp_path, env={"FWD_CLI_MISSING": ""})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert any("forwarder.inputs.0.formatt: unknown setting (did you mean" in line for line in lines)
    assert any("queue.mem.events" in line for line in lines)
    assert all(line.startswith("config error: ") for line in lines)
    assert "Traceback" not in result.stderr


def test_missing_variable_and_malformed_yaml_fail_cleanly(tmp_path):
    write(tmp_path / "forwarder.yml", GOOD + "name: ${FWD_CLI_NOT_SET}\n")
    env = {k: v for k, v in os.environ.items() if k != "FWD_CLI_NOT_SET"}
    result = subprocess.run([sys.executable, "-m", "forwarder", "test", "config"], check=False, cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "${FWD_CLI_NOT_SET} is not set" in result.stderr
    write(tmp_path / "forwarder.yml", "output.file:\n  path: [\n")
    result = forwarder("run", "-e", cwd=tmp_path)
    assert result.returncode == 1
    assert "invalid YAML" in result.stderr and "Traceback" not in result.stderr


def test_override_fixes_a_setting_from_the_command_line(tmp_path):
    write(tmp_path / "forwarder.yml", GOOD + "queue.mem.events: many\n")
    assert forwarder("test", "config", cwd=tmp_path).returncode == 1
    result = forwarder("test", "config", "-E", "queue.mem.events=100", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_strict_perms(tmp_path):
    write(tmp_path / "forwarder.yml", GOOD, mode=0o666)
    result = forwarder("test", "config", cwd=tmp_path)
    assert result.returncode == 1 and "writable by the owner" in result.stderr
    assert forwarder("test", "config", "--strict.perms=false", cwd=tmp_path).returncode == 0


def test_modules_enable_disable_list(tmp_path):
    write(tmp_path / "forwarder.yml", GOOD)
    modules = tmp_path / "modules.d"
    write(modules / "alpha.yml.disabled", "[]\n")
    write(modules / "beta.yml", "[]\n")
    listing = forwarder("modules", "list", cwd=tmp_path)
    assert listing.stdout.split() == ["Enabled:", "beta", "Disabled:", "alpha"]
    assert forwarder("modules", "enable", "alpha", cwd=tmp_path).returncode == 0
    assert (modules / "alpha.yml").exists() and not (modules / "alpha.yml.disabled").exists()
    assert forwarder("modules", "disable", "beta", cwd=tmp_path).returncode == 0
    assert (modules / "beta.yml.disabled").exists()
    missing = forwarder("modules", "enable", "gamma", cwd=tmp_path)
    assert missing.returncode == 1 and "gamma" in missing.stderr


def test_keystore_round_trip_resolves_config_and_keeps_value_private(tmp_path):
    write(tmp_path / "forwarder.yml", GOOD + "name: ${HOST_LABEL}\n")
    assert forwarder("keystore", "create", cwd=tmp_path).returncode == 0
    added = forwarder("keystore", "add", "HOST_LABEL", "--stdin", cwd=tmp_path, stdin="edge-01\n")
    assert added.returncode == 0, added.stderr
    assert "edge-01" not in added.stdout
    assert forwarder("keystore", "list", cwd=tmp_path).stdout.split() == ["HOST_LABEL"]
    keystore = tmp_path / "data" / "forwarder.keystore"
    assert oct(keystore.stat().st_mode & 0o777) == "0o600"
    assert forwarder("test", "config", cwd=tmp_path).returncode == 0
    again = forwarder("keystore", "add", "HOST_LABEL", "--stdin", cwd=tmp_path, stdin="x\n")
    assert again.returncode == 1 and "--force" in again.stderr
    assert forwarder("keystore", "remove", "HOST_LABEL", cwd=tmp_path).returncode == 0
    result = forwarder("test", "config", cwd=tmp_path)
    assert result.returncode == 1 and "${HOST_LABEL} is not set" in result.stderr
