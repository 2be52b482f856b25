"""Admin lists benchmark (issue 13): keyset pages of the admin list RPCs at depth, OFFSET beside them.

Two steps, each its own subcommand, against a throwaway stack (KAMIOI_STATE_DIR / KAMIOI_ENV_FILE /
KAMIOI_DB_PORT ...; never the default one: `generate` writes tens of millions of rows):

    python bench/admin_lists_bench.py generate      # 20M transactions, 15M mappings, allocations, users
    python bench/admin_lists_bench.py run           # page 1 vs deep page vs OFFSET, plans, ratios

`generate` is set-based SQL run as the superuser with session_replication_role = replica (no
triggers, no foreign-key checks) after dropping the secondary indexes; it then rebuilds the indexes,
recomputes what the triggers would have kept (stat totals, holdings, private.user_totals when it
exists) with one aggregate each, and runs VACUUM ANALYZE. It refuses to run twice on the same data.

`run` calls each RPC as an admin the way PostgREST does (one transaction: role, claims, the query)
and times it in the server (EXPLAIN ANALYZE execution time) and round trip; for each common filter:
page 1, the page after the row at depth D (found by one OFFSET query over the same filtered order,
which is also the OFFSET contrast), p50/p95 over --repeat runs, ratios within the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.db_bench import Timing, log
from kamioi.db import connect, postgrest_preamble
from kamioi.settings import get_settings

BENCH_ADMIN_ID = "00000000-0000-4000-b000-000000000000"
# Bench users are 00000000-0000-4000-c000-<n as 12 hex digits>, n = 1..users.
USER_ID_SQL = "('00000000-0000-4000-c000-' || lpad(to_hex({n}), 12, '0'))::uuid"
CHUNK_ROWS = 1_000_000
DAYS = 720  # transactions and mappings spread over the last 720 days (24 monthly partitions)
IMPORT_BATCH = 50_000  # transactions per import job

# Merchant m (1..M): name = FIRST[m % 40] || ' ' || NOUN[(m / 40) % 40] || ' ' || m / 1600.
FIRST = (
    "Blue", "Golden", "Green", "Urban", "Sunset", "River", "Royal", "Silver", "North", "Coastal",
    "Mountain", "Metro", "Lucky", "Happy", "Prime", "Star", "Eagle", "Oak", "Maple", "Harbor",
    "Red", "Bright", "City", "Village", "Pacific", "Atlantic", "Liberty", "Summit", "Pioneer", "Sierra",
    "Crystal", "Evergreen", "Highland", "Lakeside", "Orchard", "Union", "Central", "Capital", "Grand", "Little",
)
NOUN = (
    "Coffee", "Market", "Grill", "Pharmacy", "Books", "Fitness", "Pizza", "Bakery", "Hardware", "Cinema",
    "Diner", "Auto", "Salon", "Taqueria", "Deli", "Outfitters", "Florist", "Pet Supply", "Sushi", "Brewing",
    "Electronics", "Garden", "Laundry", "Dental", "Travel", "Hotel", "Fuel", "Cafe", "Noodle", "Burger",
    "Wine", "Optical", "Toys", "Furniture", "Sports", "Music", "Tailor", "Car Wash", "Donuts", "Tea House",
)
# A category per noun (Plaid primary categories the table accepts).
NOUN_CATEGORY = (
    "FOOD_AND_DRINK", "GENERAL_MERCHANDISE", "FOOD_AND_DRINK", "MEDICAL", "GENERAL_MERCHANDISE",
    "PERSONAL_CARE", "FOOD_AND_DRINK", "FOOD_AND_DRINK", "HOME_IMPROVEMENT", "ENTERTAINMENT",
    "FOOD_AND_DRINK", "TRANSPORTATION", "PERSONAL_CARE", "FOOD_AND_DRINK", "FOOD_AND_DRINK",
    "GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE", "FOOD_AND_DRINK", "FOOD_AND_DRINK",
    "GENERAL_MERCHANDISE", "HOME_IMPROVEMENT", "GENERAL_SERVICES", "MEDICAL", "TRAVEL",
    "TRAVEL", "TRANSPORTATION", "FOOD_AND_DRINK", "FOOD_AND_DRINK", "FOOD_AND_DRINK",
    "FOOD_AND_DRINK", "MEDICAL", "GENERAL_MERCHANDISE", "HOME_IMPROVEMENT", "ENTERTAINMENT",
    "ENTERTAINMENT", "GENERAL_SERVICES", "TRANSPORTATION", "FOOD_AND_DRINK", "FOOD_AND_DRINK",
)


def sql_array(values: tuple[str, ...]) -> str:
    return "array[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def unit(expr: str, salt: int) -> str:
    """A deterministic pseudo-random number in [0, 1) from a bigint expression."""
    return f"((hashint8(({expr}) * 7919 + {salt}) & 2147483647) / 2147483648.0)"


def merchant_name_sql(m: str) -> str:
    return (f"({sql_array(FIRST)})[1 + {m} % 40] || ' ' || ({sql_array(NOUN)})[1 + ({m} / 40) % 40]"
            f" || ' ' || ({m} / 1600)")


def ticker_sql(m: str) -> str:
    """Two thirds of merchants are listed: one of ~3,000 three/four-letter tickers; the rest private."""
    k = f"({m} % 3000)"
    return (f"case when {m} % 3 = 0 then null else chr(66 + {k} % 24) || chr(65 + ({k} / 24) % 26)"
            f" || chr(65 + ({k} / 624) % 26) || case when {k} >= 1500 then 'X' else '' end end")


# Data generation --------------------------------------------------------------------------------
@dataclass
class Sizes:
    users: int
    merchants: int
    mappings: int
    transactions: int


def run_sql(conn: psycopg.Connection[Any], what: str, sql: str, params: Any = None) -> int:
    started = time.perf_counter()
    cur = conn.execute(sql.encode() if params is None else sql, params)
    conn.commit()
    log(f"{what}: {cur.rowcount:,} rows in {time.perf_counter() - started:,.1f} s")
    return cur.rowcount


def create_mapping_partitions(owner_url: str) -> None:
    """llm_mappings keeps 3 months back; the bench spreads mappings over 24 (as the table owner)."""
    with connect(owner_url) as conn:
        conn.execute(
            "select private.create_month_partition('public.llm_mappings',"
            " (date_trunc('month', current_date) - make_interval(months => k))::date)"
            " from generate_series(1, 25) as k"
        )
        conn.execute("select count(*) from private.maintain_partitions()")
        conn.commit()


SECONDARY_INDEXES_SQL = """
select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
from pg_index as i
join pg_class as c on c.oid = i.indexrelid
where i.indrelid in ('public.transactions'::regclass, 'public.llm_mappings'::regclass,
                     'public.allocations'::regclass, 'public.merchants'::regclass)
  and not exists (select 1 from pg_constraint as k where k.conindid = i.indexrelid)
