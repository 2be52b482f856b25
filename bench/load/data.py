"""What the load scenario needs before it starts: bench users with history, admins, pending mappings,
an imported file whose merchants are not mapped yet, and the 2M-row file imported during the run."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.db_bench import ensure_users, generate, top_up, transaction_rows_sql
from cli.generate import TRANSACTION_COLUMNS, generate_transactions, user_pool
from jobs.imports.service import ImportJob, create_import, get_import
from jobs.inline import InlineRun
from kamioi.settings import Settings
from local_stack.keys import KeyMaterial
from local_stack.tokens import access_token_claims, sign


def bench_user_id(n: int) -> str:
    """The id bench/db_bench.py gives bench user n (1-based), so pgbench can compute it in SQL."""
    return f"00000000-0000-4000-b000-{n:012x}"


def preload(conn: psycopg.Connection[Any], *, users: int, transactions: int, mappings: int) -> None:
    """Bench users with `transactions` purchases between them and a review queue (db_bench's
    in-database generators; its totals count every transaction, so the users' own are topped up)."""
    ensure_users(conn, users)
    generate(conn, mappings, 0, users)
    first, last = bench_user_id(1), bench_user_id(users)
    row = conn.execute(
        "select count(*) from public.transactions where user_id between %s and %s", (first, last)
    ).fetchone()
    have = int(row[0]) if row else 0
    conn.commit()
    top_up(conn, "bench users' transactions", have, transactions, lambda f, c: transaction_rows_sql(f, c, users))
    conn.execute("select private.compact_stats()")
    conn.commit()
    conn.autocommit = True
    conn.execute("vacuum (analyze) public.transactions")


def admin_tokens(conn: psycopg.Connection[Any], keys: KeyMaterial, issuer: str, count: int) -> list[str]:
    """`count` admins (created once, by fixed ids), each with an access token."""
    ids = [str(uuid.UUID(int=0xA11CE << 80 | n)) for n in range(count)]
    for user_id in ids:
        conn.execute(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated', 'authenticated', %s)"
            " on conflict (id) do nothing",
            (user_id, f"load-admin-{user_id[-4:]}@bench.local"),
        )
        conn.execute("update public.profiles set role = 'admin' where id = %s and role <> 'admin'", (user_id,))
    return [
        sign(access_token_claims(user_id=i, email="load-admin@bench.local", user_role="admin", issuer=issuer), keys)
        for i in ids
    ]


def write_import_file(path: Path, rows: int, users: int, seed: int) -> Path:
    """Realistic purchases (cli.generate) by the bench users, streamed to disk."""
    bench_ids = {pool_id: bench_user_id(n + 1) for n, pool_id in enumerate(user_pool(users, seed))}
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TRANSACTION_COLUMNS)
        for row in generate_transactions(rows, seed=seed, bad_fraction=0.001, users=users):
            writer.writerow([bench_ids.get(row[0], row[0]), *row[1:]])
    return path


def import_now(conn: psycopg.Connection[Any], db_url: str, path: Path) -> ImportJob:
    """Import `path` in this process (setup, untimed): its transactions wait for merchant mapping."""
    job = create_import(conn, kind="transactions", file=path, force=True)
    assert job.queue_job_id is not None
    InlineRun(db_url, job.queue_job_id, Settings()).run()
    done = get_import(conn, job.id)
    assert done is not None
    return done
