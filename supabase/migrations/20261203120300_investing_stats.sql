/*
 * Investing totals in the admin dashboard, exact and O(tickers), never O(allocations).
 *
 * Allocations feed the same append-only delta rows as mappings and transactions (dashboard stats
 * migration): per statement and ticker, 'allocations.ticker' (n = open lots, total = amount
 * invested) and 'allocations.shares' (total = shares). Reversals carry negative amounts and
 * shares, so a correction nets out by itself.
 *
 * public.dashboard_stats() keeps its mappings and transactions sections (the earlier function,
 * moved to private.core_dashboard_stats()) and gains `investing`: amount invested, open lots,
 * tickers held, the top 25 tickers by amount, and the round-ups still waiting (pending: not mapped
 * or awaiting review; mapped: awaiting investment). Why mapped round-ups wait is
 * public.investing_backlog() (allocation engine migration); every ticker held is
 * private.analytics_investing_by_ticker() (the admin API's GET /v1/analytics/investing).
 */

create or replace function private.record_allocation_stat_deltas()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  execute format($sql$
    insert into private.stat_deltas (metric, bucket, n, total)
    with changes as (%s),
    grouped as (
      select ticker, sum(sign * case kind when 'buy' then 1 else -1 end) as lots,
             sum(sign * amount) as amount, sum(sign * shares) as shares
      from changes
      group by ticker
    )
    select m.metric, grouped.ticker, m.n, m.total
    from grouped
    cross join lateral (values
      ('allocations.ticker', grouped.lots, grouped.amount),
      ('allocations.shares', 0::bigint, grouped.shares)
    ) as m (metric, n, total)
    where m.n <> 0 or m.total <> 0
  $sql$, private.signed_changes(tg_op, 'ticker, kind, amount, shares'));
  return null;
end;
$$;

create trigger allocations_stats_insert
  after insert on public.allocations
  referencing new table as new_rows
  for each statement execute function private.record_allocation_stat_deltas();
create trigger allocations_stats_delete
  after delete on public.allocations
  referencing old table as old_rows
  for each statement execute function private.record_allocation_stat_deltas();
create trigger allocations_stats_truncate
  after truncate on public.allocations
  for each statement execute function private.reset_stats_on_truncate();

-- Compacted totals plus pending deltas of the metrics under a prefix, in one snapshot.
create or replace function private.current_stats(p_prefix text)
returns table (metric text, bucket text, n bigint, total numeric)
language sql
stable
set search_path = ''
as $$
  select s.metric, s.bucket, sum(s.n)::bigint, sum(s.total)
  from (
    select t.metric, t.bucket, t.n, t.total from private.stat_totals as t where t.metric like p_prefix || '%'
    union all
    select d.metric, d.bucket, d.n, d.total from private.stat_deltas as d where d.metric like p_prefix || '%'
  ) as s
  group by s.metric, s.bucket
$$;

-- Every ticker held, for the admin API's investing chart (the dashboard shows the top 25).
create or replace function private.analytics_investing_by_ticker()
returns table (ticker text, amount numeric, shares numeric, lots bigint)
language sql
stable
set search_path = ''
as $$
  select a.bucket, a.total, coalesce(s.total, 0), a.n
  from private.current_stats('allocations.ticker') as a
  left join private.current_stats('allocations.shares') as s on s.bucket = a.bucket
  where a.n > 0
  order by a.total desc, a.bucket
$$;
comment on function private.analytics_investing_by_ticker() is
  'Amount invested, shares and open lots per ticker held: O(tickers), from the stat totals and deltas.';

create or replace function private.investing_stats()
returns jsonb
language sql
stable
set search_path = ''
as $$
  with allocation_stats as (
    select metric, bucket, n, total from private.current_stats('allocations.')
  ), by_ticker as (
    select a.bucket as ticker, a.n as lots, a.total as amount, coalesce(s.total, 0) as shares
    from allocation_stats as a
    left join allocation_stats as s on s.metric = 'allocations.shares' and s.bucket = a.bucket
    where a.metric = 'allocations.ticker' and a.n > 0
  ), waiting as (
    select w.bucket as status, w.n, w.total
    from private.current_stats('transactions.round_up') as w
    where w.bucket in ('pending', 'mapped')
  )
  select jsonb_build_object(
    'invested', coalesce((select sum(amount) from by_ticker), 0),
    'open_lots', coalesce((select sum(lots) from by_ticker), 0),
    'tickers', (select count(*) from by_ticker),
    'top_tickers', coalesce((
      select jsonb_agg(jsonb_build_object('ticker', ticker, 'amount', amount, 'shares', shares, 'lots', lots)
                       order by amount desc, ticker)
      from (select * from by_ticker order by amount desc, ticker limit 25) as top), '[]'::jsonb),
    'waiting', jsonb_build_object(
      'pending', jsonb_build_object(
        'count', coalesce((select n from waiting where status = 'pending'), 0),
        'round_up', coalesce((select total from waiting where status = 'pending'), 0)),
      'mapped', jsonb_build_object(
        'count', coalesce((select n from waiting where status = 'mapped'), 0),
        'round_up', coalesce((select total from waiting where status = 'mapped'), 0)))
  )
$$;

alter function public.dashboard_stats() rename to core_dashboard_stats;
alter function public.core_dashboard_stats() set schema private;
revoke execute on function private.core_dashboard_stats() from public, anon, authenticated, service_role;

create or replace function public.dashboard_stats()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  -- core_dashboard_stats() checks that an API caller is an admin before anything is read.
  select private.core_dashboard_stats() || jsonb_build_object('investing', private.investing_stats())
$$;
comment on function public.dashboard_stats() is
  'Admin dashboard totals (mappings, transactions, investing), exact and O(1) in table size.';
revoke execute on function public.dashboard_stats() from public, anon;
grant execute on function public.dashboard_stats() to authenticated, service_role;
