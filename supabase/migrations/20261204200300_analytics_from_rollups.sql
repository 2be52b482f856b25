/*
 * The admin charts read the rollups (analytics rollups migration): O(buckets), not O(rows).
 *
 * The scanning aggregates of the api analytics migration keep their behaviour under a `_scan`
 * name, as the reference the rollups are tested and benchmarked against; the names the admin API
 * calls now read totals + pending deltas in one snapshot, with the same signatures and rows:
 *
 *   private.analytics_category_months(from, to)     category rollups, corrected for merchants
 *                                                   recategorized and deltas since compaction
 *                                                   (months cut by the window: their days)
 *   private.analytics_top_merchants(from, to, n)    the same month x merchant rollups: a year costs
 *                                                   12 months + the cut months' days, not 365 days
 *   private.analytics_mapping_throughput(from, to)  mapping rollup, plus `reviewed` per day
 *
 * New charts, each with its `_scan` reference:
 *   private.analytics_activity(from, to, grain)     per day or month: transactions, amount, round-ups,
 *                                                   amount invested (open lots, by transaction date)
 *   private.analytics_ticker_months(from, to)       per month (starting in the window) and ticker:
 *                                                   open lots, amount and shares invested
 */

alter function private.analytics_category_months(date, date) rename to analytics_category_months_scan;
alter function private.analytics_top_merchants(date, date, integer) rename to analytics_top_merchants_scan;
alter function private.analytics_mapping_throughput(date, date) rename to analytics_mapping_throughput_scan;

-- Rollup rows (totals + deltas) -------------------------------------------------------------------
-- The rows of a grain's buckets in [from, to), compacted and pending, not summed: each chart sums
-- them once at its own level (and drops groups that sum to no transactions). These helpers have no
-- SET clause so the planner inlines them into the charts' queries (a SET clause makes every call a
-- separate, materialized function scan); they are not security definer and name every object with
-- its schema.
create or replace function private.transaction_rollup_rows(p_grain text, p_from date, p_to date)
returns table (bucket date, merchant_key text, transactions bigint, amount numeric, round_up numeric)
language sql
stable
as $$
  select t.bucket, t.merchant_key, t.transactions, t.amount, t.round_up from private.transaction_rollups as t
  where t.grain = p_grain and t.bucket >= p_from and t.bucket < p_to
  union all
  select d.bucket, d.merchant_key, d.transactions, d.amount, d.round_up from private.transaction_rollup_deltas as d
  where d.grain = p_grain and d.bucket >= p_from and d.bucket < p_to
$$;

create or replace function private.allocation_rollup_rows(p_grain text, p_from date, p_to date)
returns table (bucket date, ticker text, lots bigint, amount numeric, shares numeric)
language sql
stable
as $$
  select t.bucket, t.ticker, t.lots, t.amount, t.shares from private.allocation_rollups as t
  where t.grain = p_grain and t.bucket >= p_from and t.bucket < p_to
  union all
  select d.bucket, d.ticker, d.lots, d.amount, d.shares from private.allocation_rollup_deltas as d
  where d.grain = p_grain and d.bucket >= p_from and d.bucket < p_to
$$;

-- A window [from, to) as the whole months inside it (read from month grains) and the day ranges of
-- the months it cuts (read from day grains), so any window is exact and a year costs 12 months plus
-- at most two months of days.
create or replace function private.window_months(p_from date, p_to date)
returns table (first_month date, end_month date)
language sql
immutable
as $$
  select first_month, greatest(first_month, end_month)
  from (select (date_trunc('month', p_from - 1) + interval '1 month')::date as first_month,
               date_trunc('month', p_to)::date as end_month) as w
$$;

create or replace function private.window_cut_days(p_from date, p_to date)
returns table (lo date, hi date)
language sql
immutable
as $$
  select r.lo, r.hi
  from private.window_months(p_from, p_to) as w,
       lateral (values (p_from, case when w.first_month < w.end_month then w.first_month else p_to end),
                       (case when w.first_month < w.end_month then w.end_month else p_to end, p_to)) as r (lo, hi)
  where r.lo < r.hi
$$;

-- Rows per month and merchant in [from, to) (not summed).
create or replace function private.transaction_merchant_month_rows(p_from date, p_to date)
returns table (month date, merchant_key text, transactions bigint, amount numeric, round_up numeric)
language sql
stable
as $$
  select m.bucket, m.merchant_key, m.transactions, m.amount, m.round_up
  from private.window_months(p_from, p_to) as w,
       private.transaction_rollup_rows('month_merchant', w.first_month, w.end_month) as m
  union all
  select date_trunc('month', d.bucket)::date, d.merchant_key, d.transactions, d.amount, d.round_up
  from private.window_cut_days(p_from, p_to) as c,
       private.transaction_rollup_rows('day_merchant', c.lo, c.hi) as d
