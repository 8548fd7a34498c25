"""Cursors are committed in publish order, only when everything before them is acknowledged."""

from __future__ import annotations

import threading

from forwarder.pipeline.acker import InputAcker


class Commits:
    def __init__(self):
        self.state: dict = {}
        self.calls: list[dict] = []

    def __call__(self, updates):
        self.calls.append(dict(updates))
        self.state.update(updates)


def test_out_of_order_acks_commit_only_the_contiguous_prefix():
    commits = Commits()
    acker = InputAcker(commits, "t::i::")
    seqs = [acker.track({"f": n}) for n in range(5)]
    acker.done(seqs[2])
    acker.done(seqs[1])
    assert commits.state == {}
    acker.done(seqs[0])
    assert commits.state == {"t::i::f": 2}
    acker.done(seqs[4])
    assert commits.state == {"t::i::f": 2}
    acker.done(seqs[3])
    assert commits.state == {"t::i::f": 4}
    assert acker.in_flight == 0


def test_events_without_cursor_still_hold_back_later_cursors():
    commits = Commits()
    acker = InputAcker(commits, "")
    first = acker.track(None)
    second = acker.track({"f": 1})
    acker.done(second)
    assert commits.state == {}
    acker.done(first)
    assert commits.state == {"f": 1}


def test_abandoned_event_blocks_every_later_commit():
    commits = Commits()
    acker = InputAcker(commits, "")
    first = acker.track({"f": 1})
    lost = acker.track({"f": 2})
    third = acker.track({"f": 3})
    acker.done(first)
    acker.abandon(lost)
    acker.done(third)
    assert commits.state == {"f": 1}
    assert acker.wait_all_done(0.1)


def test_duplicate_ack_is_ignored():
    commits = Commits()
    acker = InputAcker(commits, "")
    seq = acker.track({"f": 1})
    acker.done(seq)
    acker.done(seq)
    assert acker.acked == 1
    assert len(commits.calls) == 1


def test_concurrent_acks_never_commit_an_older_cursor_last():
    commits = Commits()
    acker = InputAcker(commits, "")
    seqs = [acker.track({"f": n}) for n in range(20000)]
    halves = [seqs[0::2], seqs[1::2]]
    threads = [threading.Thread(target=lambda part=part: [acker.done(s) for s in part]) for part in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert commits.state == {"f": 19999}
    values = [call["f"] for call in commits.calls]
    assert values == sorted(values)


def test_a_batch_acknowledgement_commits_once():
    commits = Commits()
    acker = InputAcker(commits, "")
    seqs = [acker.track({"f": n}) for n in range(2048)]
    acker.done_many(reversed(seqs))
    assert commits.calls == [{"f": 2047}]


def test_listeners_hear_each_commit_after_the_registry_with_source_names():
    commits = Commits()
    acker = InputAcker(commits, "azure-eventhub::hub::")
    heard: list[tuple[dict, dict]] = []
    acker.add_listener(lambda committed: heard.append((committed, dict(commits.state))))
    first = acker.track({"partition-0": 10})
    second = acker.track({"partition-1": 7})
    acker.done(second)
    assert heard == []
    acker.done(first)
    assert heard == [({"partition-0": 10, "partition-1": 7},
                      {"azure-eventhub::hub::partition-0": 10, "azure-eventhub::hub::partition-1": 7})]


def test_a_removed_listener_hears_nothing_more():
    commits = Commits()
    acker = InputAcker(commits, "")
    heard: list[dict] = []
    acker.add_listener(heard.append)
    acker.done(acker.track({"p": 1}))
    acker.remove_listener(heard.append)
    acker.done(acker.track({"p": 2}))
    assert heard == [{"p": 1}]


def test_a_tracked_chunk_commits_its_cursor_only_when_every_event_of_it_is_acknowledged():
    commits = Commits()
    acker = InputAcker(commits, "t::i::")
    first = acker.track_many(4, {"obj": 400})
    second = acker.track_many(2, {"obj": 600})
    assert (first, second) == (0, 4)
    acker.done_many([0, 1, 3, 4, 5])
    assert commits.state == {}
    acker.done(2)
    assert commits.calls == [{"t::i::obj": 600}]
    assert acker.in_flight == 0


def test_a_dropped_event_lets_later_cursors_commit_but_is_not_counted_as_acknowledged():
    commits = []
    acker = InputAcker(commits.append, "p::")
    first = acker.track(None)
    second = acker.track({"s": 2})
    acker.dropped(first)
    acker.done(second)
    assert commits == [{"p::s": 2}]
    assert acker.acked == 1
    assert acker.in_flight == 0


def test_a_payload_split_into_events_is_done_when_every_part_is():
    from forwarder.pipeline.acker import SharedAcknowledgement

    commits = []
    acker = InputAcker(commits.append, "p::")
    sequence = acker.track({"s": 1})
    shared = SharedAcknowledgement(acker, sequence, 3)
    shared.done(sequence)
    shared.done_many([sequence])
    assert commits == []
    shared.done(sequence)
    assert commits == [{"p::s": 1}] and acker.acked == 1
