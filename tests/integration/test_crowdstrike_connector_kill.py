"""The crowdstrike module against a writer that behaves like the Falcon SIEM Connector, both SIGKILLed three times.

The writer (this file run as `python -m tests.integration.test_crowdstrike_connector_kill DIR ...`) appends
pretty-printed events to DIR/output, each in several write() calls, rotates the file (rename + new file) every
ROTATE_EVERY events, and checkpoints its stream position every CHECKPOINT_EVERY events, so after a restart it
writes again what came after its checkpoint, as the connector does. In each kill round it stops in the middle of
an object (mid-line, at a line end, or inside an array) and is killed there, together with the forwarder; its next
run appends new objects right after the cut.

Every event must reach the output decoded, whole, with `@metadata._id` = customerIDString-offset (copies only
with the same id and content); the only `_parse_failure` events are the cut objects, raw, each a prefix of the
object that was being written (a resume inside an object would show up as a failure that is not).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

CUSTOMER = "8f6a2c1e4b7d4e0f9a3b5c7d9e1f2a3b"
TOTAL = 240
ROTATE_EVERY = 25
CHECKPOINT_EVERY = 7
EVENT_TYPES = ("UserActivityAuditEvent", "AuthActivityAuditEvent", "DetectionSummaryEvent", "FirewallMatchEvent")
REPO = Path(__file__).resolve().parents[2]


def falcon_event(offset: int) -> dict:
    """The event at one stream offset; the same every time it is written."""
    return {
        "metadata": {"customerIDString": CUSTOMER, "offset": offset, "eventType": EVENT_TYPES[offset % 4],
                     "eventCreationTime": 1686845212000 + offset * 1000, "version": "1.0"},
        "event": {"UserId": f"user{offset}@example.com", "UserIp": f"10.1.{offset // 250}.{offset % 250}",
                  "OperationName": "detection_update", "ServiceName": "detections", "Success": offset % 3 != 0,
                  "ComputerName": f"HOST-{offset}", "Note": "a } and a { in a string, and a \" too",
                  "AuditKeyValues": [{"Key": f"key{n}", "ValueString": f"value {offset}.{n} [{'{'}]"}
                                     for n in range(6)]},
    }


def pretty(offset: int) -> bytes:
    return (json.dumps(falcon_event(offset), indent=4) + "\n").encode()


# ----- the writer --------------------------------------------------------------------


def cut_point(text: bytes, chooser: random.Random) -> int:
    """Where a killed writer stops inside `text`: mid-line, right after a newline, or inside an array."""
    kind = chooser.choice(("mid line", "line end", "in array"))
    if kind == "in array":
        element_end = text.index(b"},\n", text.index(b'"AuditKeyValues"')) + 3
        return element_end + chooser.randint(0, 8)
    position = chooser.randint(20, len(text) - 20)
    return text.index(b"\n", position) + 1 if kind == "line end" else position


def run_writer(directory: Path, cut_after: int | None, seed: int) -> None:
    chooser = random.Random(seed)
    checkpoint = directory / "connector.checkpoint"
    offset = json.loads(checkpoint.read_text()) if checkpoint.exists() else 0
    output = directory / "output"
    fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    written = 0
    while offset < TOTAL:
        if offset and offset % ROTATE_EVERY == 0 and os.fstat(fd).st_size > 0:
            os.close(fd)
            os.rename(output, directory / f"output.{offset:04d}.{os.getpid()}")
            fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        text = pretty(offset)
        if cut_after is not None and written == cut_after:
            os.write(fd, text[:cut_point(text, chooser)])
            (directory / "cut").write_text(str(offset))
            while True:
                signal.pause()  # killed here, mid-object
        pieces = sorted(chooser.sample(range(1, len(text)), 3))
        for start, end in zip([0, *pieces], [*pieces, len(text)], strict=True):
            os.write(fd, text[start:end])
            time.sleep(0.0005)  # the connector's pace, not a synchronisation
        offset += 1
        written += 1
        if offset % CHECKPOINT_EVERY == 0:
            (directory / "checkpoint.tmp").write_text(json.dumps(offset))
            os.replace(directory / "checkpoint.tmp", checkpoint)
    (directory / "done").write_text("done")


# ----- the test --------------------------------------------------------------------------


def start_writer(directory: Path, cut_after: int | None, seed: int) -> subprocess.Popen:
    args = [sys.executable, "-m", "tests.integration.test_crowdstrike_connector_kill", str(directory), str(seed)]
    if cut_after is not None:
        args.append(str(cut_after))
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_connector_and_forwarder_killed_three_times_lose_and_split_nothing(tmp_path):
    connector = tmp_path / "falconhoseclient"
    connector.mkdir()
    home = tmp_path / "home"
    (home / "modules.d").mkdir(parents=True)
    (home / "modules.d" / "crowdstrike.yml").write_text(f"""\
