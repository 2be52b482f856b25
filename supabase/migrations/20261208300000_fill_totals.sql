/*
 * Fills count where allocations count: in the dashboard's investing totals and in each user's total
 * invested (the admin users list).
 *
 * A sweep invests through broker fills (public.fill_allocations), not through the quote engine's
 * allocations, so until now the dashboard and the users list missed every swept dollar while
 * holdings (20261207500100) already followed fills. A user's fill allocation is a lot at the fill
 * price, so it feeds the same delta rows as an allocation:
 * - private.stat_deltas, per statement and ticker: 'allocations.ticker' (n = lots: a buy +1, a
 *   reversal -1; total = amount) and 'allocations.shares' (total = shares), which
 *   public.dashboard_stats() and the per-ticker analytics already read;
 * - private.user_total_deltas, per statement and user: invested.
 * The house's rows (user_id null: the leftover shares and cents) are not a user's money; they show in
 * public.investing_overview(). Fill allocations are insert-only (an update is refused, a correction
 * is a reversal row), so only INSERT is followed, like the holdings trigger.
 *
 * The triggers cost one row per ticker and one per user for each batch of trade events, the same
 * order as the holdings upsert that batch already writes.
 *
 * Backfill: the fills already recorded are folded in while a SHARE lock keeps new ones out.
 */

create or replace function private.record_fill_stat_deltas()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.stat_deltas (metric, bucket, n, total)
  select m.metric, g.ticker, m.n, m.total
  from (
    select n.ticker, sum(case n.kind when 'buy' then 1 else -1 end) as lots,
           sum(n.amount) as amount, sum(n.shares) as shares
    from new_rows as n
    where n.user_id is not null
    group by n.ticker
  ) as g
  cross join lateral (values
    ('allocations.ticker', g.lots, g.amount),
    ('allocations.shares', 0::bigint, g.shares)
  ) as m (metric, n, total)
  where m.n <> 0 or m.total <> 0;
  return null;
end;
$$;

create or replace function private.record_fill_user_totals()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.user_total_deltas (user_id, invested)
  select n.user_id, sum(n.amount)
  from new_rows as n
  where n.user_id is not null
  group by n.user_id
  having sum(n.amount) <> 0;
  return null;
end;
$$;

revoke execute on function private.record_fill_stat_deltas() from public, anon, authenticated;
revoke execute on function private.record_fill_user_totals() from public, anon, authenticated;

-- The CLI runs each statement on its own: the backfill and the triggers need one transaction.
begin;
lock table public.fill_allocations in share mode;

insert into private.stat_deltas (metric, bucket, n, total)
select m.metric, g.ticker, m.n, m.total
from (
  select f.ticker, sum(case f.kind when 'buy' then 1 else -1 end) as lots,
         sum(f.amount) as amount, sum(f.shares) as shares
  from public.fill_allocations as f
  where f.user_id is not null
  group by f.ticker
) as g
cross join lateral (values
  ('allocations.ticker', g.lots, g.amount),
  ('allocations.shares', 0::bigint, g.shares)
) as m (metric, n, total)
where m.n <> 0 or m.total <> 0;

insert into private.user_total_deltas (user_id, invested)
select f.user_id, sum(f.amount)
from public.fill_allocations as f
where f.user_id is not null
group by f.user_id
having sum(f.amount) <> 0;

create trigger fill_allocations_stats_insert
  after insert on public.fill_allocations
  referencing new table as new_rows
  for each statement execute function private.record_fill_stat_deltas();

create trigger fill_allocations_user_totals_insert
  after insert on public.fill_allocations
  referencing new table as new_rows
  for each statement execute function private.record_fill_user_totals();

commit;
