"""`forwarder.workers`: event building in worker processes, through the real process and a Lumberjack receiver."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from pathlib import Path

from tests.fakes.lumberjack_server import LumberjackServer
from tests.integration.forwarder_process import ForwarderProcess, wait_until
from tests.integration.test_logstash_delivery import LineCounter, numbered_file

CONFIG = """
    forwarder.inputs:
      - type: filestream
        id: numbered
        paths: ["{path}"]
        prospector.scanner.check_interval: 0.1s
        processors:
          - drop_event:
              when.regexp.message: "^line \\\\d+5 "
    forwarder.workers: {workers}
    queue.mem:
      events: 4096
      flush.min_events: 1024
      flush.timeout: 50ms
    output.logstash:
      hosts: ["{address}"]
      timeout: 5s
      backoff.init: 0.2s
      backoff.max: 1s
    http.enabled: true
    http.host: 127.0.0.1
    http.port: 0
    logging.metrics.enabled: false
"""


def stats(forwarder: ForwarderProcess) -> dict:
    listening = forwarder.wait_for_log("monitoring endpoint listening")["message"]
    url = re.search(r"http://\S+/stats", listening).group(0)
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def descendants(pid: int) -> set[int]:
    """Live processes under `pid` (the zygote and the workers it forked)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found = {pid}
    while True:
        more = {child for child, parent in parents.items() if parent in found} - found
        if not more:
            return found - {pid}
        found |= more


def sent_lines(total: int) -> set[int]:
    """The lines the drop_event processor lets through: those whose number does not end in 5."""
    return {n for n in range(total) if n % 10 != 5}


def test_a_worker_killed_with_sigkill_is_replaced_and_nothing_is_lost(tmp_path):
    total = 200_000
    source = tmp_path / "numbered.log"
    numbered_file(source, total)
    counter = LineCounter()
    with LumberjackServer(store_events=False, decode_json=False, on_window=counter) as server:
        forwarder = ForwarderProcess(tmp_path / "home", CONFIG.format(path=source, workers=2, address=server.address))
        try:
            forwarder.start()
            wait_until(lambda: counter.distinct() >= 10_000, 60, "the first lines")
            first = stats(forwarder)["workers"]
            assert first["count"] == 2 and len(first["pids"]) == 2
            assert set(first["pids"]) <= descendants(forwarder.process.pid)
            killed = []
            for victim in first["pids"]:
                progress = counter.distinct()
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
                wait_until(lambda progress=progress: counter.distinct() >= progress + 10_000, 60,
                           f"progress after killing worker {victim}")
            wait_until(lambda: counter.distinct() >= len(sent_lines(total)), 120, "every line")
            after = stats(forwarder)
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert server.errors == []
    assert counter.numbers == sorted(sent_lines(total)), \
        "nothing lost or sent twice, nothing the processor dropped sent, and in file order whichever worker was faster"
    workers = after["workers"]
    assert workers["restarts"] >= 2, workers
    assert not set(workers["pids"]) & set(killed), "each killed worker was replaced by a new process"
    assert after["inputs"]["numbered"]["filtered"] == total - len(sent_lines(total)), \
        "the workers' counters reach /stats"
    replaced = [line["message"] for line in forwarder.log_lines() if "restarted as pid" in line.get("message", "")]
    assert len(replaced) >= 2, replaced


def test_killing_the_forwarder_ends_its_worker_processes(tmp_path):
    source = tmp_path / "numbered.log"
    numbered_file(source, 1_000)
    counter = LineCounter()
    with LumberjackServer(store_events=False, decode_json=False, on_window=counter) as server:
        forwarder = ForwarderProcess(tmp_path / "home", CONFIG.format(path=source, workers=2, address=server.address))
        try:
            forwarder.start()
            wait_until(lambda: counter.distinct() >= len(sent_lines(1_000)), 60, "every line")
            helpers = descendants(forwarder.process.pid)
            assert len(helpers) == 3, "a zygote and two workers"
            forwarder.kill_hard()
            wait_until(lambda: not any(Path(f"/proc/{pid}").exists() and _running(pid) for pid in helpers), 10,
                       "the zygote and the workers to exit with the forwarder")
        finally:
            forwarder.stop()


def test_workers_1_runs_everything_in_one_process(tmp_path):
    source = tmp_path / "numbered.log"
    numbered_file(source, 2_000)
    counter = LineCounter()
    with LumberjackServer(store_events=False, decode_json=False, on_window=counter) as server:
        forwarder = ForwarderProcess(tmp_path / "home", CONFIG.format(path=source, workers=1, address=server.address))
        try:
            forwarder.start()
            wait_until(lambda: counter.distinct() >= len(sent_lines(2_000)), 60, "every line")
            snapshot = stats(forwarder)
            assert "workers" not in snapshot
            assert descendants(forwarder.process.pid) == set()
            assert snapshot["inputs"]["numbered"]["filtered"] == 200
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    assert set(counter.numbers) == sent_lines(2_000)


def test_an_invalid_worker_count_is_a_config_error_naming_the_key(tmp_path):
    forwarder = ForwarderProcess(tmp_path / "home", CONFIG.format(path=tmp_path / "x.log", workers=0,
                                                                  address="127.0.0.1:1"))
    forwarder.start()
    try:
        assert forwarder.process.wait(timeout=60) != 0
    finally:
        forwarder.stop()
    text = forwarder.log_path.read_text()
    assert "forwarder.workers" in text and "must be auto or a number" in text, text[-2000:]
    assert "Traceback" not in text


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_forwarder_workers_from_the_environment_when_the_config_has_none(tmp_path, monkeypatch):
    source = tmp_path / "numbered.log"
    numbered_file(source, 100)
    counter = LineCounter()
    config = CONFIG.replace("    forwarder.workers: {workers}\n", "")
    with LumberjackServer(store_events=False, decode_json=False, on_window=counter) as server:
        forwarder = ForwarderProcess(tmp_path / "home", config.format(path=source, address=server.address))
        monkeypatch.setenv("FORWARDER_WORKERS", "3")
        forwarder.start()
        try:
            wait_until(lambda: counter.distinct() >= len(sent_lines(100)), 60, "every line")
            assert stats(forwarder)["workers"]["count"] == 3
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