- module: crowdstrike
  falcon:
    var.paths: ["{connector}/output*"]
    input:
      prospector.scanner.check_interval: 100ms
""")
    forwarder = ForwarderProcess(home, """
        forwarder.config.modules.path: ${path.config}/modules.d/*.yml
        forwarder.registry.flush: 0s
        queue.mem.flush.timeout: 10ms
        output.file.path: ${path.data}/events
        logging.metrics.enabled: false
        """)
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)

    def decoded_ids() -> set[str]:
        return {e["@metadata"]["_id"] for e in output_events(home) if "_parse_failure" not in e.get("tags", [])}

    writer = None
    cuts = []
    try:
        for kill in range(3):
            before = len(decoded_ids())
            # At least 12 events before the cut, of which at most CHECKPOINT_EVERY - 1 are rewrites of delivered ones.
            writer = start_writer(connector, chooser.randint(12, 40), chooser.randrange(1 << 30))
            forwarder.start()
            wait_until(lambda before=before: len(decoded_ids()) >= before + 5, 60,
                       f"the forwarder reading in round {kill} (seed {seed})")
            # Both die in one round, in either order: the forwarder while it reads, the writer inside an object.
            forwarder_first = chooser.random() < 0.5
            if forwarder_first:
                forwarder.kill_hard()
            wait_until((connector / "cut").exists, 60, f"the writer's cut in round {kill} (seed {seed})")
            writer.send_signal(signal.SIGKILL)
            if not forwarder_first:
                forwarder.kill_hard()
            writer.wait(timeout=30)
            cuts.append(int((connector / "cut").read_text()))
            (connector / "cut").unlink()
        writer = start_writer(connector, None, chooser.randrange(1 << 30))
        forwarder.start()
        assert writer.wait(timeout=120) == 0
        assert (connector / "done").exists()
        wait_until(lambda: len(decoded_ids()) >= TOTAL, 120, f"all {TOTAL} events (seed {seed})")
        assert forwarder.terminate() == 0
    finally:
        if writer is not None and writer.poll() is None:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
        forwarder.stop()

    events = output_events(home)
    decoded = [e for e in events if "_parse_failure" not in e.get("tags", [])]
    failures = [e for e in events if "_parse_failure" in e.get("tags", [])]
    assert {e["@metadata"]["_id"] for e in decoded} == {f"{CUSTOMER}-{n}" for n in range(TOTAL)}, f"seed {seed}"
    seen: dict[str, dict] = {}
    for event in decoded:
        offset = int(event["@metadata"]["_id"].rsplit("-", 1)[1])
        expected = falcon_event(offset)
        assert event["crowdstrike"]["metadata"]["offset"] == offset
        assert event["crowdstrike"]["event"]["AuditKeyValues"] == expected["event"]["AuditKeyValues"], "split event"
        assert event["crowdstrike"]["event"]["Note"] == expected["event"]["Note"]
        assert event["event"]["dataset"] == "crowdstrike.falcon"
        assert event["@timestamp"].startswith("2023-06-15T"), event["@timestamp"]
        copy = {key: event[key] for key in ("crowdstrike", "event", "user", "@timestamp") if key in event}
        assert seen.setdefault(event["@metadata"]["_id"], copy) == copy, "a replay must be the same event"
    texts = [pretty(offset).decode() for offset in cuts]
    for failure in failures:
        assert failure["message"].startswith("{") and any(t.startswith(failure["message"]) for t in texts), (
            f"a failure that is not a cut object (a resume inside an object?): {failure['message'][:200]!r}")
    assert len({f["@metadata"]["_id"] for f in failures}) <= len(cuts)
    assert len(decoded) <= TOTAL + 3 * (CHECKPOINT_EVERY + 64), f"{len(decoded) - TOTAL} copies (seed {seed})"


if __name__ == "__main__":
    run_writer(Path(sys.argv[1]), int(sys.argv[3]) if len(sys.argv) > 3 else None, int(sys.argv[2]))
