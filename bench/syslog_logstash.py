"""Syslog (RFC 5424 from syslog-ng's `loggen`) → the forwarder's syslog input → Logstash output → go-lumber (issue 16).

The real forwarder (`python -m forwarder`) runs one syslog input
(`format: rfc5424`) and output.logstash (bulk_max_size 2048, compression_level 3,
pipelining 2) into Elastic's go-lumber v2 server (`ljserver`, built by
../shared/peers/build-lumber.sh) on loopback. syslog-ng's `loggen` sends
≈300-byte RFC 5424 messages:

  tcp   `loggen -i -S -P -s 300 -n N -r 10000000 -I 3600` (loggen stops after -I, 10 s by
        default): one connection, octet-counted frames,
        as fast as the forwarder reads them (TCP back-pressure paces loggen);
        msg/s from loggen's start until the server has acknowledged N events,
        and drops = loggen's count - events acknowledged by the server.
  udp   `loggen -i -D -P -F -s 300 -r RATE -I SECONDS` for each rate of `--udp-rates`:
        datagrams at a fixed rate; drops counted by the kernel (/proc/net/udp
        `drops` of the input's socket, also the input's `udp_kernel_drops`), by us
        (/stats `dropped`), and loggen's count - events acknowledged by the server;
        the kernel's drops in the first 2 s are shown apart (loggen starts with a burst).

Every figure is printed with the load average at the time. Usage (from the repository root):

    python bench/syslog_logstash.py [--tcp-messages 500000] [--udp-rates 50000,40000,30000,20000]
                                    [--udp-seconds 10] [--udp-read-buffer 16MiB] [--workers 1] [--keep]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from entraid_graph import ForwarderRun, start_forwarder  # noqa: E402
from filestream_logstash import BATCH, PEERS, Receiver, cpu_seconds, load, resident_kib  # noqa: E402

INPUT_ID = "syslog-bench"
MESSAGE_SIZE = 300


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(home: Path, transport: str, port: int, lumber_port: int, read_buffer: str, workers: str,
          queue_events: int = 0) -> ForwarderRun:
    config = home / "forwarder.yml"
    config.write_text(textwrap.dedent(f"""\
        filebeat.inputs:
          - type: syslog
            id: {INPUT_ID}
            format: rfc5424
            timezone: UTC
            protocol.{transport}:
              host: "127.0.0.1:{port}"{f"{chr(10)}              read_buffer: {read_buffer}" if read_buffer else ""}
        output.logstash:
          hosts: ["127.0.0.1:{lumber_port}"]
          bulk_max_size: {BATCH}
          compression_level: 3
          pipelining: 2
        http.enabled: true
        http.port: 0
        logging.metrics.enabled: false
        """) + (f"forwarder.workers: {workers}\n" if workers else "")
        + (f"queue.mem.events: {queue_events}\n" if queue_events else ""))
    config.chmod(0o600)
    forwarder = start_forwarder(home, "unused")
    deadline = time.monotonic() + 30
    while f"listening on {transport}" not in (home / "stderr.log").read_text(errors="replace"):
        if time.monotonic() > deadline or forwarder.process.poll() is not None:
            raise SystemExit(f"the syslog input did not start; see {home}/stderr.log")
        time.sleep(0.05)
    return forwarder


def loggen_count(output: str) -> int:
    """The count of loggen's last line (the earlier ones are progress lines)."""
    counts = re.findall(r"count=(\d+)", output)
    if not counts:
        raise SystemExit(f"loggen printed no count: {output}")
    return int(counts[-1])


def input_counters(forwarder: ForwarderRun) -> dict:
    return forwarder.stats()["inputs"].get(INPUT_ID, {})


def kernel_udp_drops(port: int) -> int:
    """The `drops` column of /proc/net/udp for the socket bound to 127.0.0.1:port."""
    return kernel_udp_state(port)[0]


