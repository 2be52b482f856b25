"""The rejected-rows report as text/csv: with an admin token, or through the signed link the import's
mail carries, which needs none until it expires."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from jobs.mail import link_url
from kamioi.settings import Settings
from kamioi.signed_links import signed_path


@pytest.fixture
def rejected_import(owner_db: psycopg.Connection[Any], admin_id: str) -> Iterator[int]:
    row = owner_db.execute(
        "select id from private.create_import_job('transactions', %s, %s, 10, %s::uuid)",
        (f"/tmp/rejections-csv-{uuid.uuid4().hex}.csv", uuid.uuid4().hex * 2, admin_id),
    ).fetchone()
    assert row is not None
    for line, raw in ((3, "x,y"), (5, "=HYPERLINK(1)")):
        owner_db.execute(
            "insert into public.import_rejections (import_job_id, line_number, column_name, reason, raw_line)"
            " values (%s, %s, 'amount', 'not an amount', %s)",
            (row[0], line, raw),
        )
    owner_db.commit()
    yield row[0]
    owner_db.execute("delete from public.import_rejections where import_job_id = %s", (row[0],))
    owner_db.execute("select private.cancel_import_job(%s)", (row[0],))
    owner_db.commit()


def _relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_the_mails_link_opens_the_csv_without_a_token(
    client: httpx.AsyncClient, api_settings: Settings, rejected_import: int
) -> None:
    url = link_url(f"/v1/imports/{rejected_import}/rejections", api_settings)
    response = await client.get(_relative(url))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert f"import-{rejected_import}-rejections.csv" in response.headers["content-disposition"]
    assert response.text.splitlines() == [
        "line_number,column,reason,raw",
        '3,amount,not an amount,"x,y"',
        "5,amount,not an amount,'=HYPERLINK(1)",
    ]


async def test_a_link_that_is_altered_moved_or_expired_is_refused(
    client: httpx.AsyncClient, api_settings: Settings, rejected_import: int
) -> None:
    path = f"/v1/imports/{rejected_import}/rejections.csv"
    good = signed_path(api_settings, path)
    assert good is not None
    expires = good.split("expires=")[1].split("&")[0]
    refused = [
        good.replace(f"expires={expires}", f"expires={int(expires) + 1}"),  # a later expiry, same signature
        good.replace(str(rejected_import), str(rejected_import + 1), 1),  # another import's report
        signed_path(api_settings, path, ttl_s=-10),  # expired
        f"{path}?expires={expires}",  # a half link
    ]
    for link in refused:
        assert link is not None
        response = await client.get(link)
        assert response.status_code in (403, 422), (link, response.text)
        assert response.status_code == 403 or "signature" in response.text
    assert (await client.get(path)).status_code == 401


async def test_with_a_token_it_is_for_admins(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    user_headers: dict[str, str],
    rejected_import: int,
) -> None:
    path = f"/v1/imports/{rejected_import}/rejections.csv"
    assert (await client.get(path, headers=user_headers)).status_code == 403
    response = await client.get(path, headers=admin_headers)
    assert response.status_code == 200 and response.text.startswith("line_number,column,reason,raw")
    assert (await client.get("/v1/imports/999999999/rejections.csv", headers=admin_headers)).status_code == 404
