"""The ledger against an admin holding the Data API (issue 20, item 1), as a randomized property test.

Hypothesis drives a state machine that interleaves what an admin's token can send through PostgREST
(inserts, updates of any ledger column, deletes, public.admin_correct_transaction, mapping reviews,
each a request over a real `authenticator` connection with the token's role and claims set) with
the allocation engine's runs (the invest and correction jobs). After every step the ledger is
recomputed from scratch: an invested round-up has exactly one open buy lot of its amount and it is
the row's latest lot, nothing else has an open lot, lots are numbered 1..allocation_lot, holdings
are the sums of the allocations and user totals the sums of the transactions. Each write is also
checked against an independent model of the ledger-owned columns: refused exactly when it touches
what the engine owns. supabase/tests/140_ledger_guard.sql has the fixed attacks of the issue.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from kamioi.db import connect, postgrest_request
from kamioi.settings import Settings
from tests.jobs.conftest import unique_tag
from tests.jobs.investing import (
    LISTED,
    LOTS,
    holdings_drift,
    insert_transactions,
    make_merchant,
    run_queued_corrections,
)

pytestmark = pytest.mark.usefixtures("stack_worker_paused")

REFUSED = (psycopg.errors.InsufficientPrivilege, psycopg.errors.ForeignKeyViolation)

# What an admin may try on a row: a column and how its new value derives from the row.
EDITS: dict[str, Callable[[dict[str, Any], random.Random], Any]] = {
    "status": lambda row, rng: rng.choice(["pending", "mapped", "failed", "invested"]),
    "allocation_lot": lambda row, rng: rng.choice([0, row["allocation_lot"] + 1]),
    "round_up": lambda row, rng: row["round_up"] + Decimal("4.90"),
    "amount": lambda row, rng: row["amount"] + 1,
    "txn_date": lambda row, rng: row["txn_date"] + dt.timedelta(days=rng.choice([1, -40])),
    "merchant_key": lambda row, rng: row["merchant_key"] + " x",
    "mapping_id": lambda row, rng: None,
    "descriptor": lambda row, rng: row["descriptor"] + " FIXED",
}


def refused_update(row: dict[str, Any], column: str, value: Any) -> bool:
    """The ledger-owned columns rule, written from the issue rather than from the trigger."""
    if value == row[column]:
        return False
    invested = bool(row["status"] == "invested")
    if column == "allocation_lot":
        return True
    if column == "status":
        return invested or bool(value == "invested")
    if column in ("round_up", "amount", "merchant_key", "mapping_id"):
        return invested
    if column == "txn_date":
        return invested or int(row["allocation_lot"]) > 0
    return False


LEDGER_PROBLEMS = """
with mine as (
  select t.* from public.transactions as t where t.user_id = any(%(users)s::uuid[])
), lots as (
  select a.transaction_id, a.txn_date,
         count(*) filter (where a.kind = 'buy') - count(*) filter (where a.kind = 'reversal') as open_lots,
         sum(a.amount) as open_amount, max(a.lot) filter (where a.kind = 'buy') as last_buy
  from public.allocations as a where a.user_id = any(%(users)s::uuid[])
  group by a.transaction_id, a.txn_date
), numbering as (
  select a.transaction_id, count(*) filter (where a.kind = 'buy') as buys, max(a.lot) as max_lot
  from public.allocations as a where a.user_id = any(%(users)s::uuid[]) group by a.transaction_id
)
select 'transaction' as what, t.id, t.txn_date, t.status, t.round_up, t.allocation_lot, l.open_lots, l.open_amount
from mine as t
left join lots as l on l.transaction_id = t.id and l.txn_date = t.txn_date
left join numbering as n on n.transaction_id = t.id
where not (case when t.status = 'invested' and t.round_up > 0
                then l.open_lots = 1 and l.open_amount = t.round_up and l.last_buy = t.allocation_lot
                else coalesce(l.open_lots, 0) = 0 end)
   or coalesce(n.buys, 0) <> t.allocation_lot or coalesce(n.max_lot, 0) <> t.allocation_lot
union all
select 'orphan', l.transaction_id, l.txn_date, null, null, null, l.open_lots, l.open_amount
from lots as l
where l.open_lots <> 0
  and not exists (select 1 from mine as t where t.id = l.transaction_id and t.txn_date = l.txn_date)
