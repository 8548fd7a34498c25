"""Secrets referenced as `${KEY}` in the config, kept out of the config files.

The store is a JSON file under `path.data` created with mode 0600 and
rewritten atomically. Its protection is the file's permissions, as with
Filebeat's keystore under its default empty password: run the keystore
commands as the user the forwarder runs as. Values are base64-encoded only so
that any byte string survives; that is not encryption. Because the mode is the
only protection, a keystore that its group or others may read or write is
refused, as Filebeat refuses it, unless `--strict.perms=false`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path

from forwarder.platform import current_platform

KEYSTORE_FILENAME = "forwarder.keystore"
_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


class KeystoreError(Exception):
    """A keystore problem the user can fix; the message says how."""


class Keystore:
    def __init__(self, path: Path, strict_perms: bool = True) -> None:
        self.path = Path(path)
        self.strict_perms = strict_perms

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, force: bool = False) -> None:
        if self.exists() and not force:
            raise KeystoreError(f"keystore {self.path} already exists (use --force to overwrite it)")
        self._write({})

    def load(self) -> dict[str, str]:
        if not self.exists():
            return {}
        self._check_permissions()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {k: base64.b64decode(v).decode("utf-8") for k, v in data["secrets"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeystoreError(f"keystore {self.path} is unreadable ({type(exc).__name__}); "
                                "recreate it with `forwarder keystore create --force`") from None

    def _check_permissions(self) -> None:
        """Filebeat's keystore rule: owned by the running user or root, no access for group or others."""
        host = current_platform()
        if not self.strict_perms or not host.checks_file_permissions(self.path):
            return
        try:
            info = self.path.stat()
        except OSError as exc:
            raise KeystoreError(f"cannot read the keystore {self.path}: {exc.strerror}") from None
        if not host.is_trusted_owner(info):
            raise KeystoreError(f"keystore {self.path} must be owned by the forwarder's user (uid={host.user_id()}) "
                                f"or root (fix with chown, or run with --strict.perms=false)")
        if info.st_mode & 0o077:
            raise KeystoreError(f"keystore {self.path} must be readable and writable by its owner only, but its "
                                f"permissions are {stat.filemode(info.st_mode)!r} (fix with chmod 600 {self.path}, "
                                "or run with --strict.perms=false)")

    def names(self) -> list[str]:
        return sorted(self.load())

    def add(self, key: str, value: str, force: bool = False) -> None:
        if not _KEY.match(key):
            raise KeystoreError(f"invalid key {key!r}: use letters, digits, '_', '.', '-'")
        secrets = self.load() if self.exists() else {}
        if key in secrets and not force:
            raise KeystoreError(f"key {key!r} already exists in the keystore (use --force to replace it)")
        secrets[key] = value
        self._write(secrets)

    def remove(self, key: str) -> None:
        secrets = self.load()
        if key not in secrets:
            raise KeystoreError(f"key {key!r} is not in the keystore {self.path}")
        del secrets[key]
        self._write(secrets)

    def _write(self, secrets: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        body = json.dumps({
            "version": 1,
            "secrets": {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in sorted(secrets.items())},
        })
        temp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        current_platform().durable_replace(temp, self.path)
