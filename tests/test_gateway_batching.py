"""Group commit (``gateway/batching.py``): items submitted at once by many threads are written
together, each exactly once, and each thread gets its own result or error."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from facility_apis.gateway.batching import GroupCommit


class Unavailable(Exception):
    pass


def test_concurrent_items_are_written_once_each_in_few_batches_and_answered_to_their_thread():
    batches: list[list[int]] = []
    lock = threading.Lock()

    def write_many(items):
        time.sleep(0.01)  # a transaction: others queue meanwhile
        with lock:
            batches.append(list(items))
        return [item * 10 for item in items]

    group = GroupCommit(write_many, limit=16)
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(group.submit, range(200)))
    assert results == [i * 10 for i in range(200)]
    written = [item for batch in batches for item in batch]
    assert sorted(written) == list(range(200))  # every item once, none twice
    assert len(batches) < 200 and max(len(batch) for batch in batches) <= 16


def test_one_bad_item_does_not_fail_the_others_of_its_batch():
    gate = threading.Event()

    def write_many(items):
        gate.wait(5)
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]

    group = GroupCommit(write_many, retry_alone=lambda exc: not isinstance(exc, Unavailable))
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(group.submit, item) for item in ("a", "bad", "c", "d")]
        time.sleep(0.1)
        gate.set()
    assert [f.result() for f in futures if f.exception() is None] == ["A", "C", "D"]
    assert isinstance(futures[1].exception(), ValueError)


def test_a_store_failure_goes_to_every_thread_of_the_batch_to_retry():
    calls: list[list[str]] = []

    def write_many(items):
        calls.append(list(items))
        raise Unavailable("database gone")

    group = GroupCommit(write_many, retry_alone=lambda exc: not isinstance(exc, Unavailable))
    with pytest.raises(Unavailable):
        group.submit("x")
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(group.submit, str(i)) for i in range(8)]
    assert all(isinstance(f.exception(), Unavailable) for f in futures)
    assert sorted(item for batch in calls[1:] for item in batch) == [str(i) for i in range(8)]  # no item written alone again