$$;

-- The charts --------------------------------------------------------------------------------------
-- PL/pgSQL, so each connection plans a chart's query once and reuses it: an SQL function is planned
-- at every call, which with the partitions of llm_mappings cost more than running the query.
create or replace function private.analytics_category_months(p_from date, p_to date)
returns table (month date, category text, transactions bigint, amount numeric, round_up numeric)
language plpgsql
stable
set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  with whole as (
    select first_month, end_month from private.window_months(p_from, p_to)
  ), moved as (
    -- Merchants recategorized since compaction filed them: their compacted months move to the category now.
    select f.merchant_key, f.category as filed, coalesce(c.category, 'UNMAPPED') as current
    from (select distinct merchant_key from private.rollup_recategorized) as q
    join private.rollup_merchant_categories as f on f.merchant_key = q.merchant_key
    left join private.merchant_categories_in_force as c on c.merchant_key = q.merchant_key
    where f.category <> coalesce(c.category, 'UNMAPPED')
  ), parts as (
    select r.month, r.category, r.transactions, r.amount, r.round_up
    from whole, private.category_rollups as r
    where r.month >= whole.first_month and r.month < whole.end_month
    union all
    select t.bucket, side.category, side.sign * t.transactions, side.sign * t.amount, side.sign * t.round_up
    from whole, moved as m
    join private.transaction_rollups as t on t.grain = 'month_merchant' and t.merchant_key = m.merchant_key
    cross join lateral (values (-1, m.filed), (1, m.current)) as side (sign, category)
    where t.bucket >= whole.first_month and t.bucket < whole.end_month
    union all
    -- Deltas not compacted yet, under the categories in force.
    select d.bucket, coalesce(c.category, 'UNMAPPED'), d.transactions, d.amount, d.round_up
    from whole, private.transaction_rollup_deltas as d
    left join private.merchant_categories_in_force as c on c.merchant_key = d.merchant_key
    where d.grain = 'month_merchant' and d.bucket >= whole.first_month and d.bucket < whole.end_month
    union all
    -- The days of months the window cuts.
    select date_trunc('month', d.bucket)::date, coalesce(c.category, 'UNMAPPED'), d.transactions, d.amount,
           d.round_up
    from private.window_cut_days(p_from, p_to) as cut,
         private.transaction_rollup_rows('day_merchant', cut.lo, cut.hi) as d
    left join private.merchant_categories_in_force as c on c.merchant_key = d.merchant_key
  )
  select month, category, sum(transactions)::bigint, sum(amount), sum(round_up)
  from parts
  group by 1, 2
  having sum(transactions) <> 0
  order by 1, 2;
end;
$$;
comment on function private.analytics_category_months(date, date) is
  'Transactions, amount and round-ups per month and category (of the mapping in force), in [from, to), from rollups.';

create or replace function private.analytics_top_merchants(p_from date, p_to date, p_limit integer)
returns table (
  merchant_key text, display_name text, company_name text, ticker text, category text,
  transactions bigint, amount numeric, round_up numeric
)
language plpgsql
stable
set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  with top as (
    select d.merchant_key, sum(d.transactions)::bigint as transactions, sum(d.amount) as amount,
           sum(d.round_up) as round_up
    from private.transaction_merchant_month_rows(p_from, p_to) as d
    where d.merchant_key <> ''
    group by d.merchant_key
    having sum(d.transactions) <> 0
    order by 2 desc, 1
    limit least(greatest(p_limit, 1), 100)
  )
  select top.merchant_key, coalesce(mc.display_name, top.merchant_key), m.company_name, m.ticker, m.category,
         top.transactions, top.amount, top.round_up
  from top
  left join public.merchants as mc on mc.merchant_key = top.merchant_key
  left join public.llm_mappings as m on m.id = mc.mapping_id and m.created_at = mc.mapping_created_at
  order by top.transactions desc, top.merchant_key;
end;
$$;
comment on function private.analytics_top_merchants(date, date, integer) is
  'The merchants with the most transactions in [from, to), at most 100, with their mapping in force, from rollups.';

