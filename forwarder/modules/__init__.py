"""The module table: `- module: NAME` in modules.d files is looked up here."""

from __future__ import annotations

from forwarder.modules import azure, entraid, o365
from forwarder.modules.base import ModuleType

MODULE_TYPES: dict[str, ModuleType] = {
    module.name: module for module in (entraid.MODULE_TYPE, o365.MODULE_TYPE, azure.MODULE_TYPE)
}