"""


def drop_secondary_indexes(conn: psycopg.Connection[Any], saved: Path) -> list[str]:
    rows = conn.execute(SECONDARY_INDEXES_SQL).fetchall()
    definitions = [str(r[1]) for r in rows]
    previous = saved.read_text().splitlines() if saved.exists() else []
    saved.write_text("\n".join(sorted(set(previous) | set(definitions))) + "\n")
    for name, _ in rows:
        conn.execute(f"drop index {name}")
    conn.commit()
    log(f"dropped {len(rows)} secondary indexes (definitions saved in {saved})")
    return definitions


def recreate_indexes(conn: psycopg.Connection[Any], saved: Path) -> None:
    conn.execute("set maintenance_work_mem = '1GB'")
    conn.execute("set max_parallel_maintenance_workers = 1")
    for definition in saved.read_text().splitlines():
        if not definition.strip():
            continue
        definition = definition.replace(" ON ONLY ", " ON ")  # a parent's definition: build every partition's
        name = definition.split()[2] if definition.startswith("CREATE INDEX") else definition.split()[3]
        exists = conn.execute("select to_regclass(%s)", (f"public.{name}",)).fetchone()
        if exists and exists[0] is not None:
            continue
        run_sql(conn, f"index {name}", definition)
    saved.unlink()


def generate_users(conn: psycopg.Connection[Any], sizes: Sizes) -> None:
    conn.execute(
        "insert into auth.users (id, email, created_at)"
        " values (%s, 'bench-admin@bench.local', now() - interval '800 days')"
        " on conflict (id) do nothing", (BENCH_ADMIN_ID,))
    conn.execute(
        "insert into public.profiles (id, email, display_name, role, created_at)"
        " values (%s, 'bench-admin@bench.local', 'Bench Admin', 'admin', now() - interval '800 days')"
        " on conflict (id) do update set role = 'admin'", (BENCH_ADMIN_ID,))
    # Users sign up over the 800 days, newest last; emails user000001@example.com ...
    created = (f"now() - make_interval(secs => (800 * 86400.0) * (1 - g::float8 / {sizes.users})"
               f" + {unit('g', 1)} * 3600)")
    run_sql(conn, "auth.users", f"""
        insert into auth.users (id, email, created_at)
        select {USER_ID_SQL.format(n='g')}, 'user' || lpad(g::text, 6, '0') || '@example.com', {created}
        from generate_series(1, {sizes.users}) as g""")
    run_sql(conn, "profiles", """
        insert into public.profiles (id, email, display_name, role, created_at, updated_at)
        select u.id, u.email, initcap(split_part(u.email, '@', 1)), 'user', u.created_at, u.created_at
        from auth.users as u
        where u.email like 'user%@example.com'""")


def mapping_rows_sql(first: int, count: int, sizes: Sizes) -> str:
    """Mappings g = first..: merchant uniform over M; created_at increases with g over DAYS days;
    90% approved, 5% pending, 5% rejected; sources llm/catalog/import/admin; 3% unknown confidence."""
    m = f"(1 + (hashint8(g) & 2147483647) % {sizes.merchants})"
    h = "((hashint8(g * 31 + 7) & 2147483647) % 1000)"
    return f"""
    insert into public.llm_mappings (created_at, merchant_name, merchant_key, company_name, ticker, category,
        confidence, status, admin_approved, source, tier, model, provider_state, import_job_id, reviewed_at,
        reviewer, updated_at)
    select created_at, name || case when h % 3 = 0 then ' #' || lpad((h * 7 % 997)::text, 4, '0') else '' end,
           lower(name), name || ' Inc', {ticker_sql('m')},
           ({sql_array(NOUN_CATEGORY)})[1 + (m / 40) % 40],
           case when h % 33 = 0 then null
                when st = 'approved' then round((0.6 + 0.4 * {unit('g', 3)})::numeric, 4)
                else round({unit('g', 4)}::numeric, 4) end,
           st, st = 'approved' and h % 10 < 3, src,
           case when st = 'pending' then 'review' when src = 'catalog' then 'catalog'
                when src = 'llm' then (array['llm', 'similarity', 'approved'])[1 + h % 3] end,
           case when src = 'llm' then 'bench-model' end,
           case when src = 'llm' then 'answered' end,
           case when src = 'import' then 1 + g % 40 end,
           case when st <> 'pending' and src <> 'catalog' then created_at + interval '2 hours' end,
           case when st <> 'pending' and h % 10 < 3 then '{BENCH_ADMIN_ID}'::uuid end,
           created_at
    from (
      select g, m, h, {merchant_name_sql('m')} as name,
             now() - make_interval(secs => {DAYS} * 86400.0 * (1 - g::float8 / {sizes.mappings}))
               - make_interval(secs => {unit('g', 2)} * 3600) as created_at,
             case when h < 900 then 'approved' when h < 950 then 'pending' else 'rejected' end as st,
             case when h % 20 < 12 then 'llm' when h % 20 < 16 then 'catalog'
                  when h % 20 < 19 then 'import' else 'admin' end as src
      from (select g, {m} as m, {h} as h from generate_series({first}::bigint, {first + count - 1}) as g) as s
    ) as r
    """


def generate_merchants(conn: psycopg.Connection[Any], sizes: Sizes) -> None:
    run_sql(conn, "merchants", f"""
        insert into public.merchants (id, merchant_key, display_name, created_at)
        select m, lower(name), name, now() - interval '{DAYS + 10} days'
        from generate_series(1, {sizes.merchants}) as m, lateral (select {merchant_name_sql('m')} as name) as n
        on conflict do nothing""")
    # The mapping in force: each merchant's newest approved mapping.
    run_sql(conn, "merchants: mapping in force", """
        update public.merchants as mm set mapping_id = f.id, mapping_created_at = f.created_at
        from (
          select distinct on (merchant_key) merchant_key, id, created_at
          from public.llm_mappings where status = 'approved'
          order by merchant_key, created_at desc, id desc
        ) as f
        where f.merchant_key = mm.merchant_key""")


def transaction_rows_sql(first: int, count: int, sizes: Sizes) -> str:
    """Purchases g = first..: txn_date increases with g over DAYS days (imports arrive in date order);
    users and merchants skewed (user 1 and merchant 1 are the heaviest); 80% invested, 8% mapped,
    7% pending, 5% failed; 6 of 7 import batches of IMPORT_BATCH rows carry their import job."""
    u = f"(1 + floor({sizes.users} * power({unit('g', 11)}, 2)))::bigint"
    m = f"(1 + floor({sizes.merchants} * power({unit('g', 12)}, 3)))::bigint"
    h = "((hashint8(g * 17 + 3) & 2147483647) % 1000)"
    return f"""
    insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up, status,
        mapping_id, import_job_id, import_line, allocation_lot, created_at, updated_at)
    select {USER_ID_SQL.format(n='s.u')}, s.d,
           'POS ' || upper(mm.display_name) || ' ' || lpad((s.h * 13 % 9973)::text, 4, '0'),
           mm.merchant_key, s.amount, ceil(s.amount) - s.amount, s.st,
           case when s.st in ('mapped', 'invested') then mm.mapping_id end,
           case when s.batch % 7 <> 0 then s.batch end,
           case when s.batch % 7 <> 0 then s.g - (s.batch - 1) * {IMPORT_BATCH} + 1 end,
           case when s.st = 'invested' and ceil(s.amount) > s.amount then 1 else 0 end,
           s.d + interval '1 day', s.d + interval '2 days'
    from (
      select g, {u} as u, {m} as m, {h} as h, 1 + (g - 1) / {IMPORT_BATCH} as batch,
             current_date - ({DAYS} - floor({DAYS} * g::float8 / {sizes.transactions}))::int
               + (hashint8(g) & 3)::int - 3 as d,
             round((1 + 499 * power({unit('g', 13)}, 2))::numeric, 2) as amount,
             case when {h} < 800 then 'invested' when {h} < 880 then 'mapped'
                  when {h} < 950 then 'pending' else 'failed' end as st
      from generate_series({first}::bigint, {first + count - 1}) as g
    ) as s
    join public.merchants as mm on mm.id = s.m
    """


def generate_import_jobs(conn: psycopg.Connection[Any], sizes: Sizes) -> None:
    batches = (sizes.transactions + IMPORT_BATCH - 1) // IMPORT_BATCH
    run_sql(conn, "import_jobs", f"""
        insert into public.import_jobs (id, kind, state, file_path, file_sha256, file_size, total_rows,
            total_rows_exact, processed_rows, inserted_rows, created_by, created_at, started_at, finished_at)
        overriding system value
        select b, case when b <= 40 then 'mappings' else 'transactions' end, 'succeeded',
               '/imports/bench-' || b || '.csv', md5(b::text) || md5((b + 1)::text), {IMPORT_BATCH} * 80,
               {IMPORT_BATCH}, true, {IMPORT_BATCH}, {IMPORT_BATCH}, '{BENCH_ADMIN_ID}',
               now() - interval '{DAYS} days', now() - interval '{DAYS} days', now() - interval '{DAYS} days'
        from generate_series(1, {batches}) as b
        on conflict do nothing""")
    conn.execute("select setval(pg_get_serial_sequence('public.import_jobs', 'id'),"
                 " (select max(id) from public.import_jobs))")
    conn.commit()


def generate_prices(conn: psycopg.Connection[Any]) -> None:
    run_sql(conn, "prices", """
        insert into public.prices (ticker, as_of, price, source)
        select t, now() - interval '1 day', round((5 + 495 * ((hashtext(t) & 65535) / 65536.0))::numeric, 6),
               'sample'
        from (select distinct ticker as t from public.llm_mappings where ticker is not null
              union select 'VTI') as tickers
        on conflict do nothing""")


def allocation_rows_sql(partition: str) -> str:
    """One buy (lot 1) for each invested transaction with a round-up, at its ticker's bench price:
    the mapping in force's ticker, or the fallback fund (VTI) for a private company."""
    return f"""
    insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, created_at,
        kind, lot, price_id, price, mapping_id, mapping_created_at)
    select t.id, t.txn_date, t.user_id, p.ticker, t.round_up, round(t.round_up / p.price, 8),
           t.txn_date + interval '1 day', 'buy', 1, p.id, p.price, mm.mapping_id, mm.mapping_created_at
    from {partition} as t
    join public.merchants as mm on mm.merchant_key = t.merchant_key
    join public.llm_mappings as lm on lm.id = mm.mapping_id and lm.created_at = mm.mapping_created_at
    join lateral (
      select pr.id, pr.ticker, pr.price from public.prices as pr
      where pr.ticker = coalesce(lm.ticker, 'VTI') and pr.source = 'sample'
      order by pr.as_of desc limit 1
    ) as p on true
    where t.status = 'invested' and t.allocation_lot = 1
    """


