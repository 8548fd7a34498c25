"""A chunk's results travel from a worker as three byte strings and come back document by document."""

from __future__ import annotations

import pickle

from forwarder.pipeline.worker_process import EncodedChunk


def round_trip(results):
    return pickle.loads(pickle.dumps(EncodedChunk(results), pickle.HIGHEST_PROTOCOL))


def test_one_document_per_payload_needs_no_counts_and_splits_in_order() -> None:
    chunk = round_trip([b'{"a":1}', b"{}", b'{"message":"\xc3\xa9"}'])
    assert chunk.one_document_each
    assert chunk.split() == [b'{"a":1}', b"{}", b'{"message":"\xc3\xa9"}']
    assert chunk.per_payload() == [[b'{"a":1}'], [b"{}"], [b'{"message":"\xc3\xa9"}']]


def test_payloads_that_made_none_or_several_documents_keep_their_boundaries() -> None:
    chunk = round_trip([b"1", None, [b"2", b"33", b"444"], b"5", []])
    assert not chunk.one_document_each
    assert chunk.split() == [b"1", b"2", b"33", b"444", b"5"]
    assert chunk.per_payload() == [[b"1"], [], [b"2", b"33", b"444"], [b"5"], []]


def test_an_empty_chunk_has_no_documents() -> None:
    chunk = round_trip([])
    assert chunk.split() == []
    assert chunk.per_payload() == []