"""

TOTALS_DRIFT = f"""
with recount as (
  select u.id as user_id,
         (select count(*) from public.transactions as t where t.user_id = u.id) as transactions,
         (select coalesce(sum(t.round_up), 0) from public.transactions as t where t.user_id = u.id) as round_ups,
         (select coalesce(sum(l.amount), 0) from {LOTS} as l where l.user_id = u.id) as invested
  from unnest(%(users)s::uuid[]) as u (id)
)
select r.*, k.transactions, k.round_ups, k.invested
from recount as r join private.user_totals_of(%(users)s::uuid[]) as k on k.user_id = r.user_id
where (r.transactions, r.round_ups, r.invested) is distinct from (k.transactions, k.round_ups, k.invested)
"""


@pytest.fixture
def authenticator(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """PostgREST's login role: every Data API request below runs on it as the token's role."""
    with connect(make_conninfo(settings.db_url, user="authenticator", password="postgres")) as api:
        yield api


def test_admin_data_api_writes_interleaved_with_the_engine_keep_the_ledger_whole(
    settings: Settings, conn: psycopg.Connection[Any], authenticator: psycopg.Connection[Any],
    make_user: Callable[[str], str],
) -> None:  # fmt: skip
    # The admin shops too: through the tables an admin reaches only their own rows (own-row policies),
    # so the guard is tried on the admin's purchases and the other user's rows must stay out of reach.
    admin_id = make_user("admin")
    admin = {"sub": admin_id, "user_role": "admin"}

    class Ledger(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.rng = random.Random(0)
            self.users = [admin_id, make_user("user")]
            self.prefix = f"lg {unique_tag()}"
            self.keys = [f"{self.prefix} {n}" for n in range(3)]
            tickers = ("SBUX", "WMT", None)
            for key, ticker in zip(self.keys, tickers, strict=True):
                make_merchant(conn, key, ticker)
            # Fresh quotes for every ticker a mapping here can choose, so the engine never waits for one.
            conn.execute(
                "insert into public.prices (ticker, as_of, price, source)"
                " select unnest(%s::text[]), clock_timestamp(), 40, 'test'",
                ([*LISTED, settings.invest_fallback_ticker],),
            )
            insert_transactions(conn, self.users, self.keys, 12, self.rng)
            self.engine_invests()

        def rows(self) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(
                    "select * from public.transactions where user_id = any(%s::uuid[]) order by id", (self.users,)
                )
                return cur.fetchall()

        def pick(self, index: int) -> dict[str, Any] | None:
            rows = self.rows()
            return rows[index % len(rows)] if rows else None

        def admins(self, row: dict[str, Any]) -> bool:
            """The row is the admin's own (another user's is out of the admin's reach: nothing to refuse)."""
            return str(row["user_id"]) == admin_id

        def as_admin(self, sql: str, params: tuple[Any, ...]) -> bool:
            """One Data API request with the admin's token; True if it was refused."""
            try:
                with postgrest_request(authenticator, "authenticated", admin, path="/transactions") as cur:
                    cur.execute(sql, params)
            except REFUSED:
                return True
            return False

        @rule(index=st.integers(0, 10_000), column=st.sampled_from(sorted(EDITS)), seed=st.integers(0, 2**16))
        def admin_updates_a_column(self, index: int, column: str, seed: int) -> None:
            row = self.pick(index)
            if row is None:
                return
            value = EDITS[column](row, random.Random(seed))
            refused = self.as_admin(
                f"update public.transactions set {column} = %s where id = %s and txn_date = %s",
                (value, row["id"], row["txn_date"]),
            )
            assert refused == (self.admins(row) and refused_update(row, column, value)), (column, value, row)

        @rule(index=st.integers(0, 10_000))
        def admin_deletes(self, index: int) -> None:
            row = self.pick(index)
            if row is None:
                return
            refused = self.as_admin(
                "delete from public.transactions where id = %s and txn_date = %s", (row["id"], row["txn_date"])
            )
            assert refused == (self.admins(row) and (row["status"] == "invested" or row["allocation_lot"] > 0)), row

        @rule(status=st.sampled_from(["pending", "mapped", "invested"]), lot=st.sampled_from([0, 0, 1]),
              cents=st.integers(0, 99), key=st.integers(0, 2), user=st.integers(0, 1))  # fmt: skip
        def admin_inserts(self, status: str, lot: int, cents: int, key: int, user: int) -> None:
            refused = self.as_admin(
                "insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up,"
                " status, allocation_lot) values (%s, current_date - 2, 'ADMIN ADD', %s, %s, %s, %s, %s)",
                (self.users[user], self.keys[key], 5 - Decimal(cents) / 100, Decimal(cents) / 100, status, lot),
            )
            assert refused == (status == "invested" or lot != 0)

        @rule(index=st.integers(0, 10_000), amount=st.one_of(st.none(), st.integers(-500, 9_999)),
              days=st.one_of(st.none(), st.sampled_from([-45, -1, 1])),
              key=st.one_of(st.none(), st.integers(0, 3)))  # fmt: skip
        def admin_corrects_through_the_rpc(
            self, index: int, amount: int | None, days: int | None, key: int | None
        ) -> None:
            row = self.pick(index)
            if row is None or (amount is None and days is None and key is None):
                return
            merchant = None if key is None else [*self.keys, f"{self.prefix} unmapped"][key]
            refused = self.as_admin(
                "select public.admin_correct_transaction(%s, %s, %s, %s, %s)",
                (row["id"], row["txn_date"], None if amount is None else Decimal(amount) / 100,
                 None if days is None else row["txn_date"] + dt.timedelta(days=days), merchant),
            )  # fmt: skip
            assert not refused
            after = conn.execute(
                "select status, allocation_lot from public.transactions where id = %s", (row["id"],)
            ).fetchone()
            assert after is not None and after[0] in ("mapped", "pending") and after[1] == row["allocation_lot"]

        @rule(key=st.integers(0, 2), decision=st.sampled_from(["approved", "rejected"]))
        def admin_reviews_a_mapping(self, key: int, decision: str) -> None:
            """A rejection takes the mapping out of force (its lots are corrected); an approval of a new
            mapping with another ticker replaces it."""
            if decision == "approved":
                row = conn.execute(
                    "insert into public.llm_mappings (merchant_name, merchant_key, ticker, category)"
                    " values (upper(%s), %s, %s, 'FOOD_AND_DRINK') returning id, created_at",
                    (self.keys[key], self.keys[key], self.rng.choice(["AMZN", "MCD", None])),
                ).fetchone()
            else:
                row = conn.execute(
                    "select m.id, m.created_at from public.merchants as mr join public.llm_mappings as m"
                    " on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at where mr.merchant_key = %s",
                    (self.keys[key],),
                ).fetchone()
            if row is None:
                return
            assert not self.as_admin("select public.review_mapping(%s, %s, %s)", (row[0], row[1], decision))

        @rule()
        def engine_invests(self) -> None:
            """The invest job's loop (jobs/invest.py) over the engine's statement, chunk after chunk."""
            after = 0
            while True:
                row = conn.execute(
                    "select last_id from private.invest_chunk(%s, 50, %s, make_interval(secs => %s))",
                    (after, settings.invest_fallback_ticker, settings.price_max_age_s),
                ).fetchone()
                if row is None or row[0] is None:
                    return
                after = row[0]

        @rule()
        def engine_corrects(self) -> None:
            run_queued_corrections(settings.db_url, conn)

        @rule(index=st.integers(0, 10_000))
        def owner_tries_their_own_row(self, index: int) -> None:
            row = self.pick(index)
            if row is None or self.admins(row):
                return
            user = {"sub": str(row["user_id"]), "user_role": "user"}
            with postgrest_request(authenticator, "authenticated", user, method="PATCH", path="/transactions") as cur:
                cur.execute(
                    "update public.transactions set status = 'mapped', round_up = 5, allocation_lot = 0 where id = %s",
                    (row["id"],),
                )
                assert cur.rowcount == 0

        @invariant()
        def ledger_is_whole(self) -> None:
            problems = conn.execute(LEDGER_PROBLEMS, {"users": self.users}).fetchall()
            assert problems == [], problems
            assert holdings_drift(conn, self.users) == []
            drift = conn.execute(TOTALS_DRIFT, {"users": self.users}).fetchall()
            assert drift == [], drift

    run_state_machine_as_test(
        Ledger,
        settings=hypothesis_settings(
            # No shrinking: each step is a database round trip or an engine run, so a failure is reported
            # as generated (the steps are printed) instead of minutes of replays against a moving database.
            max_examples=6, stateful_step_count=20, deadline=None, derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )  # fmt: skip
