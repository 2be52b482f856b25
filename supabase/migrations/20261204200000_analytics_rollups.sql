/*
 * Rollups for the admin charts: every aggregate a chart shows costs O(buckets), never O(rows).
 *
 * The charts' aggregates (api analytics migration) scanned the months they show: 4.5 s for 12 months
 * over 5.9M transactions, growing with the table. They now read rollups kept exactly the way the
 * dashboard's stats are (dashboard stats migration): statement-level AFTER triggers with transition
 * tables append one INSERT ... SELECT ... GROUP BY of the statement's changed rows (signed: +1 new,
 * -1 old) to a delta table; private.compact_rollups() (pg_cron, rollup compaction migration) folds
 * committed deltas into the totals; a read adds totals and pending deltas in one snapshot. No shared
 * row is ever updated by a writer, and deltas commit or roll back with the change that caused them.
 *
 * Buckets are the row's own dates, so late rows (an import of an old month) and corrections land
 * where they belong: a transaction in its txn_date's day and month; an allocation, buy or reversal,
 * in its transaction's txn_date; a mapping in its created_at's UTC day, moving between the status
 * columns when it is reviewed, plus one `reviewed` on its reviewed_at's UTC day.
 *
 *   private.transaction_rollups (grain, bucket, merchant_key): transactions, amount, round_up
 *     grain 'day' (merchant_key ''), 'day_merchant', 'month_merchant' (bucket = first of month);
 *     merchant_key '' in the merchant grains = transactions without a merchant key
 *   private.allocation_rollups (grain, bucket, ticker): lots (buy +1, reversal -1), amount, shares
 *     grain 'day' (ticker ''), 'month_ticker'
 *   private.mapping_rollups (day): created, auto_approved, admin_approved, rejected, pending
 *     (by created day, where each mapping stands now) and reviewed (by reviewed day)
 *
 * Categories: a transaction's category is that of its merchant's mapping in force now, so a review
 * moves a merchant's whole history to another category. Writers never look categories up (that would
 * race with reviews); compaction does, serialized and from one snapshot:
 *   private.category_rollups (month, category): the compacted month x merchant totals, each merchant
 *     filed under the category in private.rollup_merchant_categories (merchant_key -> category)
 *   private.rollup_recategorized (merchant_key): merchants whose category may have changed since they
 *     were filed, appended by statement triggers on merchants (mapping in force set or moved) and
 *     llm_mappings (a mapping's category edited)
 * Compaction moves each queued merchant's compacted months from its filed category to its current one,
 * folds the new month x merchant deltas under the current categories, refiles, and deletes the queue
 * entries it saw. A read takes category_rollups, the same move for merchants still queued, and the
 * pending deltas under their current categories: exact, O(months x categories + queued merchants x
 * months + pending deltas), whatever the number of transactions and merchants.
 *
 * Rows that existed before this migration are counted by a resumable backfill (rollup backfill
 * migration, job kind `rollups.backfill`). private.rollup_backfills records per source table the
 * highest id at this migration (high_water; every later row has a higher identity value) and how far
 * the backfill has counted (covered_upto). A trigger counts a changed row only if the backfill has
 * covered its id or the row is newer than the high water; rows in the gap are counted, in their state
 * at that moment, by the backfill chunk that covers them. A chunk holds an exclusive transaction-level
 * advisory lock per source while it counts and moves covered_upto; writers take the shared lock while a
 * backfill is unfinished, so a chunk never runs between a writer's trigger and its commit: each row is
 * counted exactly once. Finished sources skip the lock.
 *
 * TRUNCATE of a source forgets its rollups (and marks its backfill done: nothing is left to count).
 */

-- Rollup tables -----------------------------------------------------------------------------------
create table private.transaction_rollup_deltas (
  grain text not null,
  bucket date not null,
  merchant_key text not null,
  transactions bigint not null,
  amount numeric not null,
  round_up numeric not null
);
create table private.transaction_rollups (
  grain text not null check (grain in ('day', 'day_merchant', 'month_merchant')),
  bucket date not null,
  merchant_key text not null,
  transactions bigint not null,
  amount numeric not null,
  round_up numeric not null,
  primary key (grain, bucket, merchant_key)
);

