"""CSV exports of the admin lists: the file equals the list for the same filters, a crashed export
resumes without a repeated or missing row (kill -9 at random points), cancelling stops it and removes
its partial file, progress is broadcast per chunk."""

from __future__ import annotations

import asyncio
import csv
import random
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from jobs.exports import EXPORT_KIND
from jobs.inline import InlineRun
from kamioi.settings import Settings, get_settings
from kamioi.storage import sign_download
from tests.jobs.conftest import Workers, queue_state, unique_tag, wait_until
from tests.jobs.investing import insert_transactions, make_merchant, run_invest
from tests.jobs.support import jobs_settings

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


@pytest.fixture
def shoppers(conn: psycopg.Connection[Any], make_user: Callable[[str], str]) -> Iterator[dict[str, Any]]:
    """Two users with purchases at two tagged merchants, partly invested."""
    tag = unique_tag()
    keys = [f"export-{tag}-a", f"export-{tag}-b"]
    users = [make_user("user"), make_user("user")]
    for key, ticker in zip(keys, ["SBUX", None], strict=True):
        make_merchant(conn, key, ticker)
    insert_transactions(conn, users, keys, 240, random.Random(3))
    yield {"users": users, "keys": keys, "tag": tag}


def create_export(
    conn: psycopg.Connection[Any], list_name: str, filters: dict[str, Any], sort: str | None = None
) -> dict[str, Any]:
    # A worker started here serves every queued export: earlier suites' exports must not come first.
    conn.execute(
        "select private.cancel_job(id) from private.job_queue where kind = %s and state = 'queued'", (EXPORT_KIND,)
    )
    row = conn.execute(
        "select id, queue_job_id, file_name from private.create_export_job(%s, %s, %s, null)",
        (list_name, Jsonb(filters), sort),
    ).fetchone()
    assert row is not None
    return {"id": row[0], "queue_job_id": row[1], "file_name": row[2]}


async def signed(settings: Settings, bucket: str, path: str) -> str:
    async with httpx.AsyncClient() as http:
        return await sign_download(http, settings, bucket=bucket, object_path=path, expires_s=60)


