"""add_host_metadata: what this host is, in the `host.*` shape Filebeat writes.

Only the name, hostname, architecture and operating system are reported:
they identify the sender, cost nothing per event once read, and never change
while the process runs, so they are read once and cached. Network addresses
are left out on purpose (they change, and reading them per event is slow).
"""

from __future__ import annotations

import platform
import plistlib
import socket
from functools import cache
from pathlib import Path
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.touched_fields import declare_fields
from forwarder.platform import current_platform
from forwarder.schema.declared import BOOLEAN, MAPPING, STRING, Setting, ignored, read_settings
from forwarder.schema.section import Section

_OS_RELEASE_FILES = (Path("/etc/os-release"), Path("/usr/lib/os-release"))

# Linux distribution ids grouped the way go-sysinfo reports `host.os.family`.
_FAMILIES = {
    "redhat": ("rhel", "redhat", "centos", "fedora", "scientific", "ol", "oraclelinux", "amzn", "almalinux", "rocky"),
    "debian": ("debian", "ubuntu", "raspbian", "linuxmint", "kali", "pop"),
    "suse": ("suse", "sles", "sled", "opensuse", "opensuse-leap", "opensuse-tumbleweed"),
    "arch": ("arch", "archarm", "manjaro", "antergos", "endeavouros"),
    "alpine": ("alpine",),
}

_ARCHITECTURES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "arm64", "aarch64": "aarch64", "x86": "x86"}


@cache
def host_fields() -> dict[str, Any]:
    """The `host` object: name, hostname, architecture and os.*; computed on first use only."""
    hostname = socket.gethostname()
    machine = platform.machine()
    return {
        "name": hostname,
        "hostname": hostname,
        "architecture": _ARCHITECTURES.get(machine.lower(), machine),
        "os": _os_fields(),
    }


def _os_fields() -> dict[str, Any]:
    system = platform.system()
    if system == "Linux":
        return linux_os_fields(_read_os_release(), platform.release())
    if system == "Windows":
        return _windows_os_fields()
    if system == "Darwin":
        return _macos_os_fields()
    return {"type": system.lower(), "family": system.lower(), "platform": system.lower(), "kernel": platform.release()}


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5); quotes around values are removed."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _read_os_release() -> dict[str, str]:
    for path in _OS_RELEASE_FILES:
        try:
            return parse_os_release(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return {}


def linux_os_fields(release: dict[str, str], kernel: str) -> dict[str, Any]:
    """host.os.* from os-release values, with go-sysinfo's fallbacks and family grouping."""
    name = release.get("NAME") or release.get("PRETTY_NAME") or "Linux"
    platform_id = release.get("ID") or name.split(" ")[0].lower()
    fields: dict[str, Any] = {
        "type": "linux",
        "family": _family(platform_id, release.get("ID_LIKE", "")),
        "platform": platform_id,
        "name": name,
        "kernel": kernel,
    }
    version = release.get("VERSION") or release.get("VERSION_ID")
    if version:
        fields["version"] = version
    codename = release.get("VERSION_CODENAME") or release.get("UBUNTU_CODENAME")
    if codename:
        fields["codename"] = codename
    return fields


def _family(platform_id: str, id_like: str) -> str:
    for candidate in (platform_id, *id_like.split()):
        for family, members in _FAMILIES.items():
            if candidate.lower() in members:
                return family
    return ""


def _windows_os_fields() -> dict[str, Any]:
    release, version, _, _ = platform.win32_ver()
    name = f"Windows {release}".strip()
    build = version.split(".", 2)[2] if version.count(".") >= 2 else ""
    product = current_platform().windows_product()
    if product is not None:
        name, build = product
    fields: dict[str, Any] = {
        "type": "windows",
        "family": "windows",
        "platform": "windows",
        "name": name,
        "version": ".".join(version.split(".")[:2]),
        "kernel": version,
    }
    if build:
        fields["build"] = build
    return fields


def _macos_os_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {
        "type": "macos",
        "family": "darwin",
        "platform": "darwin",
        "name": "macOS",
        "version": platform.mac_ver()[0],
        "kernel": platform.release(),
    }
    try:
        with open("/System/Library/CoreServices/SystemVersion.plist", "rb") as handle:
            plist = plistlib.load(handle)
        fields["name"] = plist.get("ProductName", fields["name"])
        if plist.get("ProductBuildVersion"):
            fields["build"] = plist["ProductBuildVersion"]
    except (OSError, plistlib.InvalidFileException):
        pass
    return fields


# `netinfo.*`, `cache.ttl` and `fqdn` are accepted so existing configs load; the
# host is read once per process, and addresses are not reported.
SETTINGS = (
    Setting("name", STRING, None, "written as `host.name` instead of the system's host name"),
    Setting("replace_fields", BOOLEAN, True, "an event that already has `host` fields (more than `host.name`) gets "
            "these written over them; `false` leaves such an event's `host` as it is"),
    Setting("geo", MAPPING, None, "`host.geo` fields (`name`, `location`, `continent_name`, `country_iso_code`, "
            "`region_name`, `region_iso_code`, `city_name`); objects and lists in it are left out"),
    *ignored("netinfo", doc="accepted, without effect: network addresses are not reported"),
    *ignored("cache", doc="accepted, without effect: the host is read once per process"),
    *ignored("fqdn", doc="accepted, without effect: `host.name` is the system's host name as it is"),
)


def build_add_host_metadata(options: Section) -> Processor:
    """The add_host_metadata processor, with Filebeat's options (`SETTINGS`)."""
    values = read_settings(options, SETTINGS)
    name = values["name"]
    replace_fields = values["replace_fields"]
    geo = values["geo"]
    host = dict(host_fields())
    if name:
        host["name"] = name
    if geo:
        host["geo"] = {key: value for key, value in geo.items() if not isinstance(value, (dict, list))}

    scalars = {key: value for key, value in host.items() if not isinstance(value, dict)}
    objects = {key: value for key, value in host.items() if isinstance(value, dict)}

    def add_host_metadata(event: Event) -> Event:
        fields = event.fields
        current = fields.get("host")
        if not isinstance(current, dict) or (len(current) == 1 and "name" in current):
            fresh = dict(scalars)
            for key, value in objects.items():
                fresh[key] = dict(value)
            fields["host"] = fresh
            return event
        if not replace_fields:
            return event
        current.update(scalars)
        for key, value in objects.items():
            existing = current.get(key)
            if isinstance(existing, dict):
                existing.update(value)
            else:
                current[key] = dict(value)
        return event

    return declare_fields(add_host_metadata, frozenset({"host"}))
