"""The jobs view: `GET /v1/jobs?state=...` and `kamioi jobs` list failed and cancelled queue jobs and dead
mails, newest first, in signed keyset pages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from cli.main import main as kamioi


@pytest.fixture
def seeded_jobs(owner_db: psycopg.Connection[Any]) -> Iterator[tuple[str, list[int], int, int]]:
    """A kind of its own with three failed jobs and one cancelled (ids ascending), and one dead mail."""
    kind = f"test.jobs_{uuid.uuid4().hex[:10]}"
    failed = [
        owner_db.execute(
            "insert into private.job_queue (kind, state, attempts, last_error, finished_at)"
            " values (%s, 'failed', 5, %s, now()) returning id",
            (kind, f"boom {n}"),
        ).fetchone()[0]  # type: ignore[index]
        for n in range(3)
    ]
    cancelled = owner_db.execute(
        "insert into private.job_queue (kind, state, finished_at) values (%s, 'cancelled', now()) returning id",
        (kind,),
    ).fetchone()[0]  # type: ignore[index]
    mail = owner_db.execute(
        "insert into private.mail_outbox (job_kind, job_id, recipient, state, attempts, last_error)"
        " values (%s, 7, 'someone@test.kamioi.local', 'dead', 6, '550 mailbox unavailable') returning id",
        (kind,),
    ).fetchone()[0]  # type: ignore[index]
    owner_db.commit()
    yield kind, failed, cancelled, mail
    owner_db.execute("delete from private.job_queue where kind = %s", (kind,))
    owner_db.execute("delete from private.mail_outbox where id = %s", (mail,))
    owner_db.commit()


async def test_failed_jobs_page_newest_first(
    client: httpx.AsyncClient, admin_headers: dict[str, str], seeded_jobs: tuple[str, list[int], int, int]
) -> None:
    kind, failed, _, _ = seeded_jobs
    first = await client.get("/v1/jobs", params={"state": "failed", "kind": kind, "limit": 2}, headers=admin_headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [(j["id"], j["state"], j["last_error"]) for j in page["items"]] == [
        (failed[2], "failed", "boom 2"),
        (failed[1], "failed", "boom 1"),
    ]
    rest = (
        await client.get(
            "/v1/jobs",
            params={"state": "failed", "kind": kind, "limit": 2, "cursor": page["next_cursor"]},
            headers=admin_headers,
        )
    ).json()
    assert [j["id"] for j in rest["items"]] == [failed[0]] and rest["next_cursor"] is None
    # The cursor is bound to the state and kind it was made for.
    moved = await client.get(
        "/v1/jobs", params={"state": "cancelled", "kind": kind, "cursor": page["next_cursor"]}, headers=admin_headers
    )
    assert moved.status_code == 422


async def test_cancelled_jobs_and_dead_mails(
    client: httpx.AsyncClient, admin_headers: dict[str, str], seeded_jobs: tuple[str, list[int], int, int]
) -> None:
    kind, _, cancelled, mail = seeded_jobs
    response = await client.get("/v1/jobs", params={"state": "cancelled", "kind": kind}, headers=admin_headers)
    assert [j["id"] for j in response.json()["items"]] == [cancelled]
    dead = (await client.get("/v1/jobs", params={"state": "dead", "limit": 100}, headers=admin_headers)).json()
    entry = next(j for j in dead["items"] if j["id"] == mail)
    assert entry["kind"] == "mail" and entry["state"] == "dead" and entry["attempts"] == 6
    assert entry["payload"]["job_kind"] == kind and entry["payload"]["recipient"] == "someone@test.kamioi.local"
    assert entry["last_error"] == "550 mailbox unavailable"


async def test_the_jobs_view_is_for_admins_and_known_states(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    assert (await client.get("/v1/jobs", params={"state": "failed"}, headers=user_headers)).status_code == 403
    assert (await client.get("/v1/jobs", params={"state": "failed"})).status_code == 401
    refused: list[dict[str, str]] = [
        {"state": "broken"},
        {},
        {"state": "failed", "kind": "x'; drop"},
        {"state": "failed", "limit": "0"},
    ]
    for params in refused:
        assert (await client.get("/v1/jobs", params=params, headers=admin_headers)).status_code == 422


def test_kamioi_jobs_prints_the_same_view(
    seeded_jobs: tuple[str, list[int], int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    kind, failed, _, mail = seeded_jobs
    with pytest.raises(SystemExit) as exit_info:
        kamioi(["jobs", "--kind", kind, "--limit", "2"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    listed = [int(line.split()[0]) for line in out.splitlines() if line.split()[0].isdigit()]
    assert listed == [failed[2], failed[1]]
    assert "boom 2" in out and "5 attempts" in out
    assert f"more: kamioi jobs --state failed --kind {kind} --before {failed[1]}" in out
    with pytest.raises(SystemExit):
        kamioi(["jobs", "--state", "dead", "--kind", "mail", "--limit", "100"])
    dead = capsys.readouterr().out
    assert f"{mail}  mail" in dead and f"{kind} 7 to someone@test.kamioi.local" in dead


async def test_bad_input_is_counted_apart_from_failures(
    client: httpx.AsyncClient, owner_db: psycopg.Connection[Any]
) -> None:
    kind = f"test.metrics_{uuid.uuid4().hex[:10]}"
    for bad_input in (True, True, False):
        owner_db.execute(
            "insert into private.job_queue (kind, state, finished_at, bad_input) values (%s, 'failed', now(), %s)",
            (kind, bad_input),
        )
    owner_db.commit()
    try:
        text = (await client.get("/metrics")).text
    finally:
        owner_db.execute("delete from private.job_queue where kind = %s", (kind,))
        owner_db.commit()
    assert f'kamioi_jobs_bad_input_last_hour{{kind="{kind}"}} 2.0' in text
    assert f'kamioi_jobs_failed_last_hour{{kind="{kind}"}} 1.0' in text
