"""`script`: Filebeat's JavaScript processors, run in QuickJS (the `quickjs` package from PyPI).

A script defines `process(event)` and may define `register(params)`, called
once with `params` when the config loads; `event` has Filebeat's API (`Get`,
`Put`, `Delete`, `Rename`, `AppendTo`, `Tag`, `Cancel`, `IsCancelled`).
The event crosses into the engine as JSON, `@timestamp` as ISO text and
`@metadata` as an object, and comes back the same way.

A QuickJS context must only ever be entered from the thread that made it,
so each publishing thread gets its own engine (Filebeat's "sessions"), made
the first time that thread passes an event. `timeout` interrupts a run that
takes too long. A script that
throws or times out fails the event: it keeps the fields it had before the
script, gets `tag_on_exception`, and the pipeline records `error.message`
and counts it. A script that does not load is a config error.
"""

from __future__ import annotations

import glob
import json
import logging
import threading
from pathlib import Path
from typing import Any

import quickjs

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event, format_timestamp, parse_timestamp
from forwarder.processors.script_event_js import EVENT_API_JS
from forwarder.schema.declared import DURATION, MAPPING, STRING, STRINGS, Setting, ignored, read_settings
from forwarder.schema.section import Section

log = logging.getLogger(__name__)

SCRIPT_SETTINGS = (
    Setting("lang", STRING, "javascript", "the script language", choices=("javascript", "js")),
    Setting("id", STRING, "", "a name for this script in log lines"),
    Setting("source", STRING, "", "the script itself, inline"),
    Setting("file", STRING, "", "a script file (relative paths from the config file's folder)"),
    Setting("files", STRINGS, [], "script files or glob patterns, loaded in order"),
    Setting("params", MAPPING, None, "passed to the script's `register(params)` when the config loads"),
    Setting("timeout", DURATION, None, "the longest one `process` call may run before it is interrupted and the "
            "event fails; unset = no limit, as in Filebeat", doc_default="— (no limit)", positive=True),
    Setting("tag_on_exception", STRING, "_js_exception", "the tag an event gets when the script throws or times "
            "out; `\"\"` = none"),
    *ignored("max_cached_sessions", doc="accepted for Filebeat compatibility: here each publishing thread has "
             "one engine"),
    *ignored("tag"),
)


class ScriptError(Exception):
    """The script threw, timed out, or returned something that is not an event."""


class ScriptEngine:
    """One QuickJS context with the script loaded; used only on the thread that created it."""

    def __init__(self, name: str, source: str, params: dict[str, Any] | None, timeout: float | None) -> None:
        self.name = name
        context = quickjs.Context()
        context.eval(EVENT_API_JS)
        context.eval(source)
        if not context.eval("__forwarder.check()"):
            raise ScriptError("the script defines no process(event) function")
        self._log_lines(json.loads(context.get("__forwarder_register")(json.dumps(params or {}))))
        if timeout:
            context.set_time_limit(timeout)
        self._run = context.get("__forwarder_run")
        self._context = context

    def process(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            result = json.loads(self._run(json.dumps(payload, default=str)))
        except quickjs.JSException as exc:
            message = str(exc).splitlines()[0] if str(exc) else "exception"
            if "interrupted" in message:
                message = "the script ran past its timeout and was interrupted"
            raise ScriptError(message) from None
        self._log_lines(result.pop("log"))
        return result

    def _log_lines(self, lines: list[list[str]]) -> None:
        for level, text in lines:
            log.log(logging.getLevelName(level.upper()), "script %s: %s", self.name, text)


class ScriptSessions:
    """One engine per publishing thread: a QuickJS context must never be entered from two threads.

    Like Filebeat's sessions, each engine loads the script and runs `register(params)` for
    itself. The first is made when the config loads, so a script that does not load is a config
    error; the others when a thread first publishes through this processor.
    """

    def __init__(self, name: str, source: str, params: dict[str, Any] | None, timeout: float | None) -> None:
        self._arguments = (name, source, params, timeout)
        self._local = threading.local()
        self._local.engine = ScriptEngine(*self._arguments)

    def process(self, payload: dict[str, Any]) -> dict[str, Any]:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = self._local.engine = ScriptEngine(*self._arguments)
        return engine.process(payload)


def load_source(values: Any, base: Path) -> str:
    """The script text: inline `source`, or the files (globs expanded, each sorted) in order."""
    chosen = [name for name in ("source", "file", "files") if values[name]]
    if len(chosen) != 1:
        raise ValueError("set exactly one of source, file and files")
    if values["source"]:
        return values["source"]
    patterns = [values["file"]] if values["file"] else values["files"]
    texts = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matches = sorted(glob.glob(full))
        if not matches:
            raise ValueError(f"no script file matches {full}")
        for path in matches:
            texts.append(Path(path).read_text(encoding="utf-8"))
    return "\n".join(texts)


def build_script(options: Section) -> Processor | None:
    values = read_settings(options, SCRIPT_SETTINGS)
    base = Path(options.source).parent if options.source else Path.cwd()
    try:
        source = load_source(values, base)
    except (OSError, ValueError) as exc:
        values.error("source", str(exc))
        return None
    name = values["id"] or "script"
    try:
        engine = ScriptSessions(name, source, values["params"], values["timeout"])
    except (quickjs.JSException, ScriptError) as exc:
        values.error("source", f"the script does not load: {str(exc).splitlines()[0]}")
        return None
    tag = values["tag_on_exception"]

    def script(event: Event) -> Event | None:
        payload = dict(event.fields)
        payload["@timestamp"] = format_timestamp(event.timestamp)
        payload["@metadata"] = event.meta
        try:
            result = engine.process(payload)
        except ScriptError:
            if tag:
                tags = event.fields.get("tags")
                event.fields["tags"] = [*tags, tag] if isinstance(tags, list) else [tag]
            raise
        if result["cancelled"]:
            return None
        fields = result["fields"]
        timestamp = fields.pop("@timestamp", None)
        meta = fields.pop("@metadata", None)
        if timestamp is not None:
            try:
                event.timestamp = parse_timestamp(timestamp)
            except (TypeError, ValueError):
                raise ScriptError(f"the script set @timestamp to {str(timestamp)[:60]!r}, not a time") from None
        event.meta = meta if isinstance(meta, dict) else {}
        event.fields = fields
        return event

    return script