RECOMPUTE_STATS_SQL = """
delete from private.stat_deltas where metric ~ '^(mappings|transactions|allocations)';
delete from private.stat_totals where metric ~ '^(mappings|transactions|allocations)';
insert into private.stat_totals (metric, bucket, n, total)
select case grouping(status, admin_approved, category) when 7 then 'mappings' when 3 then 'mappings.status'
            when 5 then 'mappings.admin_approved' else 'mappings.category' end,
       case grouping(status, admin_approved, category) when 7 then '' when 3 then status
            when 5 then admin_approved::text else coalesce(category, '') end,
       count(*), 0
from public.llm_mappings
group by grouping sets ((), (status), (admin_approved), (category))
union all
select 'mappings.confidence', '', count(confidence), coalesce(sum(confidence), 0) from public.llm_mappings
union all
select m.metric, t.status, t.n, case m.metric when 'transactions.status' then t.amount else t.round_up end
from (select status, count(*) as n, sum(amount) as amount, sum(round_up) as round_up
      from public.transactions group by status) as t
cross join (values ('transactions.status'), ('transactions.round_up')) as m (metric)
union all
select m.metric, a.ticker, case m.metric when 'allocations.ticker' then a.lots else 0 end,
       case m.metric when 'allocations.ticker' then a.amount else a.shares end
from (select ticker, sum(case kind when 'buy' then 1 else -1 end) as lots, sum(amount) as amount,
             sum(shares) as shares
      from public.allocations group by ticker) as a
cross join (values ('allocations.ticker'), ('allocations.shares')) as m (metric);
"""

