"""The `kv` processor: `key=value` text (firewall and appliance logs) split into fields.

Option names are those of Elastic's ingest `kv` processor (Logstash's kv
filter has the same idea), since Filebeat itself has none: `field`,
`field_split`, `value_split`, `target_field`, `prefix`, `include_keys`,
`exclude_keys`, `trim_key`, `trim_value`, `strip_brackets`,
`ignore_missing`, `ignore_failure`.

Real devices do not quote consistently, so a pair ends only where the field
separator is followed by the next `key=` (or at the end of the text), not at
every separator: an unquoted value may contain spaces (`ether_type=Unknown
(0x0000)`), a quoted one may contain separators and `key=`-looking text, and a
value whose closing quote is missing runs to the next pair instead of
swallowing the rest of the line. The whole line is matched by one compiled
regular expression (`KeyValueParser`), so the per-pair work happens in C; the
Sophos mapping uses the same parser. A text without any pair is a failure
(the event goes on unchanged, with the pipeline's error), never a crash.
"""

from __future__ import annotations

import re
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event, parse_timestamp
from forwarder.schema.declared import BOOLEAN, STRING, STRINGS, Setting, read_settings
from forwarder.schema.section import Section

# The common case, `key=value` pairs split by spaces, as one pattern with a single value group (so the C
# regex engine builds the pairs): a "quoted" value up to the quote that ends it (the first quote followed by
# a space or the end; failing that, one followed by the next `key=`, so a value may contain quotes but then
# no `=`), else an unquoted word followed by more words that are not `key=` (`Unknown (0x0000)`), a stray
# quote dropped. A key starts only after whitespace, and no branch scans past the next `=` or quote, so a
# long line of garbage costs linear time, not quadratic.
_SPACE_EQUALS = re.compile(
    r'(?<!\S)([^\s"=]+)="?((?<=")(?:[^"]*+(?=" |"$)|[^=]*?(?=" +[^\s"=]+=|"$))|(?>[^\s"]*)(?: +(?>[^\s=]+)(?= |$))*)'
    r'"?(?: +|$)'
)
# Any other separators: a key is as short as `value_split` allows (`a=b=c` is key `a`), and at most 256
# characters long, which bounds the work on text without separators.
_KEY = r'[^\s"]{1,256}?'
_BRACKETS = {"(": ")", "[": "]", "<": ">", '"': '"', "'": "'"}

SETTINGS = (
    Setting("field", STRING, "message", "the field holding the `key=value` text"),
    Setting("field_split", STRING, " ", "regular expression between pairs; a pair ends only where it is followed by "
            "the next key and `value_split`, so unquoted values may contain it", doc_default='`" "` (a space)'),
    Setting("value_split", STRING, "=", "regular expression between a key and its value"),
    Setting("target_field", STRING, None, "the (dotted) field the pairs are written under; unset: the event root",
            doc_default="— (event root)"),
    Setting("prefix", STRING, "", "put before every key (`sophos.xg.` nests them under that object)"),
    Setting("include_keys", STRINGS, [], "only these keys are kept (before `prefix`); empty: all"),
    Setting("exclude_keys", STRINGS, [], "these keys are left out"),
    Setting("trim_key", STRING, "", "characters removed from both ends of each key"),
    Setting("trim_value", STRING, "", "characters removed from both ends of each value (after the quotes)"),
    Setting("strip_brackets", BOOLEAN, False, "remove one pair of `()`, `[]`, `<>`, `\"\"` or `''` around a value"),
    Setting("ignore_missing", BOOLEAN, False, "an event without `field` passes unchanged instead of failing"),
    Setting("ignore_failure", BOOLEAN, False, "text without any pair leaves the event unchanged, with no error"),
)


class KeyValueParser:
    """Splits one text into (key, value) pairs; compiled once per configuration, safe to share between threads.

    A value is tried first as `"quoted"` (up to a quote followed by the next
    pair or the end), then as anything up to the next pair, with a stray
    opening or closing quote dropped. Text before the first pair is skipped.
    """

    def __init__(self, field_split: str = " ", value_split: str = "=") -> None:
        if (field_split, value_split) == (" ", "="):
            self._pattern = _SPACE_EQUALS
            return
        pair_end = f"(?:(?:{field_split})(?={_KEY}(?:{value_split}))|\\s*$)"
        self._pattern = re.compile(
            f'({_KEY})(?:{value_split})"?((?<=")(?:[^"]*+(?="{pair_end})|.*?(?="{pair_end}))|.*?)"?{pair_end}',
            re.DOTALL,
        )

    def pairs(self, text: str) -> list[tuple[str, str]]:
        """Every pair in order of appearance (a repeated key appears once per occurrence)."""
        return self._pattern.findall(text)

    def parse(self, text: str) -> dict[str, str]:
        """The pairs as a dict; a repeated key keeps its last value (`parse_multi` keeps them all)."""
        return dict(self._pattern.findall(text))


def parse_multi(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Pairs into a dict where a repeated key holds the list of its values, as Elastic's kv does."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key not in found:
            found[key] = value
        elif isinstance(found[key], list):
            found[key].append(value)
        else:
            found[key] = [found[key], value]
    return found


def build_kv(options: Section) -> Processor:
    """`kv: {field: message, field_split: " ", value_split: "=", …}`; bad regular expressions are reported."""
    values = read_settings(options, SETTINGS)
    try:
        parser = KeyValueParser(values["field_split"], values["value_split"])
    except re.error as error:
        options.error("field_split", f"field_split/value_split is not a valid regular expression: {error}")
        parser = KeyValueParser()
    source = values["field"]
    target = values["target_field"]
    prefix = values["prefix"]
    include = set(values["include_keys"])
    exclude = set(values["exclude_keys"])
    trim_key, trim_value = values["trim_key"], values["trim_value"]
    strip_brackets = values["strip_brackets"]
    ignore_missing, ignore_failure = values["ignore_missing"], values["ignore_failure"]

    def kv(event: Event) -> Event:
        text = event.get(source)
        if text is None:
            if ignore_missing:
                return event
            raise ValueError(f"field {source!r} is missing")
        if not isinstance(text, str):
            raise ValueError(f"field {source!r} is not a string")
        pairs = parser.pairs(text)
        if not pairs:
            if ignore_failure:
                return event
            raise ValueError(f"field {source!r} holds no key{values['value_split']}value pair")
        cleaned = []
        for key, value in pairs:
            if trim_key:
                key = key.strip(trim_key)
            if (include and key not in include) or key in exclude:
                continue
            if strip_brackets and len(value) >= 2 and _BRACKETS.get(value[0]) == value[-1]:
                value = value[1:-1]
            if trim_value:
                value = value.strip(trim_value)
            cleaned.append((prefix + key, value))
        found = {f"{target}.{key}" if target else key: value for key, value in parse_multi(cleaned).items()}
        if "@timestamp" in found:
            # Checked before anything is written, so a bad time fails the event unchanged.
            parse_timestamp(found["@timestamp"])
        for path, value in found.items():
            event.put(path, value)
        return event

    return kv
