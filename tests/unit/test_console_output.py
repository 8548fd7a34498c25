"""`output.console` prints the same JSON as the other outputs, one event per line or indented."""

from __future__ import annotations

import json
import time

from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.console import ConsoleOutput, parse_config
from forwarder.pipeline.event import Event
from forwarder.schema.section import Section
from forwarder.stats import OutputStats


def run_console(harness, capfdbinary, pretty: bool) -> str:
    config = parse_config(Section({"pretty": pretty}, "output.console", "test", []))
    output = ConsoleOutput(config, EventEncoder(), OutputStats("console"))
    output.start(harness.queue)
    client = harness.connect("syslog", input_id="c")
    client.publish(Event({"message": "first"}), cursor={"s": 1})
    client.publish(Event({"message": "second"}), cursor={"s": 2})
    deadline = time.monotonic() + 10
    while harness.registry.get("syslog::c::s") != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    output.stop(2)
    return capfdbinary.readouterr().out.decode()


def test_one_json_event_per_line(harness, capfdbinary):
    lines = run_console(harness, capfdbinary, pretty=False).splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["first", "second"]
    assert harness.registry.get("syslog::c::s") == 2


def test_pretty_output_is_indented_json(harness, capfdbinary):
    text = run_console(harness, capfdbinary, pretty=True)
    assert '\n  "message": "first"' in text
    decoder, position, messages = json.JSONDecoder(), 0, []
    while position < len(text.rstrip()):
        document, position = decoder.raw_decode(text, position)
        messages.append(document["message"])
        while position < len(text) and text[position].isspace():
            position += 1
    assert messages == ["first", "second"]


def test_settings_are_checked_with_their_key_path():
    problems = []
    section = Section({"codec": {"json": {}}, "bulk_max_size": 0, "prety": True}, "output.console", "f.yml", problems)
    config = parse_config(section)
    section.finish()
    assert [str(p) for p in problems] == [
        "f.yml: output.console.bulk_max_size: must be at least 1 (got 0)",
        "f.yml: output.console.prety: unknown setting (did you mean 'output.console.pretty'?)",
    ]
    assert (config.pretty, config.index) == (False, "filebeat")


def test_pretty_output_of_an_event_that_is_only_its_document(harness, capfdbinary):
    config = parse_config(Section({"pretty": True}, "output.console", "test", []))
    output = ConsoleOutput(config, EventEncoder(), OutputStats("console"))
    output.start(harness.queue)
    read_back = Event.from_encoded(EventEncoder().encode(Event({"message": "from disk"}, 1_700_000_000.0)))
    harness.queue.put(read_back)
    # Each readouterr() takes what was written since the last one: the document may come in several parts.
    text = ""
    deadline = time.monotonic() + 30
    while not ("from disk" in text and text.rstrip().endswith("}")) and time.monotonic() < deadline:
        time.sleep(0.01)
        text += capfdbinary.readouterr().out.decode()
    output.stop(2)
    assert '\n  "message": "from disk"' in text and '"@timestamp": "2023-11-14T22:13:20.000Z"' in text
