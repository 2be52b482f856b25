"""Postgres Changes: what Supabase Realtime reads. A wal2json (format-version 2) slot, filtered to the
supabase_realtime publication the way Realtime does, sees the published tables' changes and nothing else."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kamioi.db import connect
from kamioi.settings import Settings


@pytest.fixture
def slot(settings: Settings) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    """A logical slot owned by `postgres` (REPLICATION, like on hosted Supabase), dropped afterwards."""
    name = f"kamioi_test_{uuid.uuid4().hex[:12]}"
    with connect(settings.db_url, autocommit=True) as conn:
        conn.execute("select pg_create_logical_replication_slot(%s, 'wal2json')", (name,))
        try:
            yield conn, name
        finally:
            conn.execute("select pg_drop_replication_slot(%s)", (name,))


def published_tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "select schemaname || '.' || tablename from pg_publication_tables"
        " where pubname = 'supabase_realtime' order by 1"
    ).fetchall()
    return [row[0] for row in rows]


def read_changes(conn: psycopg.Connection[Any], slot_name: str, tables: list[str]) -> list[dict[str, Any]]:
    rows = conn.execute(
        "select data from pg_logical_slot_get_changes(%s, null, null,"
        " 'format-version', '2', 'include-transaction', 'false', 'add-tables', %s)",
        (slot_name, ",".join(tables)),
    ).fetchall()
    return [json.loads(row[0]) for row in rows]


def columns(change: dict[str, Any], key: str = "columns") -> dict[str, Any]:
    return {column["name"]: column["value"] for column in change.get(key, [])}


def test_published_tables_are_profiles_and_merchants(db: psycopg.Connection[Any]) -> None:
    assert published_tables(db) == ["public.merchants", "public.profiles"]


def test_slot_sees_inserts_updates_and_deletes_of_published_tables_only(
    slot: tuple[psycopg.Connection[Any], str],
) -> None:
    conn, slot_name = slot
    user_id = str(uuid.uuid4())
    merchant_key = f"wal2json test {uuid.uuid4().hex[:8]}"
    with conn.transaction():
        # A sign-up: the trigger inserts the profile (published).
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)", (user_id, f"{user_id}@wal2json.test")
        )
        conn.execute("update public.profiles set display_name = 'Renamed' where id = %s", (user_id,))
        conn.execute(
            "insert into public.merchants (merchant_key, display_name) values (%s, 'Before')", (merchant_key,)
        )
        conn.execute("update public.merchants set display_name = 'After' where merchant_key = %s", (merchant_key,))
        # Not published: a mapping change must not reach Postgres Changes.
        conn.execute(
            "insert into public.llm_mappings (merchant_name, merchant_key) values ('WAL2JSON', %s)",
            (merchant_key,),
        )
    with conn.transaction():
        conn.execute("delete from public.llm_mappings where merchant_key = %s", (merchant_key,))
        conn.execute("delete from public.merchants where merchant_key = %s", (merchant_key,))
        conn.execute("delete from auth.users where id = %s", (user_id,))

    changes = read_changes(conn, slot_name, published_tables(conn))
    assert {c["table"] for c in changes} <= {"profiles", "merchants"}
    merchant_ids = {columns(c)["id"] for c in changes if columns(c).get("merchant_key") == merchant_key}
    ours = [
        c
        for c in changes
        if (c["table"] == "profiles" and user_id in (columns(c).get("id"), columns(c, "identity").get("id")))
        or (c["table"] == "merchants" and merchant_ids & {columns(c).get("id"), columns(c, "identity").get("id")})
    ]
    assert [(c["table"], c["action"]) for c in ours] == [
        ("profiles", "I"),
        ("profiles", "U"),
        ("merchants", "I"),
        ("merchants", "U"),
        ("merchants", "D"),
        ("profiles", "D"),
    ]

    profile_insert, profile_update = ours[0], ours[1]
    assert columns(profile_insert)["role"] == "user"
    assert columns(profile_update)["display_name"] == "Renamed"
    # Replica identity DEFAULT: updates and deletes identify the row by its primary key only.
    assert list(columns(profile_update, "identity")) == ["id"]
    merchant_delete = ours[4]
    assert list(columns(merchant_delete, "identity")) == ["id"]
    assert columns(ours[3])["display_name"] == "After"
