"""Types are imported only when a config names them: the shipped config loads no cloud SDK."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLOUD_SDKS = {"azure", "msal", "boto3", "botocore", "uamqp", "requests"}


def imported_top_level_packages(home: Path, *args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "forwarder", *args, "--path.home", str(home)],
                            check=False, cwd=home, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_test_config_on_the_shipped_config_imports_no_cloud_sdk(tmp_path):
    shutil.copy(REPO / "forwarder.yml", tmp_path / "forwarder.yml")
    os.chmod(tmp_path / "forwarder.yml", 0o600)
    imported = imported_top_level_packages(tmp_path, "test", "config", "-c", "forwarder.yml")
    assert "forwarder" in imported and "yaml" in imported
    assert imported & CLOUD_SDKS == set()


def test_a_config_naming_a_cloud_input_imports_its_sdk(tmp_path):
    """The counter-check: the measurement above would see an SDK if one were loaded."""
    (tmp_path / "forwarder.yml").write_text("""
forwarder.inputs:
  - type: azure-eventhub
    eventhub: insights-logs-signinlogs
    connection_string: "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s"
output.file.path: ${path.data}/events
""")
    os.chmod(tmp_path / "forwarder.yml", 0o600)
    assert "azure" in imported_top_level_packages(tmp_path, "test", "config", "-c", "forwarder.yml")