RECOMPUTE_HOLDINGS_SQL = """
truncate public.holdings;
insert into public.holdings (user_id, ticker, shares, invested, lots)
select user_id, ticker, sum(shares), sum(amount), sum(case kind when 'buy' then 1 else -1 end)
from public.allocations group by user_id, ticker;
"""

RECOMPUTE_USER_TOTALS_SQL = """
truncate private.user_total_deltas;
truncate private.user_totals;
insert into private.user_totals (user_id, transactions, round_ups, invested)
select u.id, coalesce(t.n, 0), coalesce(t.round_ups, 0), coalesce(a.invested, 0)
from auth.users as u
left join (select user_id, count(*) as n, sum(round_up) as round_ups from public.transactions group by user_id) as t
  on t.user_id = u.id
left join (select user_id, sum(amount) as invested from public.allocations group by user_id) as a
  on a.user_id = u.id
where t.n is not null or a.invested is not null;
"""


def recompute_derived(conn: psycopg.Connection[Any]) -> None:
    """What the statement triggers would have kept, from one aggregate each."""
    run_sql(conn, "stat totals", RECOMPUTE_STATS_SQL)
    run_sql(conn, "holdings", RECOMPUTE_HOLDINGS_SQL)
    has_user_totals = conn.execute("select to_regclass('private.user_totals') is not null").fetchone()
    if has_user_totals and has_user_totals[0]:
        run_sql(conn, "private.user_totals", RECOMPUTE_USER_TOTALS_SQL)


def vacuum_analyze(url: str) -> None:
    with connect(url, autocommit=True) as conn:
        for table in ("public.llm_mappings", "public.transactions", "public.allocations", "public.merchants",
                      "public.profiles", "auth.users", "public.holdings", "public.prices", "public.import_jobs"):
            started = time.perf_counter()
            conn.execute(f"vacuum (analyze) {table}")
            log(f"vacuum analyze {table}: {time.perf_counter() - started:,.1f} s")


def count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def generate(sizes: Sizes, state_dir: Path) -> None:
    settings = get_settings()
    superuser_url = settings.superuser_db_url
    saved = state_dir / "bench_dropped_indexes.sql"
    create_mapping_partitions(settings.db_url)
    with connect(superuser_url) as conn:
        if count(conn, "select count(*) from (select 1 from public.transactions limit 1) as t") and not saved.exists():
            raise SystemExit("the stack already holds transactions: generate runs once, on an empty stack")
        conn.execute("set session_replication_role = replica")
        conn.execute("set synchronous_commit = off")
        conn.commit()
        drop_secondary_indexes(conn, saved)
        generate_users(conn, sizes)
        have = count(conn, "select count(*) from public.llm_mappings")
        while have < sizes.mappings:
            n = min(CHUNK_ROWS, sizes.mappings - have)
            run_sql(conn, f"mappings {have + n:,}/{sizes.mappings:,}", mapping_rows_sql(have + 1, n, sizes))
            have += n
        generate_merchants(conn, sizes)
        generate_import_jobs(conn, sizes)
        have = count(conn, "select count(*) from public.transactions")
        while have < sizes.transactions:
            n = min(CHUNK_ROWS, sizes.transactions - have)
            run_sql(conn, f"transactions {have + n:,}/{sizes.transactions:,}", transaction_rows_sql(have + 1, n, sizes))
            have += n
        generate_prices(conn)
        conn.execute("analyze public.merchants, public.prices")
        conn.commit()
        if not count(conn, "select count(*) from (select 1 from public.allocations limit 1) as a"):
            partitions = conn.execute(
                "select inhrelid::regclass::text from pg_inherits where inhparent = 'public.transactions'::regclass"
                " order by 1").fetchall()
            for (partition,) in partitions:
                run_sql(conn, f"allocations of {partition}", allocation_rows_sql(partition))
        recreate_indexes(conn, saved)
        recompute_derived(conn)
    vacuum_analyze(superuser_url)


# Benchmark --------------------------------------------------------------------------------------
ADMIN_CLAIMS = {"sub": BENCH_ADMIN_ID, "role": "authenticated", "user_role": "admin"}


@dataclass(frozen=True)
class Order:
    """A list's order: the ORDER BY over the table alias, the cursor columns, and the RPC
    parameters the cursor is passed in (the page's last row)."""

    order_by: str
    cursor_sql: str
    cursor_params: tuple[str, ...]


@dataclass(frozen=True)
class ListSpec:
    name: str
    rpc: str
    table: str  # "public.transactions as t"
    page_size: int
    # RPC parameter -> the same condition for the OFFSET query (one %s for the value).
    conditions: dict[str, str]
    # OFFSET as the admin under RLS (a security invoker RPC) or as the owner (security definer).
    offset_as_admin: bool


@dataclass
class Case:
    """One filter of one list: the RPC's filter arguments and the order they page in."""

    spec: ListSpec
    label: str
    args: dict[str, Any]
    order: Order
    like: dict[str, str] = field(default_factory=dict)  # parameter -> LIKE pattern for the OFFSET query


TX_ORDER = Order("t.txn_date desc, t.id desc", "t.txn_date, t.id", ("p_before_date", "p_before_id"))
MAP_NEWEST = Order("m.created_at desc, m.id desc", "m.created_at, m.id", ("p_after_created_at", "p_after_id"))
MAP_CONF_DESC = Order("coalesce(m.confidence, -1) desc, m.id desc", "coalesce(m.confidence, -1), m.id",
                      ("p_after_confidence", "p_after_id"))
MAP_CONF_ASC = Order("coalesce(m.confidence, -1), m.id", "coalesce(m.confidence, -1), m.id",
                     ("p_after_confidence", "p_after_id"))
USERS_NEWEST = Order("p.created_at desc, p.id desc", "p.created_at, p.id", ("p_after_created_at", "p_after_id"))
# The landed RPC orders and compares emails byte-wise (collate "C", its index's collation).
USERS_EMAIL = Order('lower(p.email) collate "C", p.id', "lower(p.email), p.id", ("p_after_email", "p_after_id"))

