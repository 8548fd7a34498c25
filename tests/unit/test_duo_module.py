"""The duo module file → one `duo` input per enabled fileset, its settings, fields and processors.

The expansion is checked on the module alone (what it renders for the input
to validate); `forwarder test config` on a module file checks the whole
path once the `duo` input is registered.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from forwarder.config.loader import expand_dotted, expand_variables
from forwarder.modules.base import FilesetInput
from forwarder.modules.duo import FILESETS, MODULE_TYPE
from forwarder.pipeline.event import Event
from forwarder.pipeline.json_text import json_text
from forwarder.schema.section import Problem, Section

REPO = Path(__file__).resolve().parents[2]
SOURCE = "modules.d/duo.yml"
SECRET = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
IKEY = "DIWJ8X6AEYOR5OMC6TQ1"
HOST = "api-e4d8f1a2.duosecurity.com"
AUTH_RECORD = {"txid": "t-1", "result": "success", "isotimestamp": "2024-05-02T13:43:58.335969+00:00",
               "user": {"name": "narroway@example.com"}}


def expand(text: str, env: dict[str, str] | None = None) -> tuple[list[FilesetInput], list[str]]:
    problems: list[Problem] = []
    entries = yaml.safe_load(textwrap.dedent(text))
    if env is not None:
        entries = expand_variables(entries, env.get, SOURCE, "", problems)
    inputs = []
    for index, item in enumerate(entries):
        entry = Section(expand_dotted(item), str(index), SOURCE, problems)
        entry.string("module")
        inputs.extend(MODULE_TYPE.expand(entry))
    messages = [str(problem) for problem in problems]
    assert not any(SECRET in message for message in messages)
    return inputs, messages


def by_id(inputs: list[FilesetInput]) -> dict[str, FilesetInput]:
    return {fileset_input.input_id: fileset_input for fileset_input in inputs}


VENDOR_GUIDE = f"""\
    - module: duo
      var.api_hostname: {HOST}
      var.integration_key: {IKEY}
      var.secret_key: "{SECRET}"
      var.ssl.certificate_authorities: [/etc/forwarder/corporate-ca.pem]
      auth:
        enabled: true
        var.initial_lookback: 72h
      admin:
        enabled: true
        var:
          poll_interval: 5m
          normalize: false
      telephony:
        enabled: false
      trust_monitor:
        enabled: true
        var.preserve_original_event: true
        var.proxy_url: http://proxy.example.com:3128
        input:
          tags: [duo-trust]
