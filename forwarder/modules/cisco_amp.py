"""The cisco module's `amp` fileset: Cisco Secure Endpoint (formerly AMP for Endpoints) events.

Filebeat's fileset polls `GET /v1/events` with httpjson; here `var.mode: rest`
(the default) renders the `cisco-secure-endpoint` input, which keeps its
cursor across restarts and paces itself by Cisco's hourly quota.
`var.mode: event_stream` renders the `cisco-secure-endpoint-stream` input
instead, which reads an existing Secure Endpoint event stream over AMQP. Either
way the events are mapped by the `cisco_secure_endpoint` processor and carry
`event.dataset: cisco.amp`.

The fileset only renders input settings from its `var.*`; the input validates
them, so a mistake is reported against the module file.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.cisco_secure_endpoint_processor import cisco_secure_endpoint_processor
from forwarder.schema.section import Section

REST_INPUT = "cisco-secure-endpoint"
STREAM_INPUT = "cisco-secure-endpoint-stream"
MODES = {"rest": REST_INPUT, "event_stream": STREAM_INPUT}
REST_VARS = ("url", "client_id", "api_key", "first_interval", "interval", "limit", "event_types", "proxy_url")
STREAM_VARS = ("amqp_url", "queue", "amqp_user", "amqp_password", "prefetch")
COMMON_VARS = ("mode", "tags", "preserve_original_event")
NESTED_VARS = {"ssl": ("certificate_authorities", "verification_mode")}
DEFAULT_TAGS = ["cisco-amp", "forwarded"]


def expand_amp(amp: Section) -> list[FilesetInput]:
    """The one input of an enabled `amp` fileset (none when disabled or when its vars cannot make one)."""
    enabled = amp.boolean("enabled", True)
    var_section = amp.section("var")
    settings = read_vars(var_section, COMMON_VARS + REST_VARS + STREAM_VARS, NESTED_VARS)
    overrides = amp.mapping("input", {})
    amp.finish()
    if not enabled:
        return []
    rendered = render_amp_input(settings, var_section)
    if rendered is None:
        return []
    data, preserve_original_event = rendered
    return [FilesetInput(
        input_id="cisco-amp",
        section=Section(merge_vars(data, overrides), var_section.path, var_section.source, var_section.problems),
        module_fields={
            "event": {"module": "cisco", "dataset": "cisco.amp"},
            "fileset": {"name": "amp"},
            "service": {"type": "cisco"},
        },
        processors=[cisco_secure_endpoint_processor(preserve_original_event)],
    )]


def render_amp_input(settings: dict[str, Any], var_section: Section) -> tuple[dict[str, Any], bool] | None:
    """The input mapping for `var.mode` and `preserve_original_event`; None (error reported) for a wrong mode."""
    settings = dict(settings)
    options = Section({key: settings.pop(key) for key in ("mode", "preserve_original_event") if key in settings},
                      var_section.path, var_section.source, var_section.problems)
    mode = options.string("mode", "rest")
    preserve_original_event = options.boolean("preserve_original_event", False)
    if mode not in MODES:
        var_section.error("mode", f"must be one of {', '.join(MODES)} (got {mode!r})")
        return None
    foreign = STREAM_VARS if mode == "rest" else REST_VARS
    misplaced = [name for name in foreign if name in settings]
    if misplaced:
        other = "event_stream" if mode == "rest" else "rest"
        var_section.error(misplaced[0], f"is a setting of var.mode: {other}, not of var.mode: {mode}; set "
                                        f"var.mode: {other} or remove var.{', var.'.join(misplaced)}")
        return None
    data: dict[str, Any] = {"type": MODES[mode], **settings}
    data.setdefault("tags", list(DEFAULT_TAGS))
    return data, preserve_original_event
