"""POST /v1/exports and friends: admins queue a CSV export of a filtered list, follow it, cancel it,
download the file; users cannot; filters are validated before anything is queued."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from jobs.inline import InlineRun
from kamioi.settings import Settings
from tests.jobs.support import jobs_settings

# The export is run inline here; the stack's worker would race it.
pytestmark = pytest.mark.usefixtures("stack_worker_paused")


async def test_an_export_is_queued_followed_and_downloaded(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    admin_id: str,
    settings: Settings,
    owner_db: psycopg.Connection[Any],
) -> None:
    body = {"list": "users", "filters": {"role": "admin"}}
    created = await client.post("/v1/exports", json=body, headers=admin_headers)
    assert created.status_code == 202, created.text
    export = created.json()
    assert (export["state"], export["list"], export["filters"]) == ("queued", "users", {"role": "admin"})
    early = await client.get(f"/v1/exports/{export['id']}/download", headers=admin_headers)
    assert early.status_code == 409
    queue_job = owner_db.execute(
        "select queue_job_id from public.export_jobs where id = %s", (export["id"],)
    ).fetchone()
    assert queue_job is not None
    assert InlineRun(settings.db_url, queue_job[0], jobs_settings()).run() == "succeeded"
    done = (await client.get(f"/v1/exports/{export['id']}", headers=admin_headers)).json()
    assert done["state"] == "succeeded" and done["download_url"].startswith("http")  # the Storage copy's link
    mail = owner_db.execute(
        "select recipient, details ->> 'link', details ->> 'rows_written' from private.mail_outbox"
        " where job_kind = 'export' and job_id = %s",
        (export["id"],),
    ).fetchall()
    # The mail links to the API (the asking admin's token needed), never to a signed Storage URL.
    api_link = f"/v1/exports/{export['id']}/download"
    assert mail == [(f"admin-{admin_id[:8]}@test.kamioi.local", api_link, str(done["rows_written"]))]
    download = await client.get(f"/v1/exports/{export['id']}/download", headers=admin_headers)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    lines = download.text.splitlines()
    assert lines[0].startswith("id,email,display_name,role") and len(lines) - 1 == done["rows_written"]
    assert any(line.startswith(admin_id) for line in lines)
    assert all(",admin," in line for line in lines[1:])
    (settings.exports_dir / done["file_name"]).unlink()


async def test_cancel_a_queued_export(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    export = (await client.post("/v1/exports", json={"list": "transactions"}, headers=admin_headers)).json()
    cancelled = await client.post(f"/v1/exports/{export['id']}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert (await client.post("/v1/exports/999999999/cancel", headers=admin_headers)).status_code == 404
    assert (await client.get("/v1/exports/999999999", headers=admin_headers)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"list": "ledger"},
        {"list": "transactions", "filters": {"colour": "red"}},
        {"list": "transactions", "filters": {"amount_min": 9, "amount_max": 1}},
        {"list": "mappings", "filters": {"search": "ab"}},
        {"list": "mappings", "sort": "random()"},
        {"list": "users", "sort": "newest"},
    ],
)
async def test_bad_export_requests_are_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, Any]
) -> None:
    assert (await client.post("/v1/exports", json=body, headers=admin_headers)).status_code == 422


async def test_users_cannot_export(client: httpx.AsyncClient, user_headers: dict[str, str]) -> None:
    assert (await client.post("/v1/exports", json={"list": "users"}, headers=user_headers)).status_code == 403
    assert (await client.get("/v1/exports/1/download", headers=user_headers)).status_code == 403
    assert (await client.post("/v1/exports", json={"list": "users"})).status_code == 401