TRANSACTIONS = ListSpec(
    "transactions", "public.admin_list_transactions", "public.transactions as t", 100,
    {"p_status": "t.status = %s", "p_user_id": "t.user_id = %s", "p_merchant_key": "t.merchant_key = %s",
     "p_mapping_id": "t.mapping_id = %s", "p_import_job_id": "t.import_job_id = %s",
     "p_date_from": "t.txn_date >= %s", "p_date_to": "t.txn_date <= %s",
     "p_amount_min": "t.amount >= %s", "p_amount_max": "t.amount <= %s"},
    offset_as_admin=True,
)
MAPPINGS = ListSpec(
    "mappings", "public.admin_list_mappings", "public.llm_mappings as m", 50,
    {"p_status": "m.status = %s", "p_admin_approved": "m.admin_approved = %s", "p_category": "m.category = %s",
     "p_source": "m.source = %s", "p_tier": "m.tier = %s", "p_confidence_min": "m.confidence >= %s",
     "p_confidence_max": "m.confidence <= %s", "p_merchant_key_prefix": "m.merchant_key like %s",
     "p_created_from": "m.created_at >= %s", "p_created_to": "m.created_at <= %s",
     "p_search": "lower(m.merchant_name) like %s"},
    offset_as_admin=False,
)
USERS = ListSpec(
    "users", "public.admin_list_users", "public.profiles as p", 100,
    {"p_email_prefix": 'lower(p.email) collate "C" like %s', "p_role": "p.role = %s"},
    offset_as_admin=False,
)


def one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def cases(conn: psycopg.Connection[Any]) -> list[Case]:
    """The common filters, with values picked from the data (the heaviest user and merchant, a
    typical merchant, one import job, a quarter of dates)."""
    heavy_user = one(conn, "select user_id from public.transactions where txn_date >= current_date - 30"
                           " group by user_id order by count(*) desc limit 1")
    heavy_merchant, heavy_mapping = conn.execute(
        "select merchant_key, mapping_id from public.merchants where id = (select min(id) from public.merchants"
        " where mapping_id is not null and merchant_key like '% %')").fetchone() or (None, None)
    typical_merchant = one(conn, "select merchant_key from public.merchants where id = 1000")
    import_job = one(conn, "select import_job_id from public.transactions where import_job_id is not null"
                           " and txn_date between current_date - 400 and current_date - 360 limit 1")
    conn.commit()
    span = {"p_date_from": "2025-06-01", "p_date_to": "2025-08-31"}
    t, m, u = TRANSACTIONS, MAPPINGS, USERS
    return [
        Case(t, "none", {}, TX_ORDER),
        Case(t, "status=pending", {"p_status": "pending"}, TX_ORDER),
        Case(t, "status=failed", {"p_status": "failed"}, TX_ORDER),
        Case(t, "user (heaviest)", {"p_user_id": heavy_user}, TX_ORDER),
        Case(t, "merchant_key (heaviest)", {"p_merchant_key": heavy_merchant}, TX_ORDER),
        Case(t, "merchant_key (typical)", {"p_merchant_key": typical_merchant}, TX_ORDER),
        Case(t, "mapping_id (heaviest merchant's)", {"p_mapping_id": heavy_mapping}, TX_ORDER),
        Case(t, f"import job {import_job}", {"p_import_job_id": import_job}, TX_ORDER),
        Case(t, "date range (3 months)", dict(span), TX_ORDER),
        Case(t, "status=pending + date range", {"p_status": "pending", **span}, TX_ORDER),
        Case(t, "amount 100-120", {"p_amount_min": 100, "p_amount_max": 120}, TX_ORDER),
        Case(m, "none", {}, MAP_NEWEST),
        Case(m, "status=pending", {"p_status": "pending"}, MAP_NEWEST),
        Case(m, "category=TRAVEL", {"p_category": "TRAVEL"}, MAP_NEWEST),
        Case(m, "source=admin", {"p_source": "admin"}, MAP_NEWEST),
        Case(m, "status=pending + category=FOOD_AND_DRINK", {"p_status": "pending", "p_category": "FOOD_AND_DRINK"},
             MAP_NEWEST),
        Case(m, "search 'coffee'", {"p_search": "coffee"}, MAP_NEWEST, {"p_search": "%coffee%"}),
        Case(m, "search 'golden coffee 1'", {"p_search": "golden coffee 1"}, MAP_NEWEST,
             {"p_search": "%golden coffee 1%"}),
        Case(m, "sort confidence_desc", {"p_sort": "confidence_desc"}, MAP_CONF_DESC),
        Case(m, "sort confidence_asc", {"p_sort": "confidence_asc"}, MAP_CONF_ASC),
        Case(m, "status=pending, sort confidence_desc", {"p_status": "pending", "p_sort": "confidence_desc"},
             MAP_CONF_DESC),
        Case(m, "merchant_key prefix 'blue coffee'", {"p_merchant_key_prefix": "blue coffee"}, MAP_NEWEST,
             {"p_merchant_key_prefix": "blue coffee%"}),
        Case(u, "none", {}, USERS_NEWEST),
        Case(u, "email prefix 'user0'", {"p_email_prefix": "user0"}, USERS_EMAIL, {"p_email_prefix": "user0%"}),
        Case(u, "email prefix 'user012'", {"p_email_prefix": "user012"}, USERS_EMAIL,
             {"p_email_prefix": "user012%"}),
    ]


def rpc_argument_types(conn: psycopg.Connection[Any], rpc: str) -> dict[str, str]:
    """The landed signature (parameter -> type), so the calls adapt to what the migration defines."""
    row = conn.execute(
        "select p.proargnames, array(select format_type(t, null) from unnest(p.proargtypes) as t)"
        " from pg_proc as p where p.oid = %s::regproc", (rpc,)).fetchone()
    conn.commit()
    if row is None:
        raise SystemExit(f"{rpc} is not defined: merge main and run `kamioi up` on the bench stack")
    return dict(zip(row[0], row[1], strict=False))


