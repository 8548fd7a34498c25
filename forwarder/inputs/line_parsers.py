"""The `parsers` of a filestream input: which ones, in what order, and the chain that runs them.

Filebeat runs parsers in the configured order over the stream of lines of one
file, so JSON can be decoded before lines are joined or after. The parsers
themselves live in ndjson_parser and multiline_parser; this module reads the
`parsers` list and strings fresh parser instances together for each file.
"""

from __future__ import annotations

from collections.abc import Callable

from forwarder.inputs.json_objects_parser import JsonObjectsConfig, JsonObjectsParser, parse_json_objects_config
from forwarder.inputs.line_message import Message
from forwarder.inputs.multiline_parser import MultilineConfig, MultilineParser, parse_multiline_config
from forwarder.inputs.ndjson_parser import NdjsonConfig, NdjsonParser, parse_ndjson_config
from forwarder.schema.section import Section

ParserConfig = NdjsonConfig | MultilineConfig | JsonObjectsConfig
ParserStage = NdjsonParser | MultilineParser | JsonObjectsParser


def parse_parsers(section: Section) -> list[ParserConfig]:
    """Reads the `parsers` list: each entry is a mapping with one key, `ndjson`, `multiline` or `json_objects`."""
    raw = section.raw("parsers")
    configs: list[ParserConfig] = []
    for item, value in zip(section.sections("parsers"), raw if isinstance(raw, list) else [], strict=False):
        if not isinstance(value, dict):
            continue
        if len(value) != 1:
            item.error("", "each parser must be a mapping with exactly one key: ndjson, multiline or json_objects")
            continue
        name = next(iter(value))
        if name == "ndjson":
            configs.append(parse_ndjson_config(item.section(name)))
        elif name == "multiline":
            configs.append(parse_multiline_config(item.section(name)))
        elif name == "json_objects":
            configs.append(parse_json_objects_config(item.section(name)))
        else:
            item.error(str(name), "unknown parser (supported: ndjson, multiline, json_objects)")
    return configs


def build_chain(configs: list[ParserConfig], max_bytes: int) -> ParserChain:
    """A fresh chain (one per file: multiline state belongs to one file)."""
    stages: list[ParserStage] = []
    for config in configs:
        if isinstance(config, NdjsonConfig):
            stages.append(NdjsonParser(config))
        elif isinstance(config, JsonObjectsConfig):
            stages.append(JsonObjectsParser(config, max_bytes))
        else:
            stages.append(MultilineParser(config, max_bytes))
    return ParserChain(stages)


class ParserChain:
    """Runs messages through the stages in order; output of one stage feeds the next."""

    def __init__(self, stages: list[ParserStage]) -> None:
        self._stages = stages

    def feed(self, message: Message, now: float) -> list[Message]:
        return self._run(0, [message], now)

    def expire(self, now: float) -> list[Message]:
        """Records whose multiline timeout has passed, in file order."""
        return self._drain(lambda stage: stage.expire(now), now)

    def flush(self, now: float) -> list[Message]:
        """Everything still buffered, for a file that is being closed or rewritten."""
        return self._drain(lambda stage: stage.flush(), now)

    def _drain(self, take: Callable[[ParserStage], list[Message]], now: float) -> list[Message]:
        result: list[Message] = []
        for index, stage in enumerate(self._stages):
            result.extend(self._run(index + 1, take(stage), now))
        return result

    def deadline(self) -> float | None:
        deadlines = [d for d in (stage.deadline() for stage in self._stages) if d is not None]
        return min(deadlines) if deadlines else None

    def _run(self, start: int, messages: list[Message], now: float) -> list[Message]:
        for stage in self._stages[start:]:
            if not messages:
                break
            produced: list[Message] = []
            for message in messages:
                produced.extend(stage.feed(message, now))
            messages = produced
        return messages
