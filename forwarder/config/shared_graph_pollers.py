"""One Graph poller per app + tenant + stream, whichever module asked for it.

The `entraid` module's `alerts` and `incidents` filesets and the `microsoft`
module's `m365_defender` fileset read the same Graph resources. Enabled
together for one app registration, they would poll each stream twice, spend
the app's request budget twice and forward every record twice under two
datasets. So, once every module has been expanded, `graph` inputs that read
the same streams of the same app (login host, Graph host, tenant, client id)
are merged into one: the input that stays is the one whose dataset names the
product raising the records (`m365_defender.*`, Defender XDR), else the first
configured. Its settings, dataset, processors and registry cursor (its input
id) are kept as they are; the others are not started, and a start-up line
names both and what the records become.

Inputs that only partly overlap (one polls `alert` among other streams) are
not merged, since neither can stand in for the other: they are reported in a
start-up line instead, so the double reading is a choice the user sees.
"""

from __future__ import annotations

from typing import Any

from forwarder.config.inputs import InputSpec
from forwarder.inputs.graph_config import GraphConfig, streams

# Datasets that win a merge: they name the product that raises the records.
PREFERRED_DATASETS = ("m365_defender.alert", "m365_defender.incident")

AppKey = tuple[str, str, str, str]


def merge_shared_graph_pollers(specs: list[InputSpec]) -> tuple[list[InputSpec], list[str]]:
    """The inputs with one `graph` poller per app + streams, and one start-up line per merge or overlap."""
    groups: dict[tuple[AppKey, tuple[str, ...]], list[InputSpec]] = {}
    for spec in specs:
        if spec.client.input_type == "graph" and isinstance(spec.config, GraphConfig):
            groups.setdefault((_app_key(spec.config), tuple(streams(spec.config))), []).append(spec)
    dropped: set[int] = set()
    lines: list[str] = []
    for (app, polled), members in groups.items():
        if len(members) < 2:
            continue
        kept = _preferred(members)
        others = [spec for spec in members if spec is not kept]
        dropped.update(id(spec) for spec in others)
        lines.append(_merge_line(app, polled, kept, others))
    remaining = [spec for spec in specs if id(spec) not in dropped]
    lines.extend(_overlap_lines(remaining))
    return remaining, lines


def _app_key(config: GraphConfig) -> AppKey:
    return (config.login_endpoint.lower(), config.graph_endpoint.lower(), config.tenant_id.lower(),
            config.client_id.lower())


def _preferred(members: list[InputSpec]) -> InputSpec:
    for spec in members:
        if _dataset(spec) in PREFERRED_DATASETS:
            return spec
    return members[0]


def _dataset(spec: InputSpec) -> Any:
    event = spec.client.module_fields.get("event")
    return event.get("dataset") if isinstance(event, dict) else None


def _described(spec: InputSpec) -> str:
    dataset = _dataset(spec)
    return f"{spec.client.input_id} ({dataset})" if dataset else spec.client.input_id


def _merge_line(app: AppKey, polled: tuple[str, ...], kept: InputSpec, others: list[InputSpec]) -> str:
    _, _, tenant, client = app
    dataset = _dataset(kept)
    return (f"graph inputs {', '.join(_described(spec) for spec in [kept, *others])} poll the same "
            f"{'/'.join(polled)} of app {client} in tenant {tenant}: polled once, by {kept.client.input_id} "
            f"(its settings and registry cursor), each record forwarded once"
            f"{f' as {dataset}' if dataset else ''}; {', '.join(s.client.input_id for s in others)} not started")


def _overlap_lines(specs: list[InputSpec]) -> list[str]:
    """Streams still polled by more than one input of an app (partial overlaps the merge leaves alone)."""
    readers: dict[tuple[AppKey, str], list[str]] = {}
    for spec in specs:
        if spec.client.input_type == "graph" and isinstance(spec.config, GraphConfig):
            for stream in streams(spec.config):
                readers.setdefault((_app_key(spec.config), stream), []).append(spec.client.input_id)
    return [f"graph inputs {', '.join(ids)} each poll {stream} of app {app[3]} in tenant {app[2]}: each of its "
            "records is read and forwarded once per input; give the stream to one input"
            for (app, stream), ids in readers.items() if len(ids) > 1]