def rpc_call(spec: ListSpec, types: dict[str, str], args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    unknown = set(args) - set(types)
    if unknown:
        raise SystemExit(f"{spec.rpc} has no parameter {', '.join(sorted(unknown))}")
    named = ", ".join(f"{name} => %({name})s::{types[name]}" for name in args)
    return f"select * from {spec.rpc}({named})", args


def offset_query(case: Case, depth: int) -> tuple[str, list[Any]]:
    """The same filtered order by OFFSET: the row at depth `depth` (the cursor) and the page after it."""
    conditions, values = [], []
    for name, value in case.args.items():
        if name in case.spec.conditions:
            conditions.append(case.spec.conditions[name])
            values.append(case.like.get(name, value))
    where = " and ".join(conditions) or "true"
    alias = case.spec.table.split()[-1]
    return (f"select {case.order.cursor_sql}, {alias}.id, {alias}.* from {case.spec.table}"
            f" where {where} order by {case.order.order_by} offset {depth - 1} limit {case.spec.page_size + 1}",
            values)


@contextmanager
def request(conn: psycopg.Connection[Any], as_admin: bool = True) -> Iterator[None]:
    """One PostgREST-shaped transaction (role, claims), committed at the end."""
    try:
        if as_admin:
            postgrest_preamble(conn, "authenticated", ADMIN_CLAIMS)
        yield
    finally:
        conn.commit()


def server_ms(conn: psycopg.Connection[Any], sql: str, params: Any) -> float:
    """The statement's time inside the server (EXPLAIN ANALYZE execution time: planning of the
    function's dynamic query included, the client round trip not)."""
    plan = conn.execute(f"explain (analyze, timing off, summary on, format json) {sql}", params).fetchone()
    assert plan is not None
    return float(plan[0][0]["Execution Time"])


@dataclass
class Result:
    list_name: str
    label: str
    depth: int
    matched_at_least: int
    page1_server: Timing
    deep_server: Timing
    page1_trip: Timing
    deep_trip: Timing
    offset_ms: float
    page_rows: int
    statements_per_page: int
    allocations_checked: str
    calls: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # page -> (sql, args)
    plan_flags: list[str] = field(default_factory=list)
    # page -> execution ms of the list's own query inside the RPC (auto_explain, one run; no planning)
    query_exec_ms: dict[str, float] = field(default_factory=dict)

    @property
    def deep_vs_page1(self) -> float:
        return self.deep_server.p95 / self.page1_server.p95

    @property
    def deep_vs_page1_median(self) -> float:
        return self.deep_server.median / self.page1_server.median

    @property
    def offset_vs_keyset(self) -> float:
        return self.offset_ms / self.deep_server.median


def find_cursor(conn: psycopg.Connection[Any], case: Case, depth: int) -> tuple[int, float, list[Any]]:
    """The row at `depth` (or the deepest row that still leaves a full page after it) by one OFFSET
    query, timed: that query is the OFFSET contrast. Returns (depth, OFFSET ms, rows)."""
    for attempt in range(2):
        sql, values = offset_query(case, depth)
        with request(conn, case.spec.offset_as_admin):
            started = time.perf_counter()
            rows = conn.execute(sql, values).fetchall()
            elapsed = (time.perf_counter() - started) * 1000
        if len(rows) == case.spec.page_size + 1 or attempt == 1:
            return depth, elapsed, rows
        where_sql, _, _ = sql.partition(" order by ")
        with request(conn, case.spec.offset_as_admin):
            matched = int(one(conn, f"select count(*) from ({where_sql}) as q", values))
        depth = max(1, matched - case.spec.page_size - 1)
    raise AssertionError("unreachable")


def cursor_args(case: Case, row: list[Any]) -> dict[str, Any]:
    width = len(case.order.cursor_params)
    return dict(zip(case.order.cursor_params, row[:width], strict=True))


def check_allocations(conn: psycopg.Connection[Any], rows: list[Any], columns: list[str]) -> str:
    """The page's allocations came back inside its one statement: every row's array matches a
    direct count of that transaction's allocations."""
    if "allocations" not in columns:
        return "-"
    ids = columns.index("id"), columns.index("txn_date"), columns.index("allocations")
    keys = [(r[ids[0]], r[ids[1]]) for r in rows]
    counted = dict(
        ((tid, d), n) for tid, d, n in conn.execute(
            "select transaction_id, txn_date, count(*) from public.allocations"
            " where (transaction_id, txn_date) in (select * from unnest(%s::bigint[], %s::date[]))"
            " group by 1, 2", ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
    )
    conn.commit()
    with_lots = sum(1 for r in rows if r[ids[2]])
    wrong = [k for r, k in zip(rows, keys, strict=True) if len(r[ids[2]] or []) != counted.get(k, 0)]
    assert not wrong, f"allocations arrays differ from the table for {wrong[:3]}"
    return f"{with_lots}/{len(rows)} rows with lots, all arrays exact"


def measure(conn: psycopg.Connection[Any], case: Case, types: dict[str, str], depth: int, repeat: int,
            slow_ms: float = 1000.0) -> Result:
    depth, offset_ms, offset_rows = find_cursor(conn, case, depth)
    width = len(case.order.cursor_params)
    cursor = cursor_args(case, offset_rows[0]) if offset_rows else {}
    page1_sql, page1_args = rpc_call(case.spec, types, case.args)
    deep_sql, deep_args = rpc_call(case.spec, types, {**case.args, **cursor})
    # Correctness: the keyset page after the cursor is the OFFSET query's page.
    statements = 0
    with request(conn):
        cur = conn.execute(deep_sql, deep_args)
        statements += 1
        deep_rows = cur.fetchall()
        columns = [c.name for c in cur.description or []]
    id_at = columns.index("id")
    expected_ids = [r[width] for r in offset_rows[1:]]
    assert [r[id_at] for r in deep_rows] == expected_ids, f"{case.spec.name} {case.label}: keyset != OFFSET page"
    allocations = check_allocations(conn, deep_rows, columns)
    samples: dict[str, list[float]] = {"p1s": [], "ds": [], "p1t": [], "dt": []}
    i = 0
    while i < repeat:
        if i == 1 and max(samples["p1s"] + samples["ds"]) > slow_ms:
            repeat = min(repeat, 3)  # a page that takes seconds: a few samples say enough
        # Alternate which page goes first so warm-up and noise hit both alike.
        order = (("p1", page1_sql, page1_args), ("d", deep_sql, deep_args))
        for key, sql, args in order if i % 2 == 0 else order[::-1]:
            with request(conn):
                samples[key + "s"].append(server_ms(conn, sql, args))
            with request(conn):
                started = time.perf_counter()
                conn.execute(sql, args).fetchall()
                samples[key + "t"].append((time.perf_counter() - started) * 1000)
        i += 1
    return Result(case.spec.name, case.label, depth, depth + len(offset_rows) - 1,
                  Timing(samples["p1s"]), Timing(samples["ds"]), Timing(samples["p1t"]), Timing(samples["dt"]),
                  offset_ms, len(deep_rows), statements, allocations,
                  {"page 1": (page1_sql, page1_args), f"deep page (depth {depth:,})": (deep_sql, deep_args)})


# Plans ------------------------------------------------------------------------------------------
def explain_nested(su: psycopg.Connection[Any], sql: str, args: dict[str, Any], fmt: str) -> list[str]:
    """The plans of every statement the RPC runs (auto_explain, nested statements, sent back to the
    client as NOTICEs), run as the admin the way PostgREST does."""
    notices: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        message = diag.message_primary or ""
        if "plan:" in message and "set_config('search_path'" not in message:  # not the preamble
            notices.append(message)

    su.add_notice_handler(keep)
    try:
        su.execute(f"set auto_explain.log_format = {fmt}")
        with request(su):
            su.execute(sql, args).fetchall()
    finally:
        su.remove_notice_handler(keep)
    return notices


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def plan_flags(json_notices: list[str], sort_rows: int, seq_rows: int = 1000) -> list[str]:
    """A Seq Scan that read at least seq_rows rows of a table or partition, or a Sort fed more than
    sort_rows rows."""
    flags = []
    for notice in json_notices:
        plan = json.loads(notice.split("plan:", 1)[1])
        for node in walk(plan["Plan"]):
            loops = node.get("Actual Loops", 1)
            scanned = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
            # An executed Seq Scan that read real rows (not an empty future partition, never executed).
            if node["Node Type"] == "Seq Scan" and loops > 0 and scanned >= seq_rows:
                flags.append(f"Seq Scan on {node.get('Relation Name')}"
                             f" ({node.get('Actual Rows', 0) * loops:,} rows,"
                             f" {node.get('Rows Removed by Filter', 0) * loops:,} removed)")
            if node["Node Type"] in ("Sort", "Incremental Sort"):
                fed = sum(c.get("Actual Rows", 0) * c.get("Actual Loops", 1) for c in node.get("Plans", []))
                if fed > sort_rows:
                    flags.append(f"{node['Node Type']} of {fed:,} rows ({node.get('Sort Method', '?')},"
                                 f" key {', '.join(node.get('Sort Key', []))})")
    return flags


LIST_TABLES = {"transactions": "public.transactions as t", "mappings": "public.llm_mappings as m",
               "users": "public.profiles as p"}


def list_query_ms(json_notices: list[str], list_name: str) -> float:
    """Execution time of the list's dynamic query (the statement reading the list's table), without
    its planning: the RPC's server time minus this is planning and the functions around it."""
    total, seen = 0.0, False
    for notice in json_notices:  # a page taken in windows runs its query more than once: the sum
        duration = re.search(r"duration: ([0-9.]+) ms", notice)
        plan = json.loads(notice.split("plan:", 1)[1])
        text = plan.get("Query Text", "")
        is_page = LIST_TABLES[list_name] in text and "order by" in text and "limit $" in text
        if duration and is_page and "private.admin_" not in text:
            total, seen = total + float(duration.group(1)), True
    return total if seen else float("nan")


def collect_plans(superuser_url: str, results: list[Result], path: Path, sort_rows: int) -> None:
    with connect(superuser_url) as su:
        su.execute("load 'auto_explain'")
        for setting, value in (("log_min_duration", "0"), ("log_analyze", "on"), ("log_buffers", "on"),
                               ("log_nested_statements", "on"), ("log_timing", "on"), ("log_level", "notice")):
            su.execute(f"set auto_explain.{setting} = {value}")
        su.commit()
        with path.open("w") as out:
            out.write(f"# admin list plans, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}:"
                      " each filter's page 1 and deep page,"
                      " every nested statement (auto_explain), run as the bench admin\n")
            for result in results:
                for which, (sql, args) in result.calls.items():
                    text = explain_nested(su, sql, args, "text")
                    json_notices = explain_nested(su, sql, args, "json")
                    flags = plan_flags(json_notices, sort_rows)
                    result.query_exec_ms[which] = list_query_ms(json_notices, result.list_name)
                    result.plan_flags.extend(f"{which}: {f}" for f in flags)
                    out.write(f"\n## {result.list_name} / {result.label} / {which}\n")
                    out.write(f"-- {sql} {json.dumps(args, default=str)}\n")
                    for flag in flags:
                        out.write(f"-- FLAG {flag}\n")
                    out.write("\n".join(text) + "\n")
        su.rollback()


# Report -----------------------------------------------------------------------------------------
def report(results: list[Result], sizes: dict[str, int], depth: int, repeat: int) -> str:
    dataset = ", ".join(f"{v:,} {k}" for k, v in sizes.items())
    lines = [f"Load average {os.getloadavg()[0]:.2f} (2 shared cores); {dataset};"
             f" target depth {depth:,}; {repeat} samples per page (server time: EXPLAIN ANALYZE of the RPC call)."]
    for list_name in ("transactions", "mappings", "users"):
        rows = [r for r in results if r.list_name == list_name]
        if not rows:
            continue
        lines += [
            "", f"### {list_name}", "",
            "| filter | depth | page 1 p50 / p95 ms | deep p50 / p95 ms | deep/page 1 p50 / p95"
            " | round trip p95 page 1 / deep | list query exec page 1 / deep | OFFSET ms | OFFSET/keyset"
            " | statements per page | allocations |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r.label} | {r.depth:,} | {r.page1_server.median:.2f} / {r.page1_server.p95:.2f}"
                f" | {r.deep_server.median:.2f} / {r.deep_server.p95:.2f}"
                f" | {r.deep_vs_page1_median:.2f}x / {r.deep_vs_page1:.2f}x"
                f" | {r.page1_trip.p95:.2f} / {r.deep_trip.p95:.2f}"
                f" | {' / '.join(f'{v:.2f}' for v in r.query_exec_ms.values()) or '-'}"
                f" | {r.offset_ms:,.0f} | {r.offset_vs_keyset:,.0f}x"
                f" | {r.statements_per_page} | {r.allocations_checked} |")
    flagged = [r for r in results if r.plan_flags]
    if flagged:
        lines += ["", "Plans flagged (Seq Scan of a partition, or a Sort of many rows):", ""]
        lines += [f"- {r.list_name} / {r.label}: {'; '.join(r.plan_flags)}" for r in flagged]
    return "\n".join(lines)


def dataset_sizes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    sizes = {}
    for name, table in (("transactions", "public.transactions"), ("mappings", "public.llm_mappings"),
                        ("allocations", "public.allocations"), ("users", "public.profiles"),
                        ("merchants", "public.merchants")):
        sizes[name] = int(one(conn, f"select reltuples::bigint from pg_class where oid = '{table}'::regclass")
                          or 0)
        if sizes[name] <= 0:  # partitioned parents: the sum of their partitions' estimates
            sizes[name] = int(one(conn, "select sum(c.reltuples)::bigint from pg_inherits as i join pg_class as c"
                                        f" on c.oid = i.inhrelid where i.inhparent = '{table}'::regclass") or 0)
    conn.commit()
    return sizes


def run(args: argparse.Namespace) -> None:
    settings = get_settings()
    wanted = set(args.lists.split(","))
    results: list[Result] = []
    with connect(settings.db_url) as conn:
        sizes = dataset_sizes(conn)
        types = {spec.rpc: rpc_argument_types(conn, spec.rpc) for spec in (TRANSACTIONS, MAPPINGS, USERS)
                 if spec.name in wanted}
        for case in cases(conn):
            if case.spec.name not in wanted or (args.only and not re.search(args.only, case.label)):
                continue
            started = time.perf_counter()
            result = measure(conn, case, types[case.spec.rpc], args.depth, args.repeat)
            results.append(result)
            log(f"{case.spec.name} / {case.label}: depth {result.depth:,},"
                f" page 1 p95 {result.page1_server.p95:.2f} ms, deep p95 {result.deep_server.p95:.2f} ms"
                f" ({result.deep_vs_page1:.2f}x), OFFSET {result.offset_ms:,.0f} ms"
                f" [{time.perf_counter() - started:,.0f} s]")
    if args.plans:
        collect_plans(settings.superuser_db_url, results, args.plans, args.sort_rows)
        log(f"plans written to {args.plans}")
    text = report(results, sizes, args.depth, args.repeat)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(
            {"sizes": sizes, "results": [r.__dict__ for r in results]},
            default=lambda v: v.samples_ms if isinstance(v, Timing) else str(v)))


# Export RSS -------------------------------------------------------------------------------------
def proc_status_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def export_rss(args: argparse.Namespace) -> None:
    """A worker of its own (only kind exports.csv) exports the list; its peak RSS (VmHWM) is read
    from /proc after the job, against the same process's peak before the job (idle, imports done)."""
    settings = get_settings()
    filters = json.loads(args.filters)
    env = {**os.environ, "KAMIOI_EXPORT_CHUNK_ROWS": str(args.chunk_rows)} if args.chunk_rows else dict(os.environ)
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobs", "worker", "--kind", "exports.csv", "--concurrency", "1",
         "--db-url", settings.db_url, "--log-level", "WARNING"],
        cwd=Path(__file__).resolve().parent.parent, env=env)
    try:
        time.sleep(5)
        idle_kb = proc_status_kb(worker.pid, "VmHWM")
        with connect(settings.db_url, autocommit=True) as conn:
            export_id = one(conn, "select id from private.create_export_job(%s, %s, %s, %s)",
                            (args.list, json.dumps(filters), args.sort, BENCH_ADMIN_ID))
            log(f"export {export_id} of {args.list} {filters}: worker pid {worker.pid},"
                f" idle VmHWM {idle_kb / 1024:,.0f} MB")
            started = time.perf_counter()
            samples = []
            while True:
                row = conn.execute("select state, rows_written, bytes_written, file_name, error"
                                   " from public.export_jobs where id = %s", (export_id,)).fetchone()
                assert row is not None
                samples.append(proc_status_kb(worker.pid, "VmRSS"))
                if row[0] in ("succeeded", "failed", "cancelled"):
                    break
                if len(samples) % 20 == 0:
                    log(f"export {export_id}: {row[1]:,} rows, RSS {samples[-1] / 1024:,.0f} MB")
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            peak_kb = proc_status_kb(worker.pid, "VmHWM")
        state, rows, size, file_name, error = row
        print(f"export {export_id} {state}{': ' + error if error else ''}: {rows:,} rows, {size / 1e6:,.0f} MB CSV"
              f" in {elapsed:,.0f} s ({rows / elapsed:,.0f} rows/s); worker VmHWM {peak_kb / 1024:,.0f} MB"
              f" (idle {idle_kb / 1024:,.0f} MB, {peak_kb / idle_kb:.2f}x idle), VmRSS median while exporting"
              f" {statistics.median(samples) / 1024:,.0f} MB; chunk rows {args.chunk_rows or 'default'}")
        if not args.keep_file and file_name:
            (settings.exports_dir / file_name).unlink(missing_ok=True)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="fill an empty throwaway stack (set-based SQL, triggers off)")
    gen.add_argument("--users", type=int, default=50_000)
    gen.add_argument("--merchants", type=int, default=300_000)
    gen.add_argument("--mappings", type=int, default=15_000_000)
    gen.add_argument("--transactions", type=int, default=20_000_000)
    bench = sub.add_parser("run", help="page 1 vs the deep page vs OFFSET for each list's common filters")
    bench.add_argument("--depth", type=int, default=10_000_000,
                       help="rows before the deep page (capped at what the filter matches)")
    bench.add_argument("--repeat", type=int, default=50, help="samples per page and filter")
    bench.add_argument("--lists", default="transactions,mappings,users")
    bench.add_argument("--only", help="regex: only the filters whose label matches")
    bench.add_argument("--plans", type=Path, default=Path("/tmp/admin_lists_plans.txt"),
                       help="EXPLAIN (ANALYZE, BUFFERS) of every nested statement of each page")
    bench.add_argument("--sort-rows", type=int, default=1000, help="flag a Sort fed more rows than this")
    bench.add_argument("--json", type=Path, help="also write the raw samples here")
    export = sub.add_parser("export", help="peak RSS of a worker exporting a list (job kind exports.csv)")
    export.add_argument("--list", default="transactions", choices=("transactions", "mappings", "users"))
    export.add_argument("--filters", default='{"date_from": "2025-03-01", "date_to": "2025-08-31"}',
                        help="the export's filters as JSON (default: six months of transactions, ~5M rows)")
    export.add_argument("--sort")
    export.add_argument("--chunk-rows", type=int, help="KAMIOI_EXPORT_CHUNK_ROWS for the worker")
    export.add_argument("--keep-file", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = get_settings()
    if args.command == "generate":
        generate(Sizes(args.users, args.merchants, args.mappings, args.transactions), settings.state_dir)
    elif args.command == "export":
        export_rss(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