"""


def test_each_enabled_fileset_renders_one_duo_input_with_its_stream() -> None:
    inputs, problems = expand(VENDOR_GUIDE)
    assert problems == []
    rendered = by_id(inputs)
    assert list(rendered) == ["duo-auth", "duo-admin", "duo-trust_monitor"]
    common = {"type": "duo", "api_hostname": HOST, "integration_key": IKEY, "secret_key": SECRET,
              "ssl": {"certificate_authorities": ["/etc/forwarder/corporate-ca.pem"]}}
    assert rendered["duo-auth"].section.data == {**common, "initial_lookback": "72h", "streams": ["auth"]}
    assert rendered["duo-admin"].section.data == {**common, "poll_interval": "5m", "streams": ["admin"]}
    assert rendered["duo-trust_monitor"].section.data == {
        **common, "proxy_url": "http://proxy.example.com:3128", "streams": ["trust_monitor"], "tags": ["duo-trust"]}
    assert rendered["duo-auth"].section.path == "0.auth.var"


def test_module_fields_name_the_cisco_duo_dataset_and_no_ingest_pipeline() -> None:
    inputs, _ = expand(VENDOR_GUIDE)
    for fileset_input in inputs:
        fileset = fileset_input.section.data["streams"][0]
        assert fileset_input.module_fields == {
            "event": {"module": "cisco_duo", "dataset": f"cisco_duo.{fileset}"},
            "fileset": {"name": fileset}, "service": {"type": "cisco_duo"}}
        assert fileset_input.ingest_pipeline is None


def mapped_by(fileset_input: FilesetInput, record: dict[str, Any], kind: str) -> Event:
    event = Event({"message": json_text(record)}, timestamp=1.0, record=record, record_kind=kind)
    for processor in fileset_input.processors:
        event = processor(event)
    return event


def test_normalize_and_preserve_original_event_choose_the_processors() -> None:
    rendered = by_id(expand(VENDOR_GUIDE)[0])
    auth = mapped_by(rendered["duo-auth"], AUTH_RECORD, "auth")
    assert auth.fields["event"]["outcome"] == "success" and "original" not in auth.fields["event"]
    assert auth.fields["user"] == {"name": "narroway@example.com"}
    assert rendered["duo-admin"].processors == []
    trust = mapped_by(rendered["duo-trust_monitor"], {"sekey": "SE1", "surfaced_timestamp": 1714667605269},
                      "trust_monitor")
    assert trust.fields["event"] == {"kind": "event", "id": "SE1", "original": trust.fields["message"]}
    assert trust.timestamp == 1714667605.269
    inputs, problems = expand(VENDOR_GUIDE.replace("normalize: false", "normalize: false\n          "
                                                   "preserve_original_event: true"))
    assert problems == []
    raw_kept = by_id(inputs)["duo-admin"]
    event = mapped_by(raw_kept, {"action": "admin_login"}, "admin")
    assert event.fields == {"message": '{"action":"admin_login"}',
                            "event": {"original": '{"action":"admin_login"}'}}


def test_the_shipped_file_enables_every_fileset_with_the_secret_from_the_keystore_or_environment() -> None:
    shipped = (REPO / "modules.d" / "duo.yml.disabled").read_text()
    inputs, problems = expand(shipped, env={"DUO_SECRET_KEY": SECRET})
    assert problems == []
    assert [fileset_input.input_id for fileset_input in inputs] == [f"duo-{fileset}" for fileset in FILESETS]
    assert all(fileset_input.section.data["secret_key"] == SECRET for fileset_input in inputs)


def test_nothing_is_rendered_for_a_module_without_enabled_filesets() -> None:
    assert expand(f"- module: duo\n  var.api_hostname: {HOST}\n  auth.enabled: false\n") == ([], [])


def test_an_unknown_variable_or_fileset_points_at_the_known_name() -> None:
    text = VENDOR_GUIDE.replace("var.initial_lookback: 72h", "var.inital_lookback: 72h").replace(
        "      telephony:", "      telephone:").replace("var.secret_key:", "var.secret:")
    _, problems = expand(text)
    assert problems == [
        f"{SOURCE}: 0.var.secret: unknown setting (did you mean '0.var.secret_key'?)",
        f"{SOURCE}: 0.auth.var.inital_lookback: unknown setting (did you mean '0.auth.var.initial_lookback'?)",
        f"{SOURCE}: 0.telephone: unknown setting (did you mean '0.telephony'?)",
    ]


def test_a_mapping_variable_of_the_wrong_type_is_reported_against_the_fileset() -> None:
    _, problems = expand(VENDOR_GUIDE.replace("normalize: false", "normalize: sometimes"))
    assert len(problems) == 1 and problems[0].startswith(f"{SOURCE}: 0.admin.var.normalize: ")


def duo_input_registered() -> bool:
    names = {point.name for point in entry_points(group="forwarder.inputs")}
    return "duo" in names and importlib.util.find_spec("forwarder.inputs.duo") is not None


@pytest.mark.skipif(not duo_input_registered(),
                    reason="the `duo` input (helper D1's forwarder/inputs/duo.py) is not registered yet")
def test_forwarder_test_config_accepts_a_duo_module_file_and_names_a_misspelt_variable(tmp_path: Path) -> None:
    config = tmp_path / "conf"
    (config / "modules.d").mkdir(parents=True)
    (config / "forwarder.yml").write_text("output.file.path: ${path.data}/events\n")
    module_file = config / "modules.d" / "duo.yml"
    # Without the CA bundle line: the input may open the file it names.
    module_file.write_text("\n".join(line for line in textwrap.dedent(VENDOR_GUIDE).splitlines()
                                     if "certificate_authorities" not in line))
    for path in (config / "forwarder.yml", module_file):
        os.chmod(path, 0o600)

    def test_config() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "forwarder", "test", "config", "--path.config", str(config),
                               "--path.home", str(tmp_path)], check=False, capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)

    result = test_config()
    assert (result.returncode, result.stdout.strip()) == (0, "Config OK"), result.stderr
    module_file.write_text(module_file.read_text().replace("var.initial_lookback", "var.initial_lokback"))
    result = test_config()
    assert result.returncode == 1
    assert "duo.yml: 0.auth.var.initial_lokback: unknown setting (did you mean" in result.stderr
    assert SECRET not in result.stderr + result.stdout
