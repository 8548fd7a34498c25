"""`add_cloud_metadata`: the cloud instance the host runs on (`cloud.provider`, `cloud.instance.id` …).

The instance metadata service is asked once per processor, when the first
event arrives, on a background thread that asks every chosen provider at
once with a short `timeout`. The first event waits for that answer at most
`timeout`; after that every event gets the cached result, or nothing when the
host is not in a cloud. Config loading never touches the network, so an
off-cloud host starts as fast as any other, and `forwarder test config` makes
no requests. Requests never go through a proxy: the metadata address is
link-local and must not leave the host.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import deep_update
from forwarder.pipeline.touched_fields import declare_fields
from forwarder.schema.declared import BOOLEAN, DURATION, STRING, STRINGS, Setting, read_settings
from forwarder.schema.section import Section

log = logging.getLogger(__name__)

Fetch = Callable[[str, str, dict[str, str]], bytes]


def _aws(fetch: Fetch) -> dict[str, Any]:
    token = fetch("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"}).decode()
    document = json.loads(fetch("GET", "/latest/dynamic/instance-identity/document",
                                {"X-aws-ec2-metadata-token": token}))
    return {"provider": "aws", "service": {"name": "EC2"}, "instance": {"id": document["instanceId"]},
            "machine": {"type": document.get("instanceType")}, "region": document.get("region"),
            "availability_zone": document.get("availabilityZone"), "account": {"id": document.get("accountId")},
            "image": {"id": document.get("imageId")}}


def _gcp(fetch: Fetch) -> dict[str, Any]:
    data = json.loads(fetch("GET", "/computeMetadata/v1/?recursive=true&alt=json", {"Metadata-Flavor": "Google"}))
    instance, project = data["instance"], data.get("project", {})
    zone = str(instance.get("zone", "")).rpartition("/")[2]
    return {"provider": "gcp", "service": {"name": "GCE"},
            "instance": {"id": str(instance["id"]), "name": instance.get("name")},
            "machine": {"type": str(instance.get("machineType", "")).rpartition("/")[2]},
            "availability_zone": zone, "region": zone.rpartition("-")[0] or None,
            "project": {"id": project.get("projectId")}, "account": {"id": project.get("projectId")}}


def _azure(fetch: Fetch) -> dict[str, Any]:
    data = json.loads(fetch("GET", "/metadata/instance/compute?api-version=2021-02-01", {"Metadata": "true"}))
    return {"provider": "azure", "service": {"name": "Virtual Machines"},
            "instance": {"id": data["vmId"], "name": data.get("name")}, "machine": {"type": data.get("vmSize")},
            "region": data.get("location"), "account": {"id": data.get("subscriptionId")}}


def _digitalocean(fetch: Fetch) -> dict[str, Any]:
    data = json.loads(fetch("GET", "/metadata/v1.json", {}))
    return {"provider": "digitalocean", "service": {"name": "Droplets"},
            "instance": {"id": str(data["droplet_id"])}, "region": data.get("region")}


def _openstack(fetch: Fetch) -> dict[str, Any]:
    def read(item: str) -> str:
        return fetch("GET", f"/2009-04-04/meta-data/{item}", {}).decode().strip()

    return {"provider": "openstack", "instance": {"id": read("instance-id"), "name": read("hostname")},
            "machine": {"type": read("instance-type")}, "availability_zone": read("placement/availability-zone")}


# Filebeat's provider names (with its aliases) → how each is asked.
PROVIDERS: dict[str, Callable[[Fetch], dict[str, Any]]] = {
    "aws": _aws, "ec2": _aws, "gcp": _gcp, "azure": _azure, "digitalocean": _digitalocean, "openstack": _openstack,
    "nova": _openstack,
}
# Accepted so Filebeat configs load; they use other metadata addresses, which are not asked here.
UNSUPPORTED_PROVIDERS = ("alibaba", "ecs", "tencent", "qcloud", "huawei", "hetzner")
DEFAULT_PROVIDERS = ("aws", "gcp", "azure", "digitalocean", "openstack")

ADD_CLOUD_METADATA_SETTINGS = (
    Setting("timeout", DURATION, "3s", "how long the metadata service is waited for (and the first event with it)",
            positive=True),
    Setting("providers", STRINGS, list(DEFAULT_PROVIDERS), "the providers asked: `aws` (`ec2`), `gcp`, `azure`, "
            "`digitalocean`, `openstack` (`nova`); Filebeat's `alibaba`, `tencent`, `huawei`, `hetzner` are accepted "
            "and not asked"),
    Setting("overwrite", BOOLEAN, False, "replace `cloud` fields the event already has; `false` leaves such an "
            "event as it is"),
    Setting("metadata_url", STRING, "http://169.254.169.254", "the metadata service address (not in Filebeat: "
            "for tests and for hosts that reach the service elsewhere)"),
)


class CloudMetadata:
    """Asks the providers once, in the background, and keeps the answer (None = not in a cloud)."""

    def __init__(self, base_url: str, providers: list[str], timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.providers = providers
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._started = threading.Lock()
        self._done = threading.Event()
        self._begun = False
        self.result: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any] | None:
        """The cloud fields; the first callers wait at most `timeout` for the one lookup."""
        if not self._done.is_set():
            with self._started:
                if not self._begun:
                    self._begun = True
                    threading.Thread(target=self._look_up, name="add_cloud_metadata", daemon=True).start()
            self._done.wait(self.timeout)
        return self.result

    def _fetch(self, method: str, path: str, headers: dict[str, str]) -> bytes:
        request = urllib.request.Request(self.base_url + path, method=method, headers=headers)
        with self._opener.open(request, timeout=self.timeout) as response:
            return response.read(1_000_000)

    def _ask(self, name: str) -> dict[str, Any] | None:
        try:
            return _without_empty(PROVIDERS[name](self._fetch))
        except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as exc:
            log.debug("add_cloud_metadata: %s did not answer: %s", name, exc)
            return None

    def _look_up(self) -> None:
        try:
            with ThreadPoolExecutor(max(len(self.providers), 1)) as pool:
                answers = list(pool.map(self._ask, self.providers))
            self.result = next((answer for answer in answers if answer), None)
            if self.result is None:
                log.info("add_cloud_metadata: no cloud metadata service answered; events get no cloud fields")
            else:
                log.info("add_cloud_metadata: running on %s", self.result["provider"])
        finally:
            self._done.set()


def _without_empty(fields: dict[str, Any]) -> dict[str, Any]:
    cleaned = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            value = _without_empty(value)
        if value not in (None, "", {}):
            cleaned[key] = value
    return cleaned


def build_add_cloud_metadata(options: Section) -> Processor:
    values = read_settings(options, ADD_CLOUD_METADATA_SETTINGS)
    chosen = []
    for name in values["providers"]:
        if name in PROVIDERS:
            chosen.append(name)
        elif name not in UNSUPPORTED_PROVIDERS:
            known = ", ".join([*PROVIDERS, *UNSUPPORTED_PROVIDERS])
            values.error("providers", f"unknown provider {name!r} (known: {known})")
    lookup = CloudMetadata(values["metadata_url"], list(dict.fromkeys(chosen)), values["timeout"])
    overwrite = values["overwrite"]

    def add_cloud_metadata(event: Event) -> Event:
        if not overwrite and "cloud" in event.fields:
            return event
        cloud = lookup.fields()
        if cloud:
            deep_update(event.fields, {"cloud": cloud})
        return event

    return declare_fields(add_cloud_metadata, frozenset({"cloud"}))
