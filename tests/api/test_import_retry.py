"""POST /v1/imports/{id}/retry: a failed or cancelled import is queued again at its checkpoint;
anything else is refused with a problem document."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from jobs.imports.service import ImportJob, StoredFile, create_import, local_file

# The retried jobs must stay queued for the assertions: the stack's own worker would run them.
pytestmark = pytest.mark.usefixtures("stack_worker_paused")

MakeImport = Callable[..., ImportJob]


@pytest.fixture
def make_import(owner_db: psycopg.Connection[Any], tmp_path: Path) -> Iterator[MakeImport]:
    """Register an import of a new file (or of `same_as`'s file) and put its queue job in `state`;
    every import made is cancelled at the end (a no-op once finished)."""
    made: list[int] = []

    def make(state: str, same_as: ImportJob | None = None) -> ImportJob:
        path = tmp_path / f"{uuid.uuid4().hex}.csv"
        path.write_text(f"user_id,txn_date,descriptor,amount\n{uuid.uuid4()},2026-03-01,SHOP,1.00\n")
        sha256 = same_as.file_sha256 if same_as else None
        file = StoredFile(path=str(path), sha256=sha256, size=1) if sha256 else local_file(path)
        job = create_import(owner_db, kind="transactions", file=file, force=True)
        made.append(job.id)
        if state != "queued":
            owner_db.execute(
                "update private.job_queue set state = %s, attempts = 5, last_error = 'the database went away',"
                " lease_token = case when %s = 'running' then gen_random_uuid() end, lease_until = now(),"
                " finished_at = now() where id = %s",  # a running one's lease has run out: reaped later
                (state, state, job.queue_job_id),
            )
        return job

    yield make
    for import_id in made:
        owner_db.execute("select private.cancel_import_job(%s)", (import_id,))


async def test_a_failed_import_is_queued_again_at_its_checkpoint(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_import: MakeImport,
    owner_db: psycopg.Connection[Any],
) -> None:
    job = make_import("failed")
    owner_db.execute(  # two chunks had committed before the failure
        "update public.import_jobs set checkpoint_offset = 900, checkpoint_line = 41, processed_rows = 40,"
        " inserted_rows = 39, rejected_rows = 1 where id = %s",
        (job.id,),
    )
    response = await client.post(f"/v1/imports/{job.id}/retry", headers=admin_headers)
    assert response.status_code == 200, response.text
    retried = response.json()
    assert (retried["id"], retried["state"], retried["cancel_requested"]) == (job.id, "queued", False)
    assert (retried["processed_rows"], retried["inserted_rows"], retried["rejected_rows"]) == (40, 39, 1)
    assert retried["finished_at"] is None
    queued = owner_db.execute(
        "select state, max_attempts - attempts from private.job_queue where id = %s", (job.queue_job_id,)
    ).fetchone()
    assert queued == ("queued", 5)
    checkpoint = owner_db.execute(
        "select checkpoint_offset, checkpoint_line from public.import_jobs where id = %s", (job.id,)
    ).fetchone()
    assert checkpoint == (900, 41)


async def test_a_cancelled_import_is_queued_again(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_import: MakeImport
) -> None:
    job = make_import("queued")
    cancelled = await client.post(f"/v1/imports/{job.id}/cancel", headers=admin_headers)
    assert cancelled.json()["state"] == "cancelled"
    response = await client.post(f"/v1/imports/{job.id}/retry", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert (response.json()["state"], response.json()["cancel_requested"]) == ("queued", False)


@pytest.mark.parametrize(
    ("state", "phrase"), [("queued", "is queued"), ("running", "is running"), ("succeeded", "has succeeded")]
)
async def test_only_failed_or_cancelled_imports_are_retried(
    state: str, phrase: str, client: httpx.AsyncClient, admin_headers: dict[str, str], make_import: MakeImport
) -> None:
    job = make_import(state)
    response = await client.post(f"/v1/imports/{job.id}/retry", headers=admin_headers)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    refused = f"import job {job.id} {phrase}: only a failed or cancelled import can be retried"
    assert response.json()["detail"] == refused


async def test_a_file_imported_again_since_is_retried_only_with_force(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_import: MakeImport
) -> None:
    failed = make_import("failed")
    again = make_import("succeeded", same_as=failed)
    refused = await client.post(f"/v1/imports/{failed.id}/retry", headers=admin_headers)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert f"import job {again.id} of the same file" in detail and f"/v1/imports/{again.id}" in detail
    assert "has succeeded: its rows would land twice" in detail
    assert "force=true" in detail
    forced = await client.post(f"/v1/imports/{failed.id}/retry", params={"force": True}, headers=admin_headers)
    assert (forced.status_code, forced.json()["state"]) == (200, "queued")


async def test_unknown_import_is_404(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    response = await client.post("/v1/imports/999999999/retry", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "import job 999999999 not found"


async def test_only_admins_retry(
    client: httpx.AsyncClient,
    user_headers: dict[str, str],
    make_import: MakeImport,
    owner_db: psycopg.Connection[Any],
) -> None:
    job = make_import("failed")
    as_user = await client.post(f"/v1/imports/{job.id}/retry", headers=user_headers)
    assert as_user.status_code == 403
    anonymous = await client.post(f"/v1/imports/{job.id}/retry")
    assert anonymous.status_code == 401
    state = owner_db.execute("select state from public.import_jobs where id = %s", (job.id,)).fetchone()
    assert state == ("failed",)