create table private.allocation_rollup_deltas (
  grain text not null,
  bucket date not null,
  ticker text not null,
  lots bigint not null,
  amount numeric not null,
  shares numeric not null
);
create table private.allocation_rollups (
  grain text not null check (grain in ('day', 'month_ticker')),
  bucket date not null,
  ticker text not null,
  lots bigint not null,
  amount numeric not null,
  shares numeric not null,
  primary key (grain, bucket, ticker)
);

create table private.mapping_rollup_deltas (
  day date not null,
  created bigint not null,
  auto_approved bigint not null,
  admin_approved bigint not null,
  rejected bigint not null,
  pending bigint not null,
  reviewed bigint not null
);
create table private.mapping_rollups (
  day date primary key,
  created bigint not null,
  auto_approved bigint not null,
  admin_approved bigint not null,
  rejected bigint not null,
  pending bigint not null,
  reviewed bigint not null
);

-- Totals are read by bucket range: compaction inserts new buckets in key order and leaves room on each
-- page, so later updates stay on the page (HOT) and a chart reads a few contiguous pages.
alter table private.transaction_rollups set (fillfactor = 70);
alter table private.allocation_rollups set (fillfactor = 70);
-- Delta tables are append-only and emptied every minute: no index, vacuumed often (as stat_deltas).
alter table private.transaction_rollup_deltas set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
alter table private.allocation_rollup_deltas set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
alter table private.mapping_rollup_deltas set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
comment on table private.transaction_rollups is
  'Transactions, amount, round-ups per day, day x merchant, month x merchant; add transaction_rollup_deltas.';
comment on table private.allocation_rollups is
  'Open lots, amount and shares invested per transaction day and month x ticker; add allocation_rollup_deltas.';
comment on table private.mapping_rollups is
  'Mappings per created UTC day by where they stand, and reviews per reviewed UTC day; add mapping_rollup_deltas.';

create table private.category_rollups (
  month date not null,
  category text not null,
  transactions bigint not null,
  amount numeric not null,
  round_up numeric not null,
  primary key (month, category)
);
comment on table private.category_rollups is
  'Compacted month x merchant totals summed per category the merchant is filed under (rollup_merchant_categories).';
create table private.rollup_merchant_categories (
  merchant_key text primary key,
  category text not null
);
comment on table private.rollup_merchant_categories is
  'The category each merchant''s compacted history is counted under in category_rollups.';
create table private.rollup_recategorized (
  merchant_key text not null,
  queued_at timestamptz not null default now()
);
alter table private.rollup_recategorized set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
comment on table private.rollup_recategorized is
  'Merchants whose mapping in force or its category changed since compaction last filed them.';

-- The category of each merchant's mapping in force ('UNMAPPED' without one), as the charts count it.
create view private.merchant_categories_in_force as
  select mr.merchant_key, coalesce(m.category, 'UNMAPPED') as category
  from public.merchants as mr
  left join public.llm_mappings as m on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at;

-- Backfill coverage -------------------------------------------------------------------------------
create table private.rollup_backfills (
  source text primary key check (source in ('transactions', 'allocations', 'llm_mappings')),
  high_water bigint not null,
  covered_upto bigint not null,
  done_at timestamptz,
  check (covered_upto <= high_water)
);
comment on table private.rollup_backfills is
  'Per rollup source: rows with id in (covered_upto, high_water] are not counted yet (the backfill will).';

create or replace function private.rollup_lock_key(p_source text)
returns bigint
language sql
immutable
set search_path = ''
as $$
  select hashtextextended('kamioi.rollup_backfill.' || p_source, 0)
$$;

