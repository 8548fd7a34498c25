"""What the `azure-eventhub` input and the `azure` module both need to know, kept outside both packages.

The module groups its filesets by namespace, hub and consumer group before any
input exists, so it reads connection strings the way the input does; the input
checks its `filesets` setting (and names its default checkpoint container)
with the module's fileset names. Neither package imports the other: both
import this.
"""

from __future__ import annotations

from azure.eventhub import parse_connection_string

DEFAULT_CONSUMER_GROUP = "$Default"
# Every fileset of the `azure` module, in the order the module renders them: the values of the input's `filesets`.
AZURE_FILESETS = (
    "activitylogs", "platformlogs", "auditlogs", "signinlogs", "identity_protection", "provisioning",
    "graphactivitylogs",
)


def event_hub_namespace(connection_string: str) -> str | None:
    """The namespace host (`contoso.servicebus.windows.net`, `127.0.0.1:5672`) of a connection string, or None."""
    try:
        return parse_connection_string(connection_string).fully_qualified_namespace
    except (ValueError, TypeError, AttributeError):
        return None


def connection_entity(connection_string: str) -> str | None:
    """The `EntityPath` (hub name) of a connection string, None when it has none or cannot be read."""
    try:
        return parse_connection_string(connection_string).eventhub_name or None
    except (ValueError, TypeError, AttributeError):
        return None