def kernel_udp_state(port: int) -> tuple[int, int]:
    """(`drops`, bytes waiting in the receive queue) of the socket bound to 127.0.0.1:port, from /proc/net/udp."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local:
            return int(fields[-1]), int(fields[4].split(":")[1], 16)
    return -1, -1


class UdpTrace:
    """`--udp-trace`: one line per 0.1 s of a UDP run (how many datagrams loggen sent is not known
    before it ends, so the server's and the input's counts stand in for what was taken)."""

    def __init__(self, forwarder: ForwarderRun, port: int, receiver: Receiver) -> None:
        self.forwarder, self.port, self.receiver = forwarder, port, receiver
        self.started = time.monotonic()
        self.last = (0, 0, 0, 0)
        print("udp trace:   t  kernel-drops  rxq-bytes  ours-dropped  published  server-acked", flush=True)

    def tick(self) -> None:
        drops, queued = kernel_udp_state(self.port)
        counters = input_counters(self.forwarder)
        now = (drops, counters.get("dropped", 0), counters.get("published", 0), self.receiver.events)
        deltas = [current - before for current, before in zip(now, self.last, strict=True)]
        self.last = now
        print(f"udp trace: {time.monotonic() - self.started:5.1f}  {deltas[0]:12,}  {queued:9,}  {deltas[1]:12,}  "
              f"{deltas[2]:9,}  {deltas[3]:12,}", flush=True)


def settle(receiver: Receiver, target: int, seconds: float) -> None:
    """Wait until the server has `target` events, or its count has not moved for `seconds`."""
    last, since = -1, time.monotonic()
    while receiver.events < target:
        if receiver.events != last:
            last, since = receiver.events, time.monotonic()
        elif time.monotonic() - since > seconds:
            return
        time.sleep(0.1)


def tcp_run(messages: int, workers: str, keep: bool) -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-syslog-tcp-"))
    port = free_port(socket.SOCK_STREAM)
    receiver = Receiver(messages)
    forwarder = start(home, "tcp", port, receiver.port, "", workers)
    try:
        started = time.monotonic()
        loggen = subprocess.Popen(["loggen", "-i", "-S", "-P", "-s", str(MESSAGE_SIZE), "-n", str(messages),
                                   "-r", "10000000", "-I", "3600", "127.0.0.1", str(port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rss = []
        while loggen.poll() is None:
            rss.append(resident_kib(forwarder.process.pid))
            time.sleep(0.2)
        sent = loggen_count(loggen.stdout.read())
        settle(receiver, sent, 10.0)
        done = receiver.acknowledged_at or time.monotonic()
        counters = input_counters(forwarder)
        received = receiver.events
        cpu = cpu_seconds(forwarder.process.pid) / max(received, 1) * 1e6
        main_cpu = cpu_seconds(forwarder.process.pid, descendants=False) / max(received, 1) * 1e6
        print(f"tcp  workers {workers or 'default'}: {received:,} of {sent:,} messages acknowledged in "
              f"{done - started:.2f} s: "
              f"{received / (done - started):,.0f} msg/s; drops {sent - received} (loggen - server), "
              f"/stats dropped {counters.get('dropped', 0)}; forwarder CPU {cpu:.1f} µs a message "
              f"(main process {main_cpu:.1f}; start-up included), {receiver.cpu_per_event()}; "
              f"VmRSS max {max(rss, default=0) / 1024:.0f} MiB ({load()})", flush=True)
    finally:
        forwarder.stop()
        receiver.stop()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def udp_run(rate: int, seconds: int, read_buffer: str, workers: str, keep: bool, trace: bool = False,
            queue_events: int = 0) -> bool:
    """One fixed-rate UDP run; True when nothing was dropped anywhere."""
    home = Path(tempfile.mkdtemp(prefix="bench-syslog-udp-"))
    port = free_port(socket.SOCK_DGRAM)
    receiver = Receiver(rate * seconds * 2)
    forwarder = start(home, "udp", port, receiver.port, read_buffer, workers, queue_events)
    try:
        kernel_before = kernel_udp_drops(port)
        started = time.monotonic()
        loggen = subprocess.Popen(["loggen", "-i", "-D", "-P", "-F", "-s", str(MESSAGE_SIZE), "-r", str(rate),
                                   "-I", str(seconds), "127.0.0.1", str(port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Drops in the first 2 s (kernel, ours): loggen starts with a burst far above its rate (at -r 50000,
        # ~96,000 datagrams in its first second, up to 14,000 in a 0.1 s), which no 2-core pipeline takes.
        early = None
        tracer = UdpTrace(forwarder, port, receiver) if trace else None
        while loggen.poll() is None:
            if early is None and time.monotonic() - started >= 2.0:
                early = kernel_udp_drops(port) - kernel_before, input_counters(forwarder).get("dropped", 0)
            if tracer:
                tracer.tick()
            time.sleep(0.1)
        output = loggen.stdout.read()
        sent = loggen_count(output)
        settle(receiver, sent, 5.0)
        kernel = kernel_udp_drops(port) - kernel_before
        counters = input_counters(forwarder)
        received = receiver.events
        ours = counters.get("dropped", 0)
        if early is None:  # a run shorter than 2 s
            early = kernel, ours
        # Per datagram the input read (queued or dropped by us): what the kernel dropped cost nothing.
        taken = max(counters.get("published", 0) + ours, 1)
        cpu = cpu_seconds(forwarder.process.pid) / taken * 1e6
        main_cpu = cpu_seconds(forwarder.process.pid, descendants=False) / taken * 1e6
        buffer = f"read_buffer {read_buffer}" if read_buffer else "default read_buffer"
        if queue_events:
            buffer += f", queue.mem.events {queue_events}"
        rate_found = re.findall(r"average rate = ([0-9.]+)", output)
        sent_rate = float(rate_found[-1]) if rate_found else sent / seconds
        print(f"udp  workers {workers or 'default'}, target {rate:,} msg/s for {seconds} s, {buffer}: "
              f"loggen sent {sent:,} ({sent_rate:,.0f} msg/s), "
              f"server acknowledged {received:,}; drops: kernel {kernel} (/proc/net/udp; input's "
              f"udp_kernel_drops {counters.get('udp_kernel_drops', 'n/a')}), /stats dropped {ours}; "
              f"after the first 2 s: kernel {kernel - early[0]}, /stats {ours - early[1]}; "
              f"loggen - server {sent - received}; forwarder CPU {cpu:.1f} µs a datagram read (main process "
              f"{main_cpu:.1f}) ({load()})", flush=True)
        return kernel == 0 and ours == 0 and sent == received
    finally:
        forwarder.stop()
        receiver.stop()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def compile_bytecode() -> None:
    """The forwarder's .pyc files, as a package install leaves them: with PYTHONDONTWRITEBYTECODE set (as on
    these machines) every start would otherwise compile its modules again, a start-up cost no user pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "forwarder")], check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--tcp-messages", type=int, default=500_000)
    arguments.add_argument("--udp-rates", default="50000,40000,30000,20000",
                           help="msg/s to try in order; stops at the first one without drops")
    arguments.add_argument("--udp-seconds", type=int, default=10)
    arguments.add_argument("--udp-read-buffer", default="", help="protocol.udp.read_buffer, e.g. 16MiB")
    arguments.add_argument("--workers", default="", help="forwarder.workers (auto or a count); unset: the default")
    arguments.add_argument("--queue-events", type=int, default=0, help="queue.mem.events for the UDP runs (default: "
                           "the forwarder's)")
    arguments.add_argument("--keep", action="store_true", help="keep the forwarder's home directories")
    arguments.add_argument("--udp-trace", action="store_true",
                           help="print kernel drops, receive queue, our drops and counts every 0.1 s of a UDP run")
    options = arguments.parse_args()
    if shutil.which("loggen") is None:
        raise SystemExit("loggen is missing: apt-get install -y syslog-ng-core")
    if not (PEERS / "ljserver").exists():
        raise SystemExit(f"{PEERS / 'ljserver'} is missing: run ../shared/peers/build-lumber.sh GO_LUMBER_SRC first")
    compile_bytecode()
    if options.tcp_messages:
        tcp_run(options.tcp_messages, options.workers, options.keep)
    for rate in (int(value) for value in options.udp_rates.split(",") if value):
        if udp_run(rate, options.udp_seconds, options.udp_read_buffer, options.workers, options.keep,
                   options.udp_trace, options.queue_events):
            print(f"udp  {rate:,} msg/s: no drops")
            break


if __name__ == "__main__":
    main()
