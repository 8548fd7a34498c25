"""Azurite's blob service (Microsoft's storage emulator, from npm) as a subprocess, for checkpoint-store tests.

The Event Hubs blob checkpoint store keeps ownership and checkpoints as blob
metadata written with ETag preconditions; Azurite implements those semantics for
real, so tests run the SDK's own `BlobCheckpointStore` against it instead of a fake.

The binary comes from `npm install --prefix .ci azurite@3` (what `.ci/run` does;
`.ci/node_modules` is git-ignored) or from PATH. If it is missing, starting fails
with that command in the message, rather than the tests skipping quietly.

Usage::

    with Azurite(tmp_path / "azurite") as azurite:
        store = BlobCheckpointStore.from_connection_string(azurite.connection_string, "checkpoints")
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
INSTALL_COMMAND = "npm install --prefix .ci azurite@3"
ACCOUNT_NAME = "devstoreaccount1"
# the emulator's fixed, publicly documented development key; not a secret
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"successfully listens on http://[^:]+:(\d+)")


class AzuriteNotInstalled(RuntimeError):
    pass


def find_azurite_blob(repository: Path = REPOSITORY) -> str:
    """Path of the `azurite-blob` executable: the repository's .ci install first, then PATH."""
    local = repository / ".ci" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-blob")
    if found:
        return found
    raise AzuriteNotInstalled(
        f"azurite-blob not found in {local.parent} nor on PATH; install it from the repository root with: "
        f"{INSTALL_COMMAND}"
    )


class Azurite:
    """One Azurite blob service on 127.0.0.1 with an OS-chosen port, storing under `location`."""

    def __init__(self, location: Path, startup_timeout: float = 30.0) -> None:
        self.location = location
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._process: subprocess.Popen[str] | None = None
        self._output: list[str] = []
        self._listening = threading.Event()

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def start(self) -> None:
        self.location.mkdir(parents=True, exist_ok=True)
        command = [
            find_azurite_blob(),
            "--blobHost", "127.0.0.1",
            "--blobPort", "0",  # Azurite reports the port it got, so there is no race for a free one
            "--location", str(self.location),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
        threading.Thread(target=self._read_output, name="azurite-output", daemon=True).start()
        if not self._listening.wait(self.startup_timeout) or self.port is None:
            self.stop()
            output = "".join(self._output).strip() or "(no output)"
            raise RuntimeError(f"Azurite did not start listening within {self.startup_timeout:.0f}s: {output}")

    def _read_output(self) -> None:
        """Collects Azurite's console (kept for failure messages) and spots the line naming the bound port."""
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._output.append(line)
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                self._listening.set()
        self._listening.set()  # the process ended: stop waiting

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> Azurite:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