-- The columns each source's rollup needs from a changed row (id first: the coverage filter).
create or replace function private.rollup_columns(p_source text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case p_source
    when 'transactions' then 'id, txn_date, merchant_key, amount, round_up'
    when 'allocations' then 'id, txn_date, ticker, kind, amount, shares'
    when 'llm_mappings' then 'id, created_at, reviewed_at, status, reviewer'
  end
$$;

-- The one INSERT ... SELECT that turns signed changed rows (`p_changes`: sign + rollup_columns) into
-- deltas; shared by the triggers and the backfill, so both count a row the same way.
create or replace function private.rollup_insert_sql(p_source text, p_changes text)
returns text
language sql
immutable
set search_path = ''
as $$
  select format(case p_source
    when 'transactions' then $sql$
      insert into private.transaction_rollup_deltas (grain, bucket, merchant_key, transactions, amount, round_up)
      with changes as (%s)
      select case when grouping(c.merchant_key) = 1 then 'day'
                  when grouping(c.txn_date) = 0 then 'day_merchant' else 'month_merchant' end,
             coalesce(c.txn_date, c.month), coalesce(c.merchant_key, ''),
             sum(c.sign), sum(c.sign * c.amount), sum(c.sign * c.round_up)
      from (select sign, txn_date, date_trunc('month', txn_date)::date as month, coalesce(merchant_key, '') as merchant_key,
                   amount, round_up
            from changes) as c
      -- One pass over the changed rows, three hash tables.
      group by grouping sets ((c.txn_date, c.merchant_key), (c.month, c.merchant_key), (c.txn_date))
      having sum(c.sign) <> 0 or sum(c.sign * c.amount) <> 0 or sum(c.sign * c.round_up) <> 0
    $sql$
    when 'allocations' then $sql$
      insert into private.allocation_rollup_deltas (grain, bucket, ticker, lots, amount, shares)
      with changes as (%s),
      per_day_ticker as materialized (
        select txn_date, ticker, sum(sign * case kind when 'buy' then 1 else -1 end) as lots,
               sum(sign * amount) as amount, sum(sign * shares) as shares
        from changes group by 1, 2
      ),
      rollups as (
        select 'day' as grain, txn_date as bucket, '' as ticker, sum(lots) as lots, sum(amount) as amount,
               sum(shares) as shares
        from per_day_ticker group by 2
        union all
        select 'month_ticker', date_trunc('month', txn_date)::date, ticker, sum(lots), sum(amount), sum(shares)
        from per_day_ticker group by 2, 3
      )
      select * from rollups where lots <> 0 or amount <> 0 or shares <> 0
    $sql$
    when 'llm_mappings' then $sql$
      insert into private.mapping_rollup_deltas
        (day, created, auto_approved, admin_approved, rejected, pending, reviewed)
      with changes as (%s),
      per_day as (
        select (created_at at time zone 'UTC')::date as day,
               sum(sign) as created,
               coalesce(sum(sign) filter (where status = 'approved' and reviewer is null), 0) as auto_approved,
               coalesce(sum(sign) filter (where status = 'approved' and reviewer is not null), 0) as admin_approved,
               coalesce(sum(sign) filter (where status = 'rejected'), 0) as rejected,
               coalesce(sum(sign) filter (where status = 'pending'), 0) as pending,
               0 as reviewed
        from changes group by 1
        union all
        select (reviewed_at at time zone 'UTC')::date, 0, 0, 0, 0, 0, sum(sign)
        from changes where reviewed_at is not null group by 1
      )
      select day, sum(created), sum(auto_approved), sum(admin_approved), sum(rejected), sum(pending), sum(reviewed)
      from per_day group by day
      having sum(created) <> 0 or sum(auto_approved) <> 0 or sum(admin_approved) <> 0 or sum(rejected) <> 0
          or sum(pending) <> 0 or sum(reviewed) <> 0
    $sql$
  end, p_changes)
$$;

-- Triggers ----------------------------------------------------------------------------------------
create or replace function private.record_rollup_deltas()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  covered bigint;
  high bigint;
begin
  select b.covered_upto, b.high_water into covered, high from private.rollup_backfills as b where b.source = tg_table_name;
  if covered < high then
    -- A backfill is running: no chunk may count rows between this statement and its commit.
    perform pg_advisory_xact_lock_shared(private.rollup_lock_key(tg_table_name));
    select b.covered_upto, b.high_water into covered, high from private.rollup_backfills as b where b.source = tg_table_name;
  end if;
  execute private.rollup_insert_sql(tg_table_name, format(
    'select * from (%s) as c where c.id <= $1 or c.id > $2',
    private.signed_changes(tg_op, private.rollup_columns(tg_table_name))
  )) using covered, high;
  return null;
end;
$$;

-- A merchant's mapping in force set or moved, or a mapping's category edited: its category may differ.
create or replace function private.queue_recategorized_merchants()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_table_name = 'merchants' and tg_op = 'INSERT' then
    insert into private.rollup_recategorized (merchant_key) select merchant_key from new_rows;
  elsif tg_table_name = 'merchants' and tg_op = 'DELETE' then
    insert into private.rollup_recategorized (merchant_key) select merchant_key from old_rows;
  elsif tg_table_name = 'merchants' then
    insert into private.rollup_recategorized (merchant_key)
    select n.merchant_key from new_rows as n join old_rows as o on o.id = n.id
    where (n.mapping_id, n.mapping_created_at, n.merchant_key) is distinct from (o.mapping_id, o.mapping_created_at, o.merchant_key)
    union
    select o.merchant_key from new_rows as n join old_rows as o on o.id = n.id where n.merchant_key <> o.merchant_key;
  else
    -- The merchants this mapping is in force for.
    insert into private.rollup_recategorized (merchant_key)
    select mr.merchant_key
    from new_rows as n
    join old_rows as o on o.id = n.id and o.created_at = n.created_at
    join public.merchants as mr on mr.mapping_id = n.id and mr.mapping_created_at = n.created_at
    where n.category is distinct from o.category;
  end if;
  return null;
end;
$$;

-- Empty a source's rollups (a truncate, a restarted backfill).
create or replace function private.forget_rollups(p_source text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform pg_advisory_xact_lock(private.rollup_lock_key('compaction'));  -- no compaction half sees the reset
  case p_source
    when 'transactions' then
      delete from private.transaction_rollup_deltas;
      delete from private.transaction_rollups;
      delete from private.category_rollups;
      delete from private.rollup_merchant_categories;
    when 'allocations' then
      delete from private.allocation_rollup_deltas;
      delete from private.allocation_rollups;
    else
      delete from private.mapping_rollup_deltas;
      delete from private.mapping_rollups;
  end case;
end;
$$;

create or replace function private.reset_rollups_on_truncate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.forget_rollups(tg_table_name);
  update private.rollup_backfills set covered_upto = high_water, done_at = coalesce(done_at, now())
  where source = tg_table_name;
  return null;
end;
$$;

create trigger transactions_rollups_insert
  after insert on public.transactions
  referencing new table as new_rows
  for each statement execute function private.record_rollup_deltas();
create trigger transactions_rollups_update
  after update on public.transactions
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.record_rollup_deltas();
create trigger transactions_rollups_delete
  after delete on public.transactions
  referencing old table as old_rows
  for each statement execute function private.record_rollup_deltas();
create trigger transactions_rollups_truncate
  after truncate on public.transactions
  for each statement execute function private.reset_rollups_on_truncate();

-- Allocations are immutable (UPDATE is refused): inserts and deletes only.
create trigger allocations_rollups_insert
  after insert on public.allocations
  referencing new table as new_rows
  for each statement execute function private.record_rollup_deltas();
create trigger allocations_rollups_delete
  after delete on public.allocations
  referencing old table as old_rows
  for each statement execute function private.record_rollup_deltas();
create trigger allocations_rollups_truncate
  after truncate on public.allocations
  for each statement execute function private.reset_rollups_on_truncate();

create trigger llm_mappings_rollups_insert
  after insert on public.llm_mappings
  referencing new table as new_rows
  for each statement execute function private.record_rollup_deltas();
create trigger llm_mappings_rollups_update
  after update on public.llm_mappings
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.record_rollup_deltas();
create trigger llm_mappings_rollups_delete
  after delete on public.llm_mappings
  referencing old table as old_rows
  for each statement execute function private.record_rollup_deltas();
create trigger llm_mappings_rollups_truncate
  after truncate on public.llm_mappings
  for each statement execute function private.reset_rollups_on_truncate();

create trigger merchants_rollups_recategorize_insert
  after insert on public.merchants
  referencing new table as new_rows
  for each statement execute function private.queue_recategorized_merchants();
create trigger merchants_rollups_recategorize_update
  after update on public.merchants
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.queue_recategorized_merchants();
create trigger merchants_rollups_recategorize_delete
  after delete on public.merchants
  referencing old table as old_rows
  for each statement execute function private.queue_recategorized_merchants();
create trigger llm_mappings_rollups_recategorize
  after update on public.llm_mappings
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.queue_recategorized_merchants();

-- The triggers above hold each table's lock until this migration commits, so no row with an id at or
-- below these high waters is still being written: every such row is the backfill's.
insert into private.rollup_backfills (source, high_water, covered_upto, done_at)
select source, high, 0, case when high = 0 then now() end
from (values
  ('transactions', (select coalesce(max(id), 0) from public.transactions)),
  ('allocations', (select coalesce(max(id), 0) from public.allocations)),
  ('llm_mappings', (select coalesce(max(id), 0) from public.llm_mappings))
) as s (source, high);
