"""Mails about finished imports: enqueued when the job ends, sent over SMTP by the worker, retried,
dead-lettered when SMTP stays down, and never in the job's way."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from jobs.imports.service import create_import, get_import
from jobs.mail import MAIL_DELIVER_KIND, deliver_batch
from kamioi.settings import Settings
from local_stack.standins.smtp_catcher import Inbox, serve_in_thread
from tests.conftest import free_port
from tests.jobs.conftest import ADMIN_ID, Workers, wait_until
from tests.jobs.support import run_inline, transactions_csv

pytestmark = pytest.mark.usefixtures("stack_worker_paused")

ADMIN_EMAIL = "admin@kamioi.local"  # the seeded admin's auth email


@pytest.fixture
def catcher(tmp_path: Path) -> Any:
    port = free_port()
    with serve_in_thread(tmp_path / "mail", port=port) as inbox:
        yield port, inbox


def finished_import_mail(conn: psycopg.Connection[Any], settings: Settings, path: Path) -> tuple[int, int]:
    """An import started by the seeded admin, run to its end with one rejected line: (import id, mail id)."""
    transactions_csv(path, 3, extra_lines=["not-a-uuid,2026-03-01,SHOP,1.00,x"])
    job = create_import(conn, kind="transactions", file=path, created_by=UUID(ADMIN_ID))
    assert run_inline(settings.db_url, job) == "succeeded"
    rows = conn.execute(
        "select id from private.mail_outbox where job_kind = 'import' and job_id = %s", (job.id,)
    ).fetchall()
    assert len(rows) == 1, "one mail per finished import"
    return job.id, rows[0][0]


def outbox(conn: psycopg.Connection[Any], mail_id: int) -> dict[str, Any]:
    row = conn.execute(
        "select state, attempts, last_error, next_attempt_at - clock_timestamp()"
        " from private.mail_outbox where id = %s",
        (mail_id,),
    ).fetchone()
    assert row is not None
    return dict(zip(("state", "attempts", "last_error", "due_in"), row, strict=True))


def test_the_admin_gets_the_counts_and_the_link(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path, catcher: tuple[int, Inbox]
) -> None:
    port, inbox = catcher
    import_id, mail_id = finished_import_mail(conn, settings, tmp_path / "a.csv")
    claimed, sent = deliver_batch(conn, settings.model_copy(update={"smtp_port": port}), only_ids=[mail_id])
    assert (claimed, sent.sent) == (1, 1)
    assert outbox(conn, mail_id)["state"] == "sent"
    [message] = inbox.messages()
    assert message["To"] == ADMIN_EMAIL
    assert message["Subject"] == f"Kamioi: import job {import_id} succeeded"
    body = message.get_content()
    assert "processed rows: 4" in body and "inserted rows: 3" in body and "rejected rows: 1" in body
    # The rejected rows' CSV, as a signed link a mail client opens without a token (tests/api/test_rejections_csv.py).
    assert f"{settings.api_url}/v1/imports/{import_id}/rejections.csv?expires=" in body and "&signature=" in body
    # Sent is sent: a second delivery round finds nothing to claim.
    assert deliver_batch(conn, settings.model_copy(update={"smtp_port": port}), only_ids=[mail_id])[0] == 0


def test_smtp_down_retries_with_backoff_then_dead_letter(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path, dead_port: int
) -> None:
    import_id, mail_id = finished_import_mail(conn, settings, tmp_path / "a.csv")
    job = get_import(conn, import_id)
    assert job is not None and job.state == "succeeded"  # ended before any mail was tried
    down = settings.model_copy(
        update={"smtp_port": dead_port, "mail_max_attempts": 3, "mail_retry_base_s": 0.2, "mail_retry_max_s": 0.3}
    )
    deliver_batch(conn, down, only_ids=[mail_id])
    first = outbox(conn, mail_id)
    assert (first["state"], first["attempts"]) == ("pending", 1)
    assert "ConnectionRefused" in first["last_error"]
    assert 0 < first["due_in"].total_seconds() <= 0.2  # base * 2^0
    # Not due yet: nothing is claimed before the backoff ends.
    assert deliver_batch(conn, down, only_ids=[mail_id])[0] == 0
    for _ in range(2):
        wait_until(lambda: deliver_batch(conn, down, only_ids=[mail_id])[0] == 1, 5, "the retry to fall due")
    last = outbox(conn, mail_id)
    assert (last["state"], last["attempts"]) == ("dead", 3)
    time.sleep(0.35)
    assert deliver_batch(conn, down, only_ids=[mail_id])[0] == 0, "a dead letter is never tried again"


def test_the_worker_sends_what_an_ending_import_queued(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path, catcher: tuple[int, Inbox], workers: Workers
) -> None:
    port, inbox = catcher
    import_id, mail_id = finished_import_mail(conn, settings, tmp_path / "a.csv")
    queued = conn.execute(
        "select count(*) from private.job_queue where kind = %s and state = 'queued'", (MAIL_DELIVER_KIND,)
    ).fetchone()
    assert queued == (1,)
    workers.start(MAIL_DELIVER_KIND, env={"SMTP_PORT": str(port)})
    wait_until(lambda: outbox(conn, mail_id)["state"] == "sent", 20, "the worker to send the mail")
    assert any(m["Subject"] == f"Kamioi: import job {import_id} succeeded" for m in inbox.messages())
