"""The stats stay exact when writers commit concurrently with the background compaction."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kamioi.db import connect
from kamioi.settings import Settings

WRITERS = 6
INSERTS_PER_WRITER = 40


@pytest.fixture
def merchant_prefix(settings: Settings) -> Iterator[str]:
    prefix = f"stats test {uuid.uuid4().hex[:8]} "
    yield prefix
    with connect(settings.db_url, autocommit=True) as conn:
        conn.execute("delete from public.llm_mappings where merchant_key like %s", (prefix + "%",))


def stats_and_fresh_counts(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """dashboard_stats() and a COUNT(*) recomputation, read in one snapshot."""
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read")
        row = conn.execute(
            "select (public.dashboard_stats() -> 'mappings' ->> 'total')::bigint,"
            " (public.dashboard_stats() -> 'mappings' ->> 'pending')::bigint,"
            " (select count(*) from public.llm_mappings),"
            " (select count(*) from public.llm_mappings where status = 'pending')"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_deltas_of_an_open_transaction_survive_a_compaction(settings: Settings, merchant_prefix: str) -> None:
    with connect(settings.db_url) as writer, connect(settings.db_url, autocommit=True) as other:
        writer.execute(
            "insert into public.llm_mappings (merchant_name, merchant_key)"
            " select 'M', %s || g from generate_series(1, 100) as g",
            (merchant_prefix,),
        )
        other.execute("select private.compact_stats()")  # runs while the insert is uncommitted
        writer.commit()
        other.execute("select private.compact_stats()")
        total, pending, fresh_total, fresh_pending = stats_and_fresh_counts(other)
        assert (total, pending) == (fresh_total, fresh_pending)


def test_concurrent_single_row_writers_and_compaction_stay_exact(settings: Settings, merchant_prefix: str) -> None:
    errors: list[BaseException] = []
    writers_done = threading.Event()

    def write(writer_no: int) -> None:
        try:
            with connect(settings.db_url, autocommit=True) as conn:
                for i in range(INSERTS_PER_WRITER):
                    status = ("pending", "approved", "rejected")[i % 3]
                    conn.execute(
                        "insert into public.llm_mappings (merchant_name, merchant_key, status) values ('M', %s, %s)",
                        (f"{merchant_prefix}{writer_no}-{i}", status),
                    )
                    if i % 4 == 0:
                        conn.execute(
                            "update public.llm_mappings set status = 'approved' where merchant_key = %s",
                            (f"{merchant_prefix}{writer_no}-{i}",),
                        )
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    def compact() -> None:
        with connect(settings.db_url, autocommit=True) as conn:
            while not writers_done.is_set():
                conn.execute("select private.compact_stats()")

    compactor = threading.Thread(target=compact)
    compactor.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writers_done.set()
    compactor.join()

    assert not errors
    with connect(settings.db_url, autocommit=True) as conn:
        total, pending, fresh_total, fresh_pending = stats_and_fresh_counts(conn)
        assert (total, pending) == (fresh_total, fresh_pending)
        ours = conn.execute(
            "select count(*) from public.llm_mappings where merchant_key like %s", (merchant_prefix + "%",)
        ).fetchone()
        assert ours == (WRITERS * INSERTS_PER_WRITER,)
