"""Listing mode through the real forwarder against moto: hundreds of Umbrella-style objects, late ones, kill -9."""

from __future__ import annotations

import collections
import gzip
import random

from tests.fakes.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

BUCKET = "cisco-managed-us-east-1"
PREFIX = "8675309_0a1b2c3d4e5f"
LOG_TYPES = ("dnslogs", "proxylogs", "iplogs")
DAYS = ("2024-06-10", "2024-06-11", "2024-06-12")
QUEUE_EVENTS = 256
KILLS = 3


def rows(name: str, count: int) -> list[str]:
    return [f'"{name}","{n}","10.0.0.{n % 250}","Allowed"' for n in range(count)]


class Bucket:
    """The bucket and every row written to it, as the receiver must see them."""

    def __init__(self, s3) -> None:
        self.s3 = s3
        self.expected: set[str] = set()
        self.serial = 0
        s3.create_bucket(Bucket=BUCKET)

    def put(self, log_type: str, day: str, minute: str, suffix: str, count: int) -> None:
        key = f"{PREFIX}/{log_type}/{day}/{day}-{minute}-{suffix}.csv.gz"
        lines = rows(key, count)
        self.expected.update(lines)
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(("\n".join(lines) + "\n").encode()))

    def put_batch(self, objects: int, chooser: random.Random, rows_each: int = 8) -> None:
        for _ in range(objects):
            self.serial += 1
            minute = f"{chooser.randrange(24):02d}-{chooser.randrange(0, 60, 10):02d}"
            self.put(chooser.choice(LOG_TYPES), chooser.choice(DAYS), minute, f"{self.serial:04x}", rows_each)


def test_hundreds_of_objects_late_arrivals_and_three_kills_lose_nothing(tmp_path):
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    home = tmp_path / "home"
    with MotoServer() as aws:
        aws.reset()  # moto keeps its buckets per process, across servers
        bucket = Bucket(aws.client("s3"))
        bucket.put_batch(200, chooser)
        for log_type in LOG_TYPES:  # large objects, so that the kills land in the middle of one
            bucket.put(log_type, DAYS[-1], "23-50", "zzzz", 1500)
        # A Filebeat aws-s3 block as a site writes it for a Cisco-managed bucket, unchanged.
        forwarder = ForwarderProcess(home, f"""
            forwarder.inputs:
              - type: aws-s3
                id: umbrella-s3
                non_aws_bucket_name: {BUCKET}
                bucket_list_prefix: {PREFIX}/
                bucket_list_interval: 1s
                number_of_workers: 5
                endpoint: {aws.endpoint}
                path_style: true
                region: {REGION}
                access_key_id: {ACCESS_KEY_ID}
                secret_access_key: {SECRET_ACCESS_KEY}
                api_timeout: 30s
                file_selectors:
                  - regex: '/auditlogs/'
                    parsers:
                      - multiline: {{type: pattern, pattern: '^"[0-9]', negate: true, match: after}}
                tags: [cisco-umbrella, forwarded]
            queue.mem:
              events: {QUEUE_EVENTS}
              flush.min_events: 50
              flush.timeout: 20ms
            forwarder.registry.flush: 0s
            output.file:
              path: ${{path.data}}/events
              bulk_max_size: 50
            logging.metrics.enabled: false
            """)

        def delivered() -> set[str]:
            return {event["message"] for event in output_events(home)}

        try:
            for kill in range(KILLS):
                forwarder.start()
                target = min(len(bucket.expected) - 1, len(delivered()) + chooser.randint(300, 1200))
                wait_until(lambda target=target: len(delivered()) >= target, 60,
                           f"progress before kill {kill} (seed {seed})")
                forwarder.kill_hard()
                # While it is down or between listings: new objects, and late ones whose keys sort before read ones.
                bucket.put_batch(10, chooser)
                bucket.put(LOG_TYPES[kill % 3], DAYS[0], "00-00", f"0late{kill}", 8)
            forwarder.start()
            wait_until(lambda: len(delivered()) >= len(bucket.expected) - 16, 60, f"nearly every row (seed {seed})")
            bucket.put_batch(5, chooser)
            bucket.put(LOG_TYPES[0], DAYS[0], "00-00", "00000", 8)
            wait_until(lambda: delivered() >= bucket.expected, 60, f"every row (seed {seed})")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    events = output_events(home)
    assert len(bucket.expected) > 200 * 8 + 4500
    assert {event["message"] for event in events} == bucket.expected, f"seed {seed}"
    duplicates = len(events) - len(bucket.expected)
    assert duplicates <= KILLS * QUEUE_EVENTS, f"{duplicates} duplicates (seed {seed})"
    ids_by_row = collections.defaultdict(set)
    for event in events:
        ids_by_row[event["message"]].add(event["@metadata"]["_id"])
    assert all(len(ids) == 1 for ids in ids_by_row.values()), "a replay must keep its @metadata._id"
    assert len({next(iter(ids)) for ids in ids_by_row.values()}) == len(bucket.expected)
    first = events[0]
    assert first["tags"] == ["cisco-umbrella", "forwarded"]
    assert first["aws"]["s3"]["object"]["key"] in first["message"]
    assert "Traceback" not in forwarder.log_path.read_text()