-- The same days and columns as before, plus `reviewed` (mappings reviewed that day).
create or replace function private.analytics_mapping_throughput(p_from date, p_to date)
returns table (
  day date, created bigint, auto_approved bigint, admin_approved bigint, rejected bigint, pending bigint,
  reviewed bigint
)
language plpgsql
stable
set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  select r.day, sum(r.created)::bigint, sum(r.auto_approved)::bigint, sum(r.admin_approved)::bigint,
         sum(r.rejected)::bigint, sum(r.pending)::bigint, sum(r.reviewed)::bigint
  from (
    select t.day, t.created, t.auto_approved, t.admin_approved, t.rejected, t.pending, t.reviewed
    from private.mapping_rollups as t where t.day >= p_from and t.day < p_to
    union all
    select d.day, d.created, d.auto_approved, d.admin_approved, d.rejected, d.pending, d.reviewed
    from private.mapping_rollup_deltas as d where d.day >= p_from and d.day < p_to
  ) as r
  group by r.day
  having sum(r.created) <> 0 or sum(r.reviewed) <> 0
  order by r.day;
end;
$$;
comment on function private.analytics_mapping_throughput(date, date) is
  'Per UTC day in [from, to): mappings created that day by where they stand now, and mappings reviewed that day.';

create or replace function private.analytics_activity(p_from date, p_to date, p_grain text)
returns table (bucket date, transactions bigint, amount numeric, round_up numeric, invested numeric)
language plpgsql
stable
set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  with per_day as (
    select t.bucket, t.transactions, t.amount, t.round_up, 0::numeric as invested
    from private.transaction_rollup_rows('day', p_from, p_to) as t
    union all
    select a.bucket, 0, 0, 0, a.amount from private.allocation_rollup_rows('day', p_from, p_to) as a
  )
  select case p_grain when 'month' then date_trunc('month', bucket)::date else bucket end,
         sum(transactions)::bigint, sum(amount), sum(round_up), sum(invested)
  from per_day
  group by 1
  having sum(transactions) <> 0
  order by 1;
end;
$$;
comment on function private.analytics_activity(date, date, text) is
  'Per day or month (grain) in [from, to): transactions, amount, round-ups, amount invested (by transaction date).';

create or replace function private.analytics_ticker_months(p_from date, p_to date)
returns table (month date, ticker text, lots bigint, amount numeric, shares numeric)
language plpgsql
stable
set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  select a.bucket, a.ticker, sum(a.lots)::bigint, sum(a.amount), sum(a.shares)
  from private.allocation_rollup_rows('month_ticker', p_from, p_to) as a
  group by 1, 2
  having sum(a.lots) <> 0 or sum(a.amount) <> 0 or sum(a.shares) <> 0
  order by 1, 4 desc, 2;
end;
$$;
comment on function private.analytics_ticker_months(date, date) is
  'Per month starting in [from, to) and ticker: open lots, amount and shares invested in transactions of that month.';

-- References (scan the base tables; for tests and benchmarks) -------------------------------------
create or replace function private.analytics_activity_scan(p_from date, p_to date, p_grain text)
returns table (bucket date, transactions bigint, amount numeric, round_up numeric, invested numeric)
language sql
stable
set search_path = ''
as $$
  with per_day as (
    select t.txn_date as bucket, count(*) as transactions, sum(t.amount) as amount, sum(t.round_up) as round_up,
           0::numeric as invested
    from public.transactions as t where t.txn_date >= p_from and t.txn_date < p_to
    group by 1
    union all
    select a.txn_date, 0, 0, 0, sum(a.amount)
    from public.allocations as a where a.txn_date >= p_from and a.txn_date < p_to
    group by 1
  )
  select case p_grain when 'month' then date_trunc('month', bucket)::date else bucket end,
         sum(transactions)::bigint, sum(amount), sum(round_up), sum(invested)
  from per_day
  group by 1
  having sum(transactions) <> 0
  order by 1
$$;

create or replace function private.analytics_ticker_months_scan(p_from date, p_to date)
returns table (month date, ticker text, lots bigint, amount numeric, shares numeric)
language sql
stable
set search_path = ''
as $$
  select date_trunc('month', a.txn_date)::date, a.ticker,
         sum(case a.kind when 'buy' then 1 else -1 end)::bigint, sum(a.amount), sum(a.shares)
  from public.allocations as a
  where a.txn_date >= p_from and a.txn_date < (date_trunc('month', p_to - 1) + interval '1 month')::date
  group by 1, 2
  having date_trunc('month', a.txn_date)::date >= p_from and date_trunc('month', a.txn_date)::date < p_to
     and (sum(case a.kind when 'buy' then 1 else -1 end) <> 0 or sum(a.amount) <> 0 or sum(a.shares) <> 0)
  order by 1, 4 desc, 2
$$;
