"""The local-only Supabase bootstrap: roles, auth helpers, realtime, publication, migration history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kamioi.db import postgrest_request

ROLE_ATTRIBUTES = {
    # role: (can login, inherits, bypasses RLS, superuser)
    "anon": (False, True, False, False),
    "authenticated": (False, True, False, False),
    "service_role": (False, False, True, False),
    "authenticator": (True, False, False, False),
    "postgres": (True, True, True, False),
    "supabase_admin": (True, True, True, True),
}


@pytest.mark.parametrize("role", sorted(ROLE_ATTRIBUTES))
def test_role_exists_with_supabase_attributes(db: psycopg.Connection[Any], role: str) -> None:
    row = db.execute(
        "select rolcanlogin, rolinherit, rolbypassrls, rolsuper from pg_roles where rolname = %s", (role,)
    ).fetchone()
    assert row == ROLE_ATTRIBUTES[role]


def test_authenticator_can_become_each_api_role(db: psycopg.Connection[Any]) -> None:
    granted = {
        name
        for (name,) in db.execute(
            "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid "
            "join pg_roles u on u.oid = m.member where u.rolname = 'authenticator'"
        )
    }
    assert {"anon", "authenticated", "service_role"} <= granted


def test_api_roles_have_statement_timeouts(db: psycopg.Connection[Any]) -> None:
    timeouts = dict(
        db.execute(
            "select r.rolname, s.cfg from pg_roles r "
            "cross join lateral unnest(r.rolconfig) as s(cfg) where s.cfg like 'statement_timeout=%%'"
        ).fetchall()
    )
    assert timeouts["anon"] == "statement_timeout=3s"
    assert timeouts["authenticated"] == "statement_timeout=8s"


def test_auth_helpers_read_postgrest_claims(db: psycopg.Connection[Any]) -> None:
    claims = {"sub": "00000000-0000-4000-a000-000000000002", "email": "user@kamioi.local", "aud": "authenticated"}
    with postgrest_request(db, "authenticated", claims, read_only=True) as cur:
        row = cur.execute(
            "select auth.uid()::text as uid, auth.role() as role, auth.email() as email, auth.jwt() as jwt,"
            " current_user as current_role"
        ).fetchone()
    assert row is not None
    assert row["uid"] == claims["sub"]
    assert row["role"] == "authenticated"
    assert row["email"] == "user@kamioi.local"
    assert row["jwt"]["aud"] == "authenticated"
    assert row["current_role"] == "authenticated"


def test_auth_uid_honours_legacy_per_claim_setting(db: psycopg.Connection[Any]) -> None:
    with db.transaction():
        db.execute("select set_config('request.jwt.claim.sub', %s, true)", ("00000000-0000-4000-a000-00000000000f",))
        row = db.execute("select auth.uid()::text").fetchone()
    assert row == ("00000000-0000-4000-a000-00000000000f",)


def test_anon_has_no_uid(db: psycopg.Connection[Any]) -> None:
    with postgrest_request(db, "anon", read_only=True) as cur:
        row = cur.execute("select auth.uid() as uid").fetchone()
    assert row == {"uid": None}


def test_realtime_send_writes_a_broadcast_message(superuser_db: psycopg.Connection[Any]) -> None:
    topic = "test:bootstrap:send"
    superuser_db.execute("select realtime.send(%s::jsonb, 'ping', %s, true)", (json.dumps({"n": 1}), topic))
    row = superuser_db.execute(
        "select payload, event, extension, private from realtime.messages where topic = %s", (topic,)
    ).fetchone()
    superuser_db.execute("delete from realtime.messages where topic = %s", (topic,))
    assert row == ({"n": 1}, "ping", "broadcast", True)


def test_realtime_topic_reads_the_setting(db: psycopg.Connection[Any]) -> None:
    with db.transaction():
        db.execute("select set_config('realtime.topic', 'user:abc:transactions', true)")
        assert db.execute("select realtime.topic()").fetchone() == ("user:abc:transactions",)


def test_supabase_realtime_publication_exists(db: psycopg.Connection[Any]) -> None:
    assert db.execute("select count(*) from pg_publication where pubname = 'supabase_realtime'").fetchone() == (1,)


def test_logical_decoding_is_configured(superuser_db: psycopg.Connection[Any]) -> None:
    assert superuser_db.execute("show wal_level").fetchone() == ("logical",)
    plugins = superuser_db.execute("show output_plugin_libraries").fetchone()
    assert plugins is not None and "wal2json" in plugins[0]


def test_cli_recorded_every_migration(db: psycopg.Connection[Any]) -> None:
    on_disk = sorted(p.name.split("_", 1)[0] for p in Path("supabase/migrations").glob("*.sql"))
    recorded = [v for (v,) in db.execute("select version from supabase_migrations.schema_migrations order by 1")]
    assert on_disk, "no migrations on disk"
    assert recorded == on_disk