def export_row(conn: psycopg.Connection[Any], export_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("select * from public.export_jobs where id = %s", (export_id,)).fetchone()
    assert row is not None
    return row


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def expected_transaction_ids(conn: psycopg.Connection[Any], user: str) -> list[str]:
    rows = conn.execute(
        "select id from public.transactions where user_id = %s order by txn_date desc, id desc", (user,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def test_the_file_equals_each_list(settings: Settings, conn: psycopg.Connection[Any], shoppers: dict[str, Any]) -> None:
    run_invest(settings.db_url, conn)
    user = shoppers["users"][0]
    job = create_export(conn, "transactions", {"user_id": user})
    assert (
        InlineRun(settings.db_url, job["queue_job_id"], jobs_settings(KAMIOI_EXPORT_CHUNK_ROWS="17")).run()
        == "succeeded"
    )
    done = export_row(conn, job["id"])
    path = settings.exports_dir / job["file_name"]
    rows = csv_rows(path)
    assert [r["id"] for r in rows] == expected_transaction_ids(conn, user)
    assert done["rows_written"] == len(rows) and done["bytes_written"] == path.stat().st_size
    # The file is copied to the Storage bucket; the stored link is the admin API's, never a signed one.
    assert done["download_url"] == f"/v1/exports/{job['id']}/download"
    assert (done["storage_bucket"], done["storage_path"]) == (settings.export_bucket, job["file_name"])
    link = asyncio.run(signed(settings, done["storage_bucket"], done["storage_path"]))
    assert httpx.get(link).content == path.read_bytes()
    invested = next(r for r in rows if r["status"] == "invested" and r["ticker"] == "SBUX")
    assert '"ticker":"SBUX"' in invested["allocations"]
    path.unlink()

    # Mappings by confidence and users by email prefix walk their own keys.
    mappings = create_export(conn, "mappings", {"merchant_key_prefix": f"export-{shoppers['tag']}"}, "confidence_asc")
    assert (
        InlineRun(settings.db_url, mappings["queue_job_id"], jobs_settings(KAMIOI_EXPORT_CHUNK_ROWS="1")).run()
        == "succeeded"
    )
    mapping_rows = csv_rows(settings.exports_dir / mappings["file_name"])
    assert sorted(r["merchant_key"] for r in mapping_rows) == sorted(shoppers["keys"])
    (settings.exports_dir / mappings["file_name"]).unlink()
    users = create_export(conn, "users", {"email_prefix": "user-"})
    assert (
        InlineRun(settings.db_url, users["queue_job_id"], jobs_settings(KAMIOI_EXPORT_CHUNK_ROWS="3")).run()
        == "succeeded"
    )
    user_rows = csv_rows(settings.exports_dir / users["file_name"])
    emails = [r["email"] for r in user_rows]
    assert emails == sorted(emails) and len(set(emails)) == len(emails)
    mine = next(r for r in user_rows if r["id"] == user)
    assert int(mine["transactions"]) == len(expected_transaction_ids(conn, user))
    (settings.exports_dir / users["file_name"]).unlink()


def test_with_storage_down_the_link_is_the_api_download(
    settings: Settings,
    conn: psycopg.Connection[Any],
    shoppers: dict[str, Any],
    dead_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUPABASE_STORAGE_URL", dead_url)
    get_settings.cache_clear()
    try:
        job = create_export(conn, "transactions", {"user_id": shoppers["users"][1]})
        assert InlineRun(settings.db_url, job["queue_job_id"], jobs_settings()).run() == "succeeded"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    done = export_row(conn, job["id"])
    assert done["download_url"] == f"/v1/exports/{job['id']}/download"
    assert (done["storage_bucket"], done["storage_path"]) == (None, None)
    (settings.exports_dir / job["file_name"]).unlink()


def test_bad_filters_are_refused_before_anything_is_queued(conn: psycopg.Connection[Any]) -> None:
    before = conn.execute("select count(*) from public.export_jobs").fetchone()
    for list_name, filters in [
        ("transactions", {"colour": "red"}),
        ("transactions", {"status": "lost"}),
        ("mappings", {"search": "ab"}),
        ("ledger", {}),
    ]:
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            create_export(conn, list_name, filters)
    assert conn.execute("select count(*) from public.export_jobs").fetchone() == before


def claimed_by(conn: psycopg.Connection[Any], queue_job_id: int, pid: int) -> bool:
    return f":{pid}:" in (queue_state(conn, queue_job_id)["locked_by"] or "")


def test_kill_9_at_random_points_neither_repeats_nor_skips_a_row(
    settings: Settings, conn: psycopg.Connection[Any], workers: Workers, shoppers: dict[str, Any], tmp_path: Path
) -> None:
    rng = random.Random(20261204)
    insert_transactions(conn, shoppers["users"][:1], shoppers["keys"], 1500, rng)
    user = shoppers["users"][0]
    job = create_export(conn, "transactions", {"user_id": user})
    # Every kill costs an attempt.
    conn.execute("update private.job_queue set max_attempts = 50 where id = %s", (job["queue_job_id"],))
    env = {"KAMIOI_EXPORT_CHUNK_ROWS": "40", "EXPORT_DIR": str(tmp_path)}
    kills = 0
    for _ in range(8):
        if queue_state(conn, job["queue_job_id"])["state"] == "succeeded":
            break
        proc = workers.start(EXPORT_KIND, concurrency=1, env=env)
        wait_until(partial(claimed_by, conn, job["queue_job_id"], proc.pid), 20, "the claim")
        time.sleep(rng.uniform(0.0, 0.5))
        proc.kill()
        proc.wait(timeout=10)
        kills += 1
    workers.start(EXPORT_KIND, concurrency=1, env=env)
    wait_until(lambda: export_row(conn, job["id"])["state"] == "succeeded", 60, "the export finished")
    assert kills >= 3, "the export should have been killed mid-way several times"
    rows = csv_rows(tmp_path / job["file_name"])
    assert [r["id"] for r in rows] == expected_transaction_ids(conn, user)
    assert not list(tmp_path.glob("*.part"))


def test_cancel_stops_a_running_export_and_removes_its_file(
    settings: Settings, conn: psycopg.Connection[Any], workers: Workers, shoppers: dict[str, Any], tmp_path: Path
) -> None:
    insert_transactions(conn, shoppers["users"][:1], shoppers["keys"], 1500, random.Random(5))
    job = create_export(conn, "transactions", {"merchant_key": shoppers["keys"][0]})
    exports = tmp_path / "exports"
    workers.start(EXPORT_KIND, concurrency=1, env={"KAMIOI_EXPORT_CHUNK_ROWS": "5", "EXPORT_DIR": str(exports)})
    wait_until(lambda: export_row(conn, job["id"])["rows_written"] > 0, 30, "the first chunk")
    conn.execute("select private.cancel_export_job(%s)", (job["id"],))
    wait_until(lambda: export_row(conn, job["id"])["state"] == "cancelled", 30, "the export cancelled")
    assert not list(exports.iterdir()), "a cancelled export leaves no file"
    assert export_row(conn, job["id"])["rows_written"] < 1500


def test_progress_is_broadcast_to_admins_per_chunk(
    settings: Settings, conn: psycopg.Connection[Any], shoppers: dict[str, Any]
) -> None:
    job = create_export(conn, "transactions", {"user_id": shoppers["users"][1]})
    assert (
        InlineRun(settings.db_url, job["queue_job_id"], jobs_settings(KAMIOI_EXPORT_CHUNK_ROWS="50")).run()
        == "succeeded"
    )
    messages = conn.execute(
        "select payload ->> 'state', (payload ->> 'rows_written')::bigint from realtime.messages"
        " where topic = 'admin:exports' and event = 'export_progress' and (payload ->> 'id')::bigint = %s"
        " order by inserted_at, id",
        (job["id"],),
    ).fetchall()
    total = export_row(conn, job["id"])["rows_written"]
    chunks = -(-total // 50)
    # One message per chunk (the download link's announcement repeats the last count).
    progress = list(dict.fromkeys(n for state, n in messages if state == "running" and n > 0))
    assert progress == [min(50 * (i + 1), total) for i in range(chunks)]
    assert messages[-1][0] == "succeeded"
    (settings.exports_dir / job["file_name"]).unlink()
