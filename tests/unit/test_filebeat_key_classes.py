"""Every key of Filebeat's reference config (the checked-in list) is implemented, ignored with a reason, or refused.

Each key is loaded with the real config loader (tools/filebeat_key_classes.py); the README table is what
those loads say.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from forwarder.config.settings import CliOptions, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("filebeat_key_classes", ROOT / "tools" / "filebeat_key_classes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


TOOL = _tool()


@pytest.fixture(scope="module")
def answers():
    return {result.key: result for result in TOOL.classify_all()}


def test_the_key_list_covers_the_reference_sections():
    keys = [key for _, key, _ in TOOL.read_keys()]
    assert len(keys) >= 300
    for prefix in ("filebeat.config.modules.", "filebeat.registry.", "filebeat.inputs[filestream].",
                   "filebeat.inputs[log].", "filebeat.inputs[syslog].", "filebeat.inputs[aws-s3].",
                   "filebeat.inputs[azure-eventhub].", "filebeat.inputs[o365audit].", "queue.mem.", "queue.disk.",
                   "output.logstash.", "output.file.", "output.console.", "output.elasticsearch.", "output.kafka.",
                   "output.redis.", "logging.", "path.", "http.", "monitoring.", "setup.", "seccomp."):
        assert any(key.startswith(prefix) for key in keys), prefix


def test_every_key_is_implemented_ignored_with_a_reason_or_refused(answers):
    unanswered = {key: result.detail for key, result in answers.items() if result.answer == "unanswered"}
    assert unanswered == {}
    for result in answers.values():
        assert result.answer in ("implemented", "ignored", "refused")
        assert (result.detail != "") == (result.answer != "implemented")


@pytest.mark.parametrize(("key", "answer", "said"), [
    ("filebeat.config.modules.enabled", "implemented", ""),
    ("filebeat.config.modules.path", "implemented", ""),
    ("filebeat.modules", "implemented", ""),
    ("filebeat.config.modules.reload.enabled", "ignored", "config reload is not supported; restart"),
    ("setup.ilm.enabled", "ignored", "Elasticsearch or Kibana"),
    ("max_procs", "ignored", "forwarder.workers"),
    ("logging.to_syslog", "ignored", "syslog"),
    ("filebeat.inputs[filestream].close.reader.on_eof", "ignored", "stay open"),
    ("output.kafka.hosts", "refused", "events would not be delivered there"),
    ("output.elasticsearch.hosts", "refused", "events would not be delivered there"),
    ("filebeat.inputs[filestream].take_over", "refused", "forwarder import-registry"),
])
def test_the_answers_sites_care_about(answers, key, answer, said):
    assert answers[key].answer == answer
    assert said in answers[key].detail


def test_an_ignored_key_asking_for_what_the_forwarder_does_anyway_is_not_reported(tmp_path):
    assert TOOL.classify("", "filebeat.config.modules.reload.enabled", False, tmp_path).answer == "implemented"
    assert TOOL.classify("", "logging.to_syslog", False, tmp_path).answer == "implemented"
    assert TOOL.classify("", "logging.to_syslog", True, tmp_path).answer == "ignored"
    # The reload period matters only with reload enabled (the key list sets both; here the period alone).
    config = TOOL.config_setting("filebeat.config.modules.reload.period", "10s", tmp_path)
    assert config["filebeat"]["config"]["modules"]["reload"]["enabled"] is True
    del config["filebeat"]["config"]["modules"]["reload"]["enabled"]
    path = tmp_path / "filebeat.yml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    settings = load_settings(CliOptions(config_files=[str(path)], path_home=str(tmp_path)))
    assert not any("reload" in warning for warning in settings.warnings)


def test_the_readme_table_is_what_the_loads_say(answers):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split(TOOL.BEGIN, 1)[1].split(TOOL.END, 1)[0].strip()
    assert table == TOOL.render(list(answers.values())), "run python tools/filebeat_key_classes.py"


def test_inline_filebeat_modules_run_like_module_files_and_take_module_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("O365_CLIENT_SECRET", "o365-secret-value")
    path = tmp_path / "filebeat.yml"
    path.write_text("""\
filebeat.modules:
- module: o365
  audit:
    enabled: true
    var.application_id: 00000000-0000-0000-0000-000000000001
    var.tenants: [{id: 00000000-0000-0000-0000-000000000002, name: contoso.onmicrosoft.com}]
    var.client_secret: ${O365_CLIENT_SECRET}
output.logstash.hosts: ["127.0.0.1:5044"]
""")
    path.chmod(0o600)
    settings = load_settings(CliOptions(config_files=[str(path)], path_home=str(tmp_path),
                                        module_overrides=["o365.audit.var.api.poll_interval=1m"]))
    assert [spec.client.input_type for spec in settings.inputs] == ["o365audit"]
    assert settings.inputs[0].config.poll_interval == 60.0
    assert "o365-secret-value" in settings.secrets
    assert settings.warnings == []
