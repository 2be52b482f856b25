"""jobs.sweep.delivered_batches: a blocking stream read on a thread, handed over in batches of what arrived."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from jobs.sweep import delivered_batches


def test_every_item_arrives_once_in_order_and_no_batch_is_too_big() -> None:
    batches = list(delivered_batches(iter(range(1, 251)), 100))
    assert [item for batch in batches for item in batch] == list(range(1, 251))
    assert all(1 <= len(batch) <= 100 for batch in batches)


def test_items_that_arrive_while_a_batch_is_applied_come_together() -> None:
    first_taken = threading.Event()

    def stream() -> Iterator[int]:
        yield 1
        first_taken.wait(5)  # the reader blocks, as on a quiet socket, until the first batch is out
        yield from range(2, 6)

    batches = delivered_batches(stream(), 100)
    assert next(batches) == [1]
    first_taken.set()
    rest = [item for batch in batches for item in batch]
    assert rest == [2, 3, 4, 5]


def test_a_stream_error_is_raised_after_what_came_before_it() -> None:
    def stream() -> Iterator[int]:
        yield from (1, 2, 3)
        raise ConnectionError("the broker hung up")

    seen: list[int] = []
    with pytest.raises(ConnectionError, match="hung up"):
        for batch in delivered_batches(stream(), 100):
            seen.extend(batch)
    assert seen == [1, 2, 3]
