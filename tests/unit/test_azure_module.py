"""The azure module file → azure-eventhub consumers, validated the way the loader validates module inputs.

The module is not in the module table until the azure-eventhub input exists,
so these tests do what `parse_module_entry` does for it: expand the entry,
then parse each rendered input with the input's own `parse_config`.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from forwarder import __version__
from forwarder.config.inputs import COMMON_INPUT_KEYS, parse_input, parse_module_entry
from forwarder.config.loader import expand_dotted, expand_variables
from forwarder.inputs.eventhub_config import EventHubConfig, default_id, parse_config
from forwarder.inputs.eventhub_storage_config import default_container
from forwarder.modules.azure import MODULE_TYPE
from forwarder.modules.azure_processor import build_azure_ecs, ingest_pipeline, put_dataset
from forwarder.modules.base import FilesetInput
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.schema.section import Problem, Section

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "azure"
SOURCE = "modules.d/azure.yml"
HUB_KEY = "c2hhcmVkLWFjY2Vzcy1rZXktdmFsdWUtMDEyMzQ1Njc4OQ=="
STORAGE_KEY = "c3RvcmFnZS1hY2NvdW50LWtleS0wMTIzNDU2Nzg5MDEyMzQ1Njc4OQ=="
NAMESPACE_CS = (f"Endpoint=sb://contoso-logs.servicebus.windows.net/;SharedAccessKeyName=forwarder-listen;"
                f"SharedAccessKey={HUB_KEY}")
ENTRA_HUB_CS = f"{NAMESPACE_CS};EntityPath=entra-diagnostics"
SECRETS = (HUB_KEY, STORAGE_KEY)


def expand(text: str, env: dict[str, str] | None = None) -> tuple[list[tuple[FilesetInput, EventHubConfig]],
                                                                  list[Problem]]:
    problems: list[Problem] = []
    entries = yaml.safe_load(textwrap.dedent(text))
    if env is not None:
        entries = expand_variables(entries, env.get, SOURCE, "", problems)
    consumers = []
    for index, item in enumerate(entries):
        entry = Section(expand_dotted(item), str(index), SOURCE, problems)
        entry.string("module")
        for fileset_input in MODULE_TYPE.expand(entry):
            config = parse_config(fileset_input.section)
            fileset_input.section.ignore(*COMMON_INPUT_KEYS)
            fileset_input.section.finish()
            consumers.append((fileset_input, config))
    return consumers, problems


def messages(problems: list[Problem]) -> list[str]:
    text = [str(problem) for problem in problems]
    for line in text:
        for secret in SECRETS:
            assert secret not in line
    return text


VENDOR_GUIDE = f"""\
    # Entra ID diagnostic setting streaming sign-ins, audit and provisioning logs into one hub.
    - module: azure
      var.connection_string: "{NAMESPACE_CS}"
      var.consumer_group: forwarder
      var.storage_account: contosocheckpoints
      var.storage_account_key: "{STORAGE_KEY}"
      signinlogs:
        enabled: true
        var.eventhub: entra-diagnostics
      auditlogs:
        enabled: true
        var:
          eventhub: entra-diagnostics
      provisioning:
        enabled: true
        var.eventhub: entra-diagnostics
      activitylogs:
        enabled: true
        var:
          eventhub: insights-operational-logs
          start_position: latest
      platformlogs:
        enabled: false
