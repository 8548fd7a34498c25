"""script: Filebeat's documented JavaScript examples, the event API, timeouts, exceptions and `when`."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from forwarder.config.loader import expand_dotted
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.processors import build_processors
from forwarder.processors.script import ScriptError
from forwarder.schema.section import Section
from tests.unit.test_processors import build, build_with_problems, run


def test_documented_inline_example_tags_the_event():
    processors = build("""
processors:
  - script:
      lang: javascript
      source: >
        function process(event) {
            event.Tag("js");
        }
""")
    assert run(processors, {"message": "m"}).fields == {"message": "m", "tags": ["js"]}


def test_documented_register_params_example_cancels_below_the_threshold():
    processors = build("""
processors:
  - script:
      lang: javascript
      id: my_filter
      params:
        threshold: 15
      source: >
        var params = {threshold: 42};
        function register(scriptParams) {
            params = scriptParams;
        }
        function process(event) {
            if (event.Get("severity") < params.threshold) {
                event.Cancel();
            }
        }
""")
    assert run(processors, {"severity": 10}) is None
    assert run(processors, {"severity": 20}).fields == {"severity": 20}


def test_event_api_get_put_delete_rename_append_to_and_timestamp():
    processors = build(r"""
processors:
  - script:
      lang: js
      source: |
        function process(event) {
            var old = event.Put("user.name", event.Get("raw.user").toLowerCase());
            event.Put("old", old);
            event.Delete("raw.user");
            event.Rename("raw.ip", "source.ip");
            event.AppendTo("related.user", event.Get("user.name"));
            event.AppendTo("related.user", "root");
            event.AppendTo("related.user", "root");
            event.Put("@timestamp", "2024-01-02T03:04:05.678Z");
            event.Put("@metadata._id", "abc");
            event.Put("seen", event.Get("log.level") + "/" + event.Get("missing"));
        }
      when.has_fields: [raw]
""")
    event = run(processors, {"raw": {"user": "ALICE", "ip": "10.0.0.1"}, "log.level": "warn"})
    assert event.fields == {"raw": {}, "user": {"name": "alice"}, "old": None, "source": {"ip": "10.0.0.1"},
                            "related": {"user": ["alice", "root"]}, "log.level": "warn", "seen": "warn/null"}
    assert format_timestamp(event.timestamp) == "2024-01-02T03:04:05.678Z"
    assert event.meta == {"_id": "abc"}
    assert run(processors, {"other": 1}).fields == {"other": 1}


def test_files_are_loaded_relative_to_the_config(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "a_helpers.js").write_text("function upper(s) { return s.toUpperCase(); }\n")
    (tmp_path / "scripts" / "b_main.js").write_text("function process(e) { e.Put('m', upper(e.Get('m'))); }\n")
    problems: list = []
    data = expand_dotted(yaml.safe_load("processors:\n  - script: {lang: javascript, files: ['scripts/*.js']}\n"))
    processors = build_processors(Section(data, "", str(tmp_path / "forwarder.yml"), problems).sections("processors"))
    assert problems == []
    assert run(processors, {"m": "hi"}).fields == {"m": "HI"}


def test_an_exception_fails_the_event_tagged_and_unchanged():
    processors = build("""
processors:
  - script:
      lang: javascript
      source: 'function process(e) { e.Put("half", 1); throw new Error("bad record"); }'
""")
    event = Event({"message": "m"})
    with pytest.raises(ScriptError, match="bad record"):
        processors[0](event)
    assert event.fields == {"message": "m", "tags": ["_js_exception"]}


def test_timeout_interrupts_a_runaway_script_and_the_engine_keeps_working():
    processors = build("""
processors:
  - script:
      lang: javascript
      timeout: 200ms
      tag_on_exception: slow
      source: |
        function process(e) { if (e.Get("loop")) { while (true) {} } e.Tag("done"); }
""")
    event = Event({"loop": True})
    with pytest.raises(ScriptError, match="timeout"):
        processors[0](event)
    assert event.fields["tags"] == ["slow"]
    assert run(processors, {"loop": False}).fields["tags"] == ["done"]


@pytest.mark.parametrize(("options", "expected"), [
    ("{lang: javascript, source: 'function nope() {}'}", "no process(event) function"),
    ("{lang: javascript, source: 'function process( {'}", "does not load"),
    ("{lang: javascript, file: /nonexistent/x.js}", "no script file matches"),
    ("{lang: javascript}", "exactly one of source, file and files"),
    ("{lang: lua, source: 'x'}", "lang"),
])
def test_scripts_that_cannot_load_are_config_errors(options, expected):
    _, problems = build_with_problems(f"processors:\n  - script: {options}\n")
    assert problems and expected in " ".join(problems)


def test_publishing_threads_each_get_their_own_engine():
    processors = build("""
processors:
  - script:
      lang: javascript
      source: |
        var calls = 0;
        function process(e) { calls++; e.Put("double", e.Get("n") * 2); e.Put("calls", calls); }
""")

    all_started = threading.Barrier(4, timeout=30)

    def publish(offset: int) -> list[tuple[int, int]]:
        all_started.wait()  # four distinct threads, publishing at the same time
        results = []
        for n in range(offset, offset + 300):
            fields = run(processors, {"n": n}).fields
            results.append((fields["double"], fields["calls"]))
        return results

    with ThreadPoolExecutor(4) as pool:
        per_thread = list(pool.map(publish, [0, 1000, 2000, 3000]))
    for offset, results in zip([0, 1000, 2000, 3000], per_thread, strict=True):
        assert [double for double, _ in results] == [2 * n for n in range(offset, offset + 300)]
        # Each thread's engine counts only that thread's events.
        assert [calls for _, calls in results] == list(range(1, 301))
