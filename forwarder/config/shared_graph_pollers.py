"""One Graph poller per app + tenant + stream, whichever module asked for it.

The `entraid` module's `alerts` and `incidents` filesets and the `microsoft`
module's `m365_defender` fileset read the same Graph resources. Enabled
together for one app registration, they would poll each stream twice, spend
the app's request budget twice and forward every record twice under two
datasets. So, once every module has been expanded, inputs whose type says
what they poll (`InputType.polled_streams`: for `graph`, the login host, Graph
host, tenant and client id, and the streams) and that poll the same streams
of the same source are merged into one: the input that stays is the one whose
dataset names the product raising the records (`m365_defender.*`, Defender
XDR), else the first configured. Its settings, dataset, processors and
registry cursor (its input id) are kept as they are; the others are not
started, and a start-up line names them all and what the records become.

Inputs that only partly overlap (one polls `alert` among other streams) are
not merged, since neither can stand in for the other: they are reported in a
start-up line instead, so the double reading is a choice the user sees.
"""

from __future__ import annotations

from typing import Any

from forwarder.config.inputs import InputSpec

# Datasets that win a merge: they name the product that raises the records.
PREFERRED_DATASETS = ("m365_defender.alert", "m365_defender.incident")

Source = tuple[str, ...]


def merge_shared_graph_pollers(specs: list[InputSpec]) -> tuple[list[InputSpec], list[str]]:
    """The inputs with one poller per source + streams, and one start-up line per merge or overlap."""
    groups: dict[tuple[str, Source, Source], list[InputSpec]] = {}
    for spec in specs:
        polled = _polled(spec)
        if polled is not None:
            groups.setdefault((spec.client.input_type, *polled), []).append(spec)
    dropped: set[int] = set()
    lines: list[str] = []
    for (type_name, source, streams), members in groups.items():
        if len(members) < 2:
            continue
        kept = _preferred(members)
        others = [spec for spec in members if spec is not kept]
        dropped.update(id(spec) for spec in others)
        lines.append(_merge_line(type_name, source, streams, kept, others))
    remaining = [spec for spec in specs if id(spec) not in dropped]
    lines.extend(_overlap_lines(remaining))
    return remaining, lines


def _polled(spec: InputSpec) -> tuple[Source, Source] | None:
    polled_streams = spec.input_type.polled_streams
    return None if polled_streams is None else polled_streams(spec.config)


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


def _app(source: Source) -> str:
    """`app <client> in tenant <tenant>` for Graph's source (its last two parts), the parts joined otherwise."""
    return f"app {source[-1]} in tenant {source[-2]}" if len(source) >= 2 else " ".join(source)


def _merge_line(type_name: str, source: Source, streams: Source, kept: InputSpec, others: list[InputSpec]) -> str:
    dataset = _dataset(kept)
    return (f"{type_name} inputs {', '.join(_described(spec) for spec in [kept, *others])} poll the same "
            f"{'/'.join(streams)} of {_app(source)}: polled once, by {kept.client.input_id} (its settings and "
            f"registry cursor), each record forwarded once{f' as {dataset}' if dataset else ''}; "
            f"{', '.join(spec.client.input_id for spec in others)} not started")


def _overlap_lines(specs: list[InputSpec]) -> list[str]:
    """Streams still polled by more than one input of a source (partial overlaps the merge leaves alone)."""
    readers: dict[tuple[str, Source, str], list[str]] = {}
    for spec in specs:
        polled = _polled(spec)
        if polled is None:
            continue
        source, streams = polled
        for stream in streams:
            readers.setdefault((spec.client.input_type, source, stream), []).append(spec.client.input_id)
    return [f"{type_name} inputs {', '.join(ids)} each poll {stream} of {_app(source)}: each of its records is "
            "read and forwarded once per input; give the stream to one input"
            for (type_name, source, stream), ids in readers.items() if len(ids) > 1]