"""


def test_vendor_guide_file_gives_one_consumer_per_hub_shared_by_its_filesets() -> None:
    consumers, problems = expand(VENDOR_GUIDE)
    assert messages(problems) == []
    by_id = {fileset_input.input_id: (fileset_input, config) for fileset_input, config in consumers}
    assert sorted(by_id) == [
        "azure-contoso-logs.servicebus.windows.net-entra-diagnostics-forwarder",
        "azure-contoso-logs.servicebus.windows.net-insights-operational-logs-forwarder",
    ]
    entra_input, entra = by_id["azure-contoso-logs.servicebus.windows.net-entra-diagnostics-forwarder"]
    assert entra_input.section.data["type"] == "azure-eventhub"
    assert entra_input.module_fields == {"event": {"module": "azure"}, "service": {"type": "azure"}}
    assert entra_input.ingest_pipeline is None
    assert entra.filesets == ["auditlogs", "signinlogs", "provisioning"]
    assert (entra.eventhub, entra.consumer_group) == ("entra-diagnostics", "forwarder")
    assert entra.fully_qualified_namespace == "contoso-logs.servicebus.windows.net"
    assert entra.connection_string == NAMESPACE_CS
    assert entra.storage_account == "contosocheckpoints"
    assert entra.storage_connection_string == (
        f"DefaultEndpointsProtocol=https;AccountName=contosocheckpoints;AccountKey={STORAGE_KEY};"
        "EndpointSuffix=core.windows.net"
    )
    assert entra.storage_container == "filebeat-auditlogs-entra-diagnostics"
    assert entra.uses_blob_checkpoints
    assert entra.start_position == "earliest"
    assert entra_input.section.data["tags"] == ["forwarded"]

    _, activity = by_id["azure-contoso-logs.servicebus.windows.net-insights-operational-logs-forwarder"]
    assert activity.filesets == ["activitylogs"]
    assert activity.storage_container == "filebeat-activitylogs-insights-operational-logs"
    assert activity.start_position == "latest"


def test_filebeat_module_file_with_per_fileset_settings_loads_unchanged() -> None:
    consumers, problems = expand(f"""\
        - module: azure
          activitylogs:
            enabled: true
            var:
              eventhub: "insights-operational-logs"
              consumer_group: "$Default"
              connection_string: "{NAMESPACE_CS}"
              storage_account: "contosocheckpoints"
              storage_account_key: "{STORAGE_KEY}"
              resource_manager_endpoint: "https://management.usgovcloudapi.net/"
          platformlogs:
            enabled: false
            var:
              eventhub: ""
              consumer_group: "$Default"
              connection_string: ""
              storage_account: ""
              storage_account_key: ""
          auditlogs:
            enabled: false
          signinlogs:
            enabled: false
    """)
    assert messages(problems) == []
    [(fileset_input, config)] = consumers
    assert fileset_input.section.path == "0.activitylogs.var"
    assert config.filesets == ["activitylogs"]
    assert config.consumer_group == "$Default"
    assert config.storage_endpoint_suffix == "core.usgovcloudapi.net"
    assert config.storage_connection_string.endswith(";EndpointSuffix=core.usgovcloudapi.net")
    assert config.storage_container == "filebeat-activitylogs-insights-operational-logs"


def test_fileset_defaults_without_eventhub_follow_azures_hub_names() -> None:
    consumers, problems = expand(f"""\
        - module: azure
          var.connection_string: "{NAMESPACE_CS}"
          signinlogs.enabled: true
          auditlogs.enabled: true
          provisioning.enabled: true
          graphactivitylogs.enabled: true
          activitylogs.enabled: true
    """)
    assert messages(problems) == []
    hubs = {config.eventhub: config.filesets for _, config in consumers}
    assert hubs == {
        "insights-operational-logs": ["activitylogs"],
        "insights-logs-auditlogs": ["auditlogs"],
        "insights-logs-signinlogs": ["signinlogs"],
        "insights-logs-provisioninglogs": ["provisioning"],
        "insights-logs-microsoftgraphactivitylogs": ["graphactivitylogs"],
    }
    assert all(config.consumer_group == "$Default" for _, config in consumers)
    assert all(not config.uses_blob_checkpoints and config.storage_container is None for _, config in consumers)


def test_a_hub_level_connection_string_names_the_hub_for_every_fileset() -> None:
    consumers, problems = expand(f"""\
        - module: azure
          var.connection_string: "{ENTRA_HUB_CS}"
          signinlogs.enabled: true
          identity_protection.enabled: true
          graphactivitylogs.enabled: true
    """)
    assert messages(problems) == []
    [(_, config)] = consumers
    assert config.eventhub == "entra-diagnostics"
    assert config.filesets == ["signinlogs", "identity_protection", "graphactivitylogs"]


def test_filesets_disabled_or_absent_render_nothing() -> None:
    consumers, problems = expand(f"""\
        - module: azure
          var.connection_string: "{NAMESPACE_CS}"
          activitylogs.enabled: false
    """)
    assert (consumers, problems) == ([], [])


def test_shipped_module_file_loads_with_its_environment_references() -> None:
    text = (REPO / "modules.d" / "azure.yml.disabled").read_text()
    env = {"AZURE_EVENTHUB_CONNECTION_STRING": NAMESPACE_CS, "AZURE_STORAGE_ACCOUNT": "contosocheckpoints",
           "AZURE_STORAGE_ACCOUNT_KEY": STORAGE_KEY}
    consumers, problems = expand(text, env)
    assert messages(problems) == []
    [(fileset_input, config)] = consumers
    assert fileset_input.input_id == "azure-contoso-logs.servicebus.windows.net-insights-operational-logs-$Default"
    assert config.filesets == ["activitylogs"]
    assert config.storage_container == "filebeat-activitylogs-insights-operational-logs"
    [entry] = yaml.safe_load(text)
    assert entry["var.connection_string"] == "${AZURE_EVENTHUB_CONNECTION_STRING}"
    assert entry["var.storage_account_key"] == "${AZURE_STORAGE_ACCOUNT_KEY}"


def test_shipped_module_file_without_its_secrets_says_which_are_missing() -> None:
    text = (REPO / "modules.d" / "azure.yml.disabled").read_text()
    _, problems = expand(text, {})
    lines = messages(problems)
    assert any("${AZURE_EVENTHUB_CONNECTION_STRING} is not set" in line for line in lines)
    assert any(line.startswith(f"{SOURCE}: 0.activitylogs.var.connection_string: is required") for line in lines)


def test_filesets_sharing_a_hub_must_agree_on_their_settings() -> None:
    consumers, problems = expand(f"""\
        - module: azure
          var.connection_string: "{NAMESPACE_CS}"
          var.eventhub: entra-diagnostics
          signinlogs.enabled: true
          auditlogs:
            enabled: true
            var.normalize: false
    """)
    assert consumers == []
    [line] = messages(problems)
    assert line.startswith(f"{SOURCE}: 0.signinlogs.var.normalize: differs from auditlogs's")
    assert "'entra-diagnostics', consumer group '$Default'" in line
    assert "own consumer group" in line


def test_filesets_sharing_a_hub_with_different_storage_keys_are_reported_without_the_keys() -> None:
    _, problems = expand(f"""\
        - module: azure
          var.connection_string: "{NAMESPACE_CS}"
          var.eventhub: entra-diagnostics
          var.storage_account: contosocheckpoints
          signinlogs:
            enabled: true
            var.storage_account_key: "{STORAGE_KEY}"
          auditlogs:
            enabled: true
            var.storage_account_key: "{STORAGE_KEY[::-1]}"
    """)
    [line] = messages(problems)
    assert STORAGE_KEY[::-1] not in line
    assert line.startswith(f"{SOURCE}: 0.signinlogs.var.storage_account_key: differs from auditlogs's")


def test_the_default_consumer_group_written_or_not_is_one_consumer() -> None:
    consumers, problems = expand(f"""\
        - module: azure
          var.connection_string: "{NAMESPACE_CS}"
          var.eventhub: entra-diagnostics
          signinlogs:
            enabled: true
            var.consumer_group: "$Default"
          auditlogs:
            enabled: true
    """)
    assert messages(problems) == []
    [(_, config)] = consumers
    assert (config.consumer_group, config.filesets) == ("$Default", ["auditlogs", "signinlogs"])


def test_different_consumer_groups_on_one_hub_are_different_consumers() -> None:
    consumers, problems = expand(f"""\
        - module: azure
          var.connection_string: "{NAMESPACE_CS}"
          var.eventhub: entra-diagnostics
          signinlogs:
            enabled: true
            var.consumer_group: siem-signins
          auditlogs:
            enabled: true
            var.normalize: false
    """)
    assert messages(problems) == []
    assert sorted((config.consumer_group, tuple(config.filesets), config.normalize) for _, config in consumers) == [
        ("$Default", ("auditlogs",), False), ("siem-signins", ("signinlogs",), True),
    ]


@pytest.mark.parametrize(("fileset", "var_text", "expected"), [
    ("platformlogs", "", "0.platformlogs.var.eventhub: is required for platformlogs"),
    ("identity_protection", "", "0.identity_protection.var.eventhub: is required for identity_protection"),
    ("signinlogs", "var.storage_account: contosocheckpoints",
     "0.signinlogs.var.storage_account_key: is required with storage_account 'contosocheckpoints'"),
    ("signinlogs", f'var.storage_account_key: "{STORAGE_KEY}"',
     "0.signinlogs.var.storage_account: is required with storage_account_key"),
    ("signinlogs", "var.start_position: newest", "0.signinlogs.var.start_position: must be one of earliest, latest"),
    ("signinlogs", "var.storage_account_container: filebeat-signins",
     "0.signinlogs.var.storage_account_container: needs a storage account"),
    ("signinlogs", "var.resource_manager_endpoint: https://management.example.org/",
     "0.signinlogs.var.resource_manager_endpoint: unknown Azure cloud 'https://management.example.org/'"),
    ("signinlogs", "var.eventhubs: entra", "0.signinlogs.var.eventhubs: unknown setting (did you mean "
                                           "'0.signinlogs.var.eventhub'?)"),
    ("signinlogs", "var.sanitizers: [{type: newlines}]",
     "0.signinlogs.var.sanitizers.0.type: must be one of new_lines, single_quotes, replace_all"),
    ("signinlogs", "var.sanitizers: [{type: replace_all, spec: {pattern: '([a-z'}}]",
     "0.signinlogs.var.sanitizers.0.spec.pattern: is not a valid regular expression"),
])
def test_mistakes_are_reported_against_the_module_file_and_key(fileset: str, var_text: str, expected: str) -> None:
    _, problems = expand(f"""\
        - module: azure
          var.connection_string: "{NAMESPACE_CS}"
          {fileset}:
            enabled: true
            {var_text}
    """)
    lines = messages(problems)
    assert any(line.startswith(f"{SOURCE}: {expected}") for line in lines), lines


def test_unknown_fileset_is_reported_with_the_closest_name() -> None:
    _, problems = expand(f"""\
        - module: azure
          var.connection_string: "{NAMESPACE_CS}"
          signinlog:
            enabled: true
    """)
    assert messages(problems) == [f"{SOURCE}: 0.signinlog: unknown setting (did you mean '0.signinlogs'?)"]


def config_from(settings: dict[str, Any]) -> tuple[EventHubConfig, list[str]]:
    problems: list[Problem] = []
    section = Section(expand_dotted(settings), "inputs.0", "forwarder.yml", problems)
    config = parse_config(section)
    section.ignore("type")
    section.finish()
    return config, messages(problems)


def test_input_defaults() -> None:
    config, problems = config_from({"eventhub": "insights-logs-signinlogs", "connection_string": NAMESPACE_CS})
    assert problems == []
    assert config.consumer_group == "$Default"
    assert config.start_position == "earliest"
    assert (config.load_balancing_interval, config.partition_ownership_expiration_interval) == (10.0, 60.0)
    assert (config.prefetch, config.max_batch_size, config.max_wait_time) == (300, 100, 5.0)
    assert (config.normalize, config.preserve_original_event, config.transport) == (True, False, "amqp")
    assert config.sanitizers == [] and config.filesets == []
    assert config.storage_connection_string is None and config.storage_container is None
    assert default_id(config) == "azure-eventhub-contoso-logs.servicebus.windows.net-insights-logs-signinlogs-$Default"
    assert HUB_KEY not in repr(config)


def test_input_with_filebeats_keys_and_ours() -> None:
    config, problems = config_from({
        "eventhub": "insights-logs-signinlogs",
        "connection_string": NAMESPACE_CS,
        "storage_account": "contosocheckpoints",
        "storage_account_key": STORAGE_KEY,
        "storage_account_container": "signins_checkpoints",
        "processor_start_position": "latest",
        "processor_update_interval": "5s",
        "processor_version": "v2",
        "migrate_checkpoint": False,
        "partition_receive_count": 50,
        "partition_receive_timeout": "2s",
        "prefetch": 1000,
        "transport": "websocket",
        "sanitize_options": ["NEW_LINES", "single_quotes"],
        "sanitizers": [{"type": "replace_all", "spec": {"pattern": "x", "replacement": "y"}}],
        "preserve_original_event": True,
        "filesets": ["signinlogs"],
    })
    assert problems == []
    assert config.start_position == "latest"
    assert (config.load_balancing_interval, config.partition_ownership_expiration_interval) == (5.0, 30.0)
    assert (config.prefetch, config.max_batch_size, config.max_wait_time) == (1000, 50, 2.0)
    assert config.transport == "websocket"
    assert config.migrate_checkpoint is False
    assert [sanitizer.kind for sanitizer in config.sanitizers] == ["new_lines", "single_quotes", "replace_all"]
    # As Filebeat does: `_` becomes `-`.
    assert config.storage_container == "signins-checkpoints"
    assert STORAGE_KEY not in repr(config)


def test_input_checks_container_names_entity_path_and_intervals() -> None:
    _, problems = config_from({
        "eventhub": "insights-logs-signinlogs",
        "connection_string": ENTRA_HUB_CS,
        "storage_account_connection_string": (f"DefaultEndpointsProtocol=https;AccountName=other;"
                                              f"AccountKey={STORAGE_KEY};EndpointSuffix=core.windows.net"),
        "storage_account": "contosocheckpoints",
        "storage_account_container": "Signins--Checkpoints",
        "processor_update_interval": "30s",
        "partition_ownership_expiration_interval": "20s",
        "start_position": "earliest",
        "processor_start_position": "latest",
    })
    assert problems == [
        "forwarder.yml: inputs.0.connection_string: is for event hub 'entra-diagnostics' (its EntityPath) but "
        "eventhub is 'insights-logs-signinlogs': use the connection string of 'insights-logs-signinlogs' or of "
        "its namespace",
        "forwarder.yml: inputs.0.start_position: says earliest but processor_start_position says latest: keep one",
        "forwarder.yml: inputs.0.partition_ownership_expiration_interval: must be longer than "
        "processor_update_interval (30s), or every partition would change hands at each balancing round",
        "forwarder.yml: inputs.0.storage_account: is 'contosocheckpoints' but storage_account_connection_string is "
        "for account 'other'",
        "forwarder.yml: inputs.0.storage_account_container: 'Signins--Checkpoints' is not a valid container name: "
        "it must not contain two hyphens in a row",
    ]


@pytest.mark.parametrize(("connection_string", "expected"), [
    ("Endpoint=sb://contoso-logs.servicebus.windows.net/;SharedAccessKeyName=listen",
     "is not an Event Hubs connection string"),
    (f"HostName=contoso.azure-devices.net;SharedAccessKey={HUB_KEY}", "is not an Event Hubs connection string"),
    ("", "is required: the Event Hubs namespace's connection string"),
    (["a", "list"], "expected a string"),
])
def test_bad_connection_strings_are_reported_without_their_value(connection_string: Any, expected: str) -> None:
    _, problems = config_from({"eventhub": "hub", "connection_string": connection_string})
    [line] = problems
    assert line.startswith(f"forwarder.yml: inputs.0.connection_string: {expected}")


def test_a_storage_key_of_the_wrong_shape_is_reported_without_its_value() -> None:
    _, problems = config_from({"eventhub": "hub", "connection_string": NAMESPACE_CS,
                               "storage_account": "contosocheckpoints", "storage_account_key": {"key1": STORAGE_KEY}})
    assert problems[0] == ("forwarder.yml: inputs.0.storage_account_key: expected a string (the value is not shown: "
                           "it is a secret)")


def test_storage_connection_string_for_a_local_emulator_and_a_bad_one() -> None:
    config, problems = config_from({"eventhub": "hub", "connection_string": NAMESPACE_CS,
                                    "storage_account_connection_string": "UseDevelopmentStorage=true"})
    assert problems == []
    assert config.storage_connection_string == "UseDevelopmentStorage=true"
    assert config.storage_container == "filebeat-hub"
    _, problems = config_from({"eventhub": "hub", "connection_string": NAMESPACE_CS,
                               "storage_account_connection_string": f"Key={STORAGE_KEY}",
                               "storage_account_key": STORAGE_KEY})
    assert [line.split(": ")[1] for line in problems] == [
        "inputs.0.storage_account_key", "inputs.0.storage_account_connection_string",
    ]


def test_default_container_names() -> None:
    assert default_container("insights-logs-signinlogs", ["signinlogs"]) == \
        "filebeat-signinlogs-insights-logs-signinlogs"
    assert default_container("Entra_Logs.v2", []) == "filebeat-entra-logs-v2"
    assert default_container("hub", ["identity_protection", "signinlogs"]) == "filebeat-identity-protection-hub"
    _, problems = config_from({"eventhub": "insights-logs-microsoftgraphactivitylogs-and-more", "filesets":
                               ["graphactivitylogs"], "connection_string": NAMESPACE_CS,
                               "storage_account_connection_string": "UseDevelopmentStorage=true"})
    assert problems == [
        "forwarder.yml: inputs.0.storage_account_container: 'filebeat-graphactivitylogs-insights-logs-"
        "microsoftgraphactivitylogs-and-more' is not a valid container name: it must be 3 to 63 characters long "
        "(it has 76) (the default name: set storage_account_container to a shorter one)"
    ]


def test_unknown_fileset_and_auth_type() -> None:
    _, problems = config_from({"eventhub": "hub", "connection_string": NAMESPACE_CS, "filesets": ["signins"],
                               "auth_type": "client_secret"})
    assert problems == [
        "forwarder.yml: inputs.0.auth_type: only connection_string is supported (got 'client_secret')",
        "forwarder.yml: inputs.0.filesets: unknown fileset 'signins' (known: activitylogs, platformlogs, auditlogs, "
        "signinlogs, identity_protection, provisioning, graphactivitylogs)",
    ]


def test_per_record_dataset_fields_and_ingest_pipeline() -> None:
    fields: dict[str, Any] = {"event": {"kind": "event", "action": "Sign-in activity"}}
    put_dataset(fields, "signinlogs")
    assert fields == {"event": {"kind": "event", "action": "Sign-in activity", "module": "azure",
                                "dataset": "azure.signinlogs"}, "fileset": {"name": "signinlogs"}}
    raw: dict[str, Any] = {"message": "{}"}
    put_dataset(raw, "platformlogs")
    assert raw["event"] == {"module": "azure", "dataset": "azure.platformlogs"}
    assert ingest_pipeline("auditlogs") == f"filebeat-{__version__}-azure-auditlogs-pipeline"


def test_each_consumer_maps_its_records_with_an_azure_ecs_processor_for_its_filesets() -> None:
    problems: list[Problem] = []
    entry = Section(expand_dotted(yaml.safe_load(textwrap.dedent(VENDOR_GUIDE))[0]), "0", SOURCE, problems)
    specs = {spec.client.input_id: spec for spec in parse_module_entry(entry)}
    assert messages(problems) == []
    [entra] = specs["azure-contoso-logs.servicebus.windows.net-entra-diagnostics-forwarder"].client.module_processors
    [activity] = specs["azure-contoso-logs.servicebus.windows.net-insights-operational-logs-forwarder"] \
        .client.module_processors
    assert entra.__name__ == activity.__name__ == "azure_ecs"
    assert entra.filesets == ["auditlogs", "signinlogs", "provisioning"]
    assert activity.filesets == ["activitylogs"]
    assert (entra.normalize, entra.preserve_original_event) == (True, False)


def test_the_input_on_its_own_names_the_azure_ecs_processor_with_its_settings() -> None:
    problems: list[Problem] = []
    section = Section({"type": "azure-eventhub", "eventhub": "hub", "connection_string": NAMESPACE_CS,
                       "filesets": ["signinlogs", "auditlogs"], "normalize": False, "preserve_original_event": True},
                      "inputs.0", "forwarder.yml", problems)
    spec = parse_input(section, 0)
    assert messages(problems) == [] and spec is not None
    [processor] = spec.client.module_processors
    assert processor.__name__ == "azure_ecs"
    assert (processor.filesets, processor.normalize, processor.preserve_original_event) == (
        ["signinlogs", "auditlogs"], False, True)


ENVELOPE = {"eventhub": "hub", "consumer_group": "$Default", "partition_id": "1", "offset": "4096",
            "sequence_number": 7, "enqueued_time": "2024-05-14T09:03:00.000Z", "partition_key": "pk"}


def input_event(record: Any) -> Event:
    """An event as the azure-eventhub input makes it for one record of a message."""
    return Event({"message": orjson.dumps(record).decode(), "azure": dict(ENVELOPE)}, 1715677380.0,
                 {"_id": "1-7-0"}, record=record)


def processor(**options: Any) -> Any:
    problems: list[Problem] = []
    built = build_azure_ecs(Section(options, "inputs.0", "forwarder.yml", problems))
    assert problems == []
    return built


def test_a_mapped_record_keeps_the_field_order_the_input_used_to_ship() -> None:
    record = orjson.loads((FIXTURES / "signinlogs_noninteractive.json").read_bytes())["records"][0]
    event = processor(filesets=["signinlogs"], preserve_original_event=True)(input_event(record))
    fields = event.fields
    raw = orjson.dumps(record).decode()
    # the mapping's fields (azure.* among them) first, then message and the dataset; the envelope is merged into
    # the mapping's azure, after its own keys
    assert list(fields)[-2:] == ["message", "fileset"] and list(fields).index("azure") < len(fields) - 2
    assert list(fields["event"])[-3:] == ["original", "module", "dataset"]
    assert fields["event"]["original"] == fields["message"] == raw
    assert fields["fileset"] == {"name": "signinlogs"} and fields["event"]["dataset"] == "azure.signinlogs"
    assert "tenant_id" in fields["azure"] and list(fields["azure"])[-len(ENVELOPE):] == list(ENVELOPE)
    assert format_timestamp(event.timestamp).startswith(record["time"][:19])
    assert event.meta == {"_id": "1-7-0"}


def test_a_raw_record_gets_its_dataset_and_filebeats_pipeline_and_keeps_the_enqueued_time() -> None:
    record = {"category": "AuditLogs", "time": "2024-05-14T09:00:00Z", "properties": {}}
    event = processor(filesets=["signinlogs"], normalize=False)(input_event(record))
    assert list(event.fields) == ["message", "event", "fileset", "azure"]
    assert event.fields["event"] == {"module": "azure", "dataset": "azure.auditlogs"}
    assert event.fields["azure"] == ENVELOPE
    assert event.timestamp == 1715677380.0
    assert event.meta == {"_id": "1-7-0", "pipeline": f"filebeat-{__version__}-azure-auditlogs-pipeline"}


def test_an_unparsable_body_gets_the_first_fileset_before_its_envelope() -> None:
    def unparsable() -> Event:
        fields = {"message": "{not json", "error": {"message": "cannot decode"}, "tags": ["_parse_failure"],
                  "azure": dict(ENVELOPE)}
        return Event(fields, 1715677380.0, {"_id": "1-7-0"}, record_kind="unparsable_body")

    event = processor(filesets=["auditlogs", "signinlogs"], normalize=False)(unparsable())
    assert list(event.fields) == ["message", "error", "tags", "event", "fileset", "azure"]
    assert event.fields["event"]["dataset"] == "azure.auditlogs"
    assert event.meta["pipeline"].endswith("-azure-auditlogs-pipeline")
    alone = processor()(unparsable())
    assert list(alone.fields) == ["message", "error", "tags", "azure"] and alone.meta == {"_id": "1-7-0"}


def test_the_processor_reports_an_unknown_fileset_at_its_key() -> None:
    problems: list[Problem] = []
    build_azure_ecs(Section({"filesets": ["signins"]}, "processors.0.azure_ecs", "forwarder.yml", problems))
    assert [str(problem) for problem in problems] == [
        "forwarder.yml: processors.0.azure_ecs.filesets: unknown fileset 'signins' (known: activitylogs, "
        "platformlogs, auditlogs, signinlogs, identity_protection, provisioning, graphactivitylogs)"
    ]


def test_the_eventhub_input_and_the_azure_module_do_not_import_each_other() -> None:
    sources = {path: "forwarder.modules" for path in (REPO / "forwarder" / "inputs").glob("eventhub*.py")}
    sources.update({path: "forwarder.inputs" for path in (REPO / "forwarder" / "modules").glob("azure*.py")})
    crossing = []
    for path, forbidden in sources.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            crossing += [f"{path.name}: {name}" for name in names if name.startswith(forbidden)]
    assert len(sources) >= 10 and crossing == []
