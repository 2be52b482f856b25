"""`kamioi import`'s progress bar moves with the job's progress messages, not with reads of its row."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest

from cli.commands.import_ import ProgressPrinter, follow
from jobs.imports.service import PROGRESS_EVENT, PROGRESS_TOPIC, StoredFile, cancel_import, create_import, get_import
from kamioi.db import connect
from kamioi.progress import ListenFeed
from kamioi.settings import Settings

pytestmark = pytest.mark.usefixtures("stack_worker_paused")  # the import must stay queued


def test_follow_ends_on_the_message_that_the_job_finished(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"user_id,date,descriptor,amount\n{'0' * 8},2026-03-01,SHOP {time.time_ns()},1.00\n")
    with connect(settings.db_url, autocommit=True) as conn:
        job = create_import(
            conn, kind="transactions", file=StoredFile(path=str(path), sha256=f"{time.time_ns():064x}", size=1)
        )
        try:
            messages = [
                {"id": job.id, "state": "running", "processed_rows": 500, "total_rows": 1000},
                {"id": job.id, "state": "succeeded", "processed_rows": 1000, "total_rows": 1000,
                 "total_rows_exact": True, "inserted_rows": 990, "rejected_rows": 10},
            ]  # fmt: skip

            def send() -> None:
                time.sleep(0.3)  # after follow() has read the row
                with connect(settings.db_url, autocommit=True) as writer:
                    for message in messages:
                        writer.execute(
                            "select private.publish_job_progress(%s, %s, %s::jsonb)",
                            (PROGRESS_TOPIC, PROGRESS_EVENT, json.dumps(message)),
                        )

            out = io.StringIO()
            with ListenFeed(settings.db_url, topic=PROGRESS_TOPIC, event=PROGRESS_EVENT, job_id=job.id) as feed:
                sender = threading.Thread(target=send)
                sender.start()
                started = time.monotonic()
                shown = follow(conn, feed, job.id, ProgressPrinter(out))
                sender.join()
            assert time.monotonic() - started < 5
            assert (shown.state, shown.processed_rows, shown.rejected_rows) == ("succeeded", 1000, 10)
            assert "1,000/1,000 rows" in out.getvalue() and "succeeded" in out.getvalue()
            row = get_import(conn, job.id)
            assert row is not None and row.state == "queued", "the bar followed the messages, not the row"
        finally:
            cancel_import(conn, job.id)
