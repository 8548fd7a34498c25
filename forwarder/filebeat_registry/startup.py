"""Import on a first start: `--path.data` holds Filebeat's registry and ours is still empty."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from forwarder.config.inputs import InputSpec
from forwarder.filebeat_registry.memlog import MemlogError
from forwarder.filebeat_registry.plan import marker, plan_import
from forwarder.registry import Registry

log = logging.getLogger("forwarder.filebeat_registry")


def import_on_first_start(registry: Registry, registry_root: Path, specs: list[InputSpec]) -> None:
    """Fills an empty registry from `<registry_root>/filebeat` (Filebeat's default place under the same
    data path). A damaged one is one warning: the forwarder starts from scratch, as it says."""
    store = registry_root / "filebeat"
    try:
        if len(registry) or not (store / "meta.json").is_file():
            return
        plan = plan_import(store, specs)
    except (MemlogError, OSError) as exc:
        log.warning("Filebeat's registry was not imported: %s. Starting from scratch: files are read from their "
                    "start and API inputs from their initial lookback", exc)
        return
    registry.commit({**plan.entries, **marker(plan, time.time())})
    registry.flush()
    summary = "; ".join(plan.imported) or "nothing to carry over"
    left = (f"; {len(plan.not_imported)} not imported ({'; '.join(plan.not_imported)})"
            if plan.not_imported else "")
    log.info("imported %d position(s) from Filebeat's registry %s: %s%s", len(plan.imported), store, summary, left)
