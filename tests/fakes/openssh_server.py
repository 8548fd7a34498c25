"""A real OpenSSH server (Debian's `openssh-server`) on loopback, the SCP-push target of the ESA tests.

Not a fake: the tests start the real `sshd` with everything of its own in a
temporary directory (host key, config, authorized_keys, pid file), listening
on 127.0.0.1 on a free port, for the test's own user only. The "appliance"
is a key pair generated here: its public key is the one line of
authorized_keys, as an ESA administrator would paste it, and `push` runs the
real `scp` with it, as the appliance does for a log subscription with
Retrieval Method "SCP Push". The server is ready when it sends its SSH banner.

sshd refuses to start as root without its privilege-separation directory
(/run/sshd, which the Debian service unit creates); as root the fixture
creates it. As an ordinary user (one made by `useradd`, even with a locked
password) sshd runs unprivileged and needs none; only a system account such
as `nobody` is refused ("account is locked"). The tests are skipped when sshd
is not installed (`.ci/run` installs it).

    pytest fixture `openssh_server`: an `OpenSshServer`
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 30.0
PRIVSEP_DIR = Path("/run/sshd")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True,
                   capture_output=True, timeout=30)
    return (path.with_suffix(".pub")).read_text().strip()


class OpenSshServer:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.user = getpass.getuser()
        host_public = _keygen(base / "host_ed25519", "forwarder-test-host")
        appliance_public = _keygen(base / "appliance_ed25519", "esa1.example.com")
        self.client_key = base / "appliance_ed25519"
        (base / "authorized_keys").write_text(appliance_public + "\n")
        os.chmod(base / "authorized_keys", 0o600)
        self.known_hosts = base / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_public}\n")
        self.config = base / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {base / 'host_ed25519'}\n"
            f"PidFile {base / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {base / 'authorized_keys'}\n"
            f"AllowUsers {self.user}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            # The temporary directory is not laid out like a home directory; the key files are 0600 anyway.
            "StrictModes no\n"
            "PermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\n"
            "LogLevel VERBOSE\n")
        self.log_path = base / "sshd.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> OpenSshServer:
        if os.geteuid() == 0:
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._banner():
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited ({self.process.returncode}): {self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd sent no banner within {START_TIMEOUT}s: {self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    def _banner(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                return conn.recv(64).startswith(b"SSH-2.0-")
        except OSError:
            return False

    def push(self, source: Path, destination: Path) -> None:
        """`scp` of one file to `destination` on this server, with the appliance's key, refusing unknown hosts."""
        self._scp([source], destination)

    def push_all(self, sources: list[Path], directory: Path) -> None:
        """One `scp` of several files into `directory`: scp sends them one after the other, in the order given."""
        self._scp(sources, directory)

    def _scp(self, sources: list[Path], destination: Path) -> None:
        result = subprocess.run(
            ["scp", "-q", "-B", "-P", str(self.port), "-i", str(self.client_key),
             "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
             "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
             *map(str, sources), f"{self.user}@127.0.0.1:{destination}"],
            check=False, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise AssertionError(f"scp failed ({result.returncode}): {result.stderr}\nsshd log:\n"
                                 f"{self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def openssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSshServer]:
    if not Path(SSHD).exists() or shutil.which("scp") is None:
        pytest.skip("OpenSSH (openssh-server and openssh-client) is not installed; .ci/run installs it")
    server = OpenSshServer(tmp_path_factory.mktemp("sshd")).start()
    try:
        yield server
    finally:
        server.stop()