def test_changed_etag_is_read_again_and_states_of_deleted_objects_are_forgotten(tmp_path):
    import json
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        http_port = sock.getsockname()[1]

    def stats() -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/stats", timeout=5) as response:
            return json.loads(response.read())["inputs"]

    home = tmp_path / "home"
    with MotoServer() as aws:
        aws.reset()  # moto keeps its buckets per process, across servers
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        changing, deleted = f"{PREFIX}/dnslogs/{DAYS[0]}/changing.csv", f"{PREFIX}/dnslogs/{DAYS[0]}/deleted.csv"
        s3.put_object(Bucket=BUCKET, Key=changing, Body=b'"v1 a"\n"v1 b"\n')
        s3.put_object(Bucket=BUCKET, Key=deleted, Body=b'"gone soon"\n')
        inputs = ""
        for name, start in (("current", "2000-01-01T00:00:00Z"), ("future", "2999-01-01T00:00:00Z")):
            inputs += f"""
              - type: aws-s3
                id: {name}
                bucket_arn: arn:aws:s3:::{BUCKET}
                bucket_list_interval: 1s
                start_timestamp: "{start}"
                endpoint: {aws.endpoint}
                path_style: true
                access_key_id: {ACCESS_KEY_ID}
                secret_access_key: {SECRET_ACCESS_KEY}"""
        forwarder = ForwarderProcess(home, f"""
            forwarder.inputs:{inputs}
            queue.mem.flush.timeout: 10ms
            forwarder.registry.flush: 0s
            output.file.path: ${{path.data}}/events
            http.enabled: true
            http.host: 127.0.0.1
            http.port: {http_port}
            logging.metrics.enabled: false
            """).start()
        try:
            def messages() -> list[str]:
                return sorted(event["message"] for event in output_events(home))

            wait_until(lambda: messages() == ['"gone soon"', '"v1 a"', '"v1 b"'], 30, "the first versions")
            s3.put_object(Bucket=BUCKET, Key=changing, Body=b'"v2 a"\n')
            s3.delete_object(Bucket=BUCKET, Key=deleted)
            wait_until(lambda: '"v2 a"' in messages(), 30, "the changed object read again")
            current = wait_until(lambda: (lambda s: s if s["objects_forgotten"] == 1 else None)(stats()["current"]),
                                 30, "the deleted object's state forgotten")
            assert current["objects_tracked"] == 1
            future = stats()["future"]
            assert future["objects_listed"] >= 1 and future["objects_tracked"] == 0 and future["published"] == 0
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    registry = "\n".join(path.read_text() for path in (home / "data" / "registry").rglob("*") if path.is_file())
    assert "changing.csv" in registry
    events = output_events(home)
    assert sorted(event["message"] for event in events) == ['"gone soon"', '"v1 a"', '"v1 b"', '"v2 a"']
    assert {event["cloud"]["region"] for event in events} == {REGION}
    assert events[0]["log"]["file"]["path"].startswith(f"{aws.endpoint}/{BUCKET}/{PREFIX}/dnslogs/")
