"""queue.mem or queue.disk: Filebeat's keys and defaults, one queue at a time, clear lines for bad values."""

from __future__ import annotations

from test_config_loading import MINIMAL_OUTPUT, load, problems_of


def test_no_queue_section_is_the_memory_queue(tmp_path):
    settings = load(tmp_path, MINIMAL_OUTPUT)
    assert settings.disk_queue is None
    assert settings.queue_events == 8192


def test_queue_disk_takes_filebeat_defaults_under_path_data(tmp_path):
    settings = load(tmp_path, MINIMAL_OUTPUT, "queue.disk:\n  max_size: 200MiB\n")
    disk = settings.disk_queue
    assert disk.path == settings.paths.data / "diskqueue"
    assert disk.max_size == 200 * 1024 * 1024
    assert disk.segment_size == 20 * 1024 * 1024
    assert (disk.read_ahead, disk.write_ahead, disk.retry_interval, disk.max_retry_interval) == (512, 2048, 1.0, 30.0)
    assert disk.compression_level == 0


def test_queue_disk_options(tmp_path):
    settings = load(tmp_path, MINIMAL_OUTPUT, """\
        queue.disk:
          path: /var/spool/fwd
          max_size: 1GiB
          segment_size: 8MiB
          compression: none
        """)
    disk = settings.disk_queue
    assert str(disk.path) == "/var/spool/fwd" and disk.segment_size == 8 * 1024 * 1024
    assert disk.compression_level is None


def test_both_queues_or_tiny_sizes_are_one_line_each(tmp_path):
    problems = problems_of(tmp_path, MINIMAL_OUTPUT, """\
        queue.mem.events: 100
        queue.disk:
          max_size: 1MiB
          segment_size: 1KiB
          compression: zstd
        """)
    assert any("queue.disk" in p and "queue.mem" in p for p in problems)
    assert any("queue.disk.max_size" in p and "10MB" in p for p in problems)
    assert any("queue.disk.segment_size" in p and "1MB" in p for p in problems)
    assert any("queue.disk.compression" in p for p in problems)
    assert len(problems) == 4
