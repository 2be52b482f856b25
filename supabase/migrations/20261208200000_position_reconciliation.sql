/*
 * Position reconciliation: what the broker says the omnibus account holds, per symbol, against what
 * Kamioi's books say it bought (public.fill_allocations: users + house, buys and reversals).
 *
 * Why: the books are built from the trade-event stream; an execution the stream never delivered, a
 * bust applied twice or a fill booked to the wrong order would leave the account and the users' shares
 * apart without any order looking wrong. The broker's positions are the independent count.
 *
 * How: after settling, with no order open (an order in flight has fills the broker counts and the
 * books may not have yet: an honest difference), the sweep job reads the broker's positions and calls
 * private.record_position_check(p_positions). It compares every symbol either side holds (a symbol
 * only one side has is a break: its other side is null) and writes one private.position_checks row and
 * a private.position_breaks row per symbol whose quantities differ. public.investing_overview() shows
 * the latest check to admins. Nothing is corrected automatically: a break is for a person to explain.
 */

create table private.position_checks (
  id bigint generated always as identity primary key,
  checked_at timestamptz not null default now(),
  tickers integer not null,
  breaks integer not null
);
comment on table private.position_checks is
  'Each comparison of the broker''s positions with the books: symbols compared, how many differed.';

create table private.position_breaks (
  check_id bigint not null references private.position_checks (id) on delete cascade,
  ticker text not null,
  broker_qty numeric(20, 9),  -- null: the broker holds none
  book_qty numeric(20, 9),  -- null: the books hold none
  difference numeric(20, 9) not null,  -- broker - books
  primary key (check_id, ticker)
);
comment on table private.position_breaks is
  'Symbols whose broker quantity differs from the sum of fill_allocations.shares at a check.';
revoke all on table private.position_checks, private.position_breaks from public, anon, authenticated, service_role;

create or replace function private.record_position_check(p_positions jsonb)
returns bigint
language sql
security invoker
set search_path = ''
as $$
  with broker as (
    select p.symbol as ticker, sum(p.qty) as qty
    from jsonb_to_recordset(p_positions) as p(symbol text, qty numeric)
    group by p.symbol
  ), books as (
    select f.ticker, sum(f.shares) as qty from public.fill_allocations as f group by f.ticker
  ), compared as (
    select coalesce(b.ticker, k.ticker) as ticker, b.qty as broker_qty, k.qty as book_qty,
           coalesce(b.qty, 0) - coalesce(k.qty, 0) as difference
    from broker as b full join books as k on k.ticker = b.ticker
    where coalesce(b.qty, 0) <> 0 or coalesce(k.qty, 0) <> 0  -- closed on both sides: nothing to compare
  ), checked as (
    insert into private.position_checks (tickers, breaks)
    select count(*), count(*) filter (where c.difference <> 0) from compared as c
    returning id
  ), broken as (
    insert into private.position_breaks (check_id, ticker, broker_qty, book_qty, difference)
    select checked.id, c.ticker, c.broker_qty, c.book_qty, c.difference
    from compared as c cross join checked
    where c.difference <> 0
  )
  select checked.id from checked;
$$;
comment on function private.record_position_check(jsonb) is
  'Compare the broker''s positions ([{symbol, qty}]) with the books (sum of fill_allocations.shares per '
  'ticker) over every symbol either side holds; record the check and its breaks; returns the check id.';
revoke execute on function private.record_position_check(jsonb) from public, anon, authenticated;

-- The admin overview gains the latest check (20261208100000's version, whole, plus 'reconciliation') --
create or replace function public.investing_overview()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_admin();
  return jsonb_build_object(
    'orders', (select coalesce(jsonb_agg(to_jsonb(o) order by o.id desc), '[]') from (
                 select id, sweep_id, client_order_id, ticker, notional, status, filled_qty, filled_avg_price,
                        reject_reason, created_at, filled_at
                 from public.broker_orders order by id desc limit 50) as o),
    'orders_by_status', (select coalesce(jsonb_object_agg(s.status, s.n), '{}') from (
                 select status, count(*) as n from public.broker_orders group by status) as s),
    'fills', (select jsonb_build_object('events', count(*), 'shares', coalesce(sum(e.qty), 0))
              from private.broker_events as e where e.event in ('fill', 'partial_fill')),
    'house', (select coalesce(jsonb_agg(jsonb_build_object('ticker', h.ticker, 'shares', h.shares, 'cash', h.cash)
                                        order by h.ticker), '[]') from private.house_positions as h),
    'waiting_for_threshold', (
      select jsonb_build_object('users', count(distinct t.user_id), 'round_ups', count(*),
                                'amount', coalesce(sum(t.round_up), 0))
      from public.transactions as t
      where t.status = 'mapped' and t.round_up > 0
        and not exists (select 1 from private.sweep_members as m where m.user_id = t.user_id and t.id = any(m.ids))),
    'settling', (select jsonb_build_object('users', count(*), 'round_ups', coalesce(sum(cardinality(m.ids)), 0),
                                           'notional', coalesce(sum(m.notional), 0))
                 from private.sweep_members as m),
    'carried', (select jsonb_build_object('positions', count(*), 'notional', coalesce(sum(c.notional), 0))
                from private.sweep_carry as c),
    'fallbacks', (select coalesce(jsonb_agg(jsonb_build_object('ticker', f.ticker, 'reason', f.reason,
                                                               'round_ups', f.round_ups) order by f.ticker), '[]')
                  from private.ticker_fallbacks as f),
    'reconciliation', (
      select jsonb_build_object('checked_at', c.checked_at, 'tickers', c.tickers, 'breaks', c.breaks,
                                'break_rows', (select coalesce(jsonb_agg(jsonb_build_object(
                                                 'ticker', b.ticker, 'broker_qty', b.broker_qty,
                                                 'book_qty', b.book_qty, 'difference', b.difference)
                                               order by b.ticker), '[]')
                                             from private.position_breaks as b where b.check_id = c.id))
      from private.position_checks as c order by c.id desc limit 1));
end;
$$;
comment on function public.investing_overview() is
  'Admin: broker orders, fills, the house position, what waits for a threshold, what is being settled, carried '
  'notional, ticker fallbacks, the latest position reconciliation (null: none yet).';
