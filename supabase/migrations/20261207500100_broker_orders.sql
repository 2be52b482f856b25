/*
 * Sweeps, broker orders, trade events and fill allocations: money reaches a broker.
 *
 * private.sweep_round_ups(fallback, min_notional) is one sweep, one transaction:
 * - ready round-ups = transactions `mapped` whose merchant's mapping in force is approved (rows
 *   another transaction holds are skipped), each x its user's multiplier (public.investing_settings,
 *   defaults where no row);
 * - a user is swept when their ready total reaches their threshold and they are not paused: their
 *   transactions become `invested` with sweep_id (money has left the ready pool), and their notional
 *   per ticker becomes a row of private.sweep_positions;
 * - the ticker is the mapping's when the broker lists it tradable and fractionable
 *   (private.broker_assets, refreshed from the broker's assets endpoint by the job), else the
 *   fallback fund (private companies as before; the reason kept in private.ticker_fallbacks for admins);
 * - positions carried from earlier sweeps (private.sweep_carry: a ticker under the broker's minimum,
 *   the unfilled part of a rejected or canceled order) join the sweep, whatever the threshold;
 * - a ticker whose total is under the broker's minimum notional goes back to carry (it rolls to
 *   the next sweep); every other ticker gets one public.broker_orders row, client_order_id
 *   `kamioi-<sweep>-<random>-<ticker>`: the job places it, idempotent by that id;
 * - round-ups of 0 become `invested` with nothing to buy; rows whose mapping lost its approval go
 *   back to `pending` (as the quote engine did);
 * - one realtime message per swept user (`round_ups_swept` on user:<uid>:transactions); the
 *   per-statement `transaction_changed` broadcast is quieted for this statement
 *   (kamioi.quiet_user_broadcasts), so a user hears of a sweep once, not per purchase.
 *
 * private.apply_trade_event(stream, event jsonb): one broker trade event, one transaction, exactly
 * once: the event row (unique event_id: a duplicate is a no-op), the order's status and fill
 * totals, the allocations it produces and the stream cursor commit together. A fill (or
 * partial_fill: its own qty and price) is split across the order's users pro rata to their
 * notional, shares rounded down to 9 decimals (the broker's precision), cents down; the leftover
 * shares and cents are the house's (rows with user_id null): users + house = the fill exactly. A
 * trade_bust writes reversals of every allocation of that execution; a trade_correct reverses them
 * and allocates the corrected qty and price. A rejected or canceled order carries each user's
 * unfilled notional forward.
 *
 * Holdings come from fills: public.fill_allocations feeds public.holdings (users) and
 * private.house_positions (the house) through statement triggers.
 *
 * Access: public.broker_orders is read by admins only; public.fill_allocations by its user and
 * admins; nothing here is written through the Data API (the engine uses the privileged connection).
 */

-- The broker's asset list, cached ------------------------------------------------------------------
create table private.broker_assets (
  symbol text primary key,
  tradable boolean not null,
  fractionable boolean not null,
  fetched_at timestamptz not null default now()
);
comment on table private.broker_assets is
  'The broker''s assets (tradable, fractionable), refreshed by the sweep job: a mapping''s ticker must be both.';

create table private.ticker_fallbacks (
  ticker text primary key,
  reason text not null check (reason in ('not_at_broker', 'not_tradable', 'not_fractionable')),
  round_ups bigint not null default 0,
  last_sweep_id bigint,
  updated_at timestamptz not null default now()
);
comment on table private.ticker_fallbacks is
  'Mapped tickers the broker cannot buy fractionally: their round-ups went to the fallback fund, and why.';

-- Sweeps -------------------------------------------------------------------------------------------
create table private.sweeps (
  id bigint generated always as identity primary key,
  created_at timestamptz not null default now(),
  fallback_ticker text,
  min_notional numeric(10, 2) not null,
  users integer not null default 0,
  round_ups integer not null default 0,
  notional numeric(16, 2) not null default 0,
  orders integer not null default 0,
  carried numeric(16, 2) not null default 0
);

alter table public.transactions add column sweep_id bigint;
comment on column public.transactions.sweep_id is
  'The sweep that took this round-up into broker orders (private.sweeps); null: not swept.';

create table private.sweep_positions (
  sweep_id bigint not null references private.sweeps (id),
  ticker text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  notional numeric(14, 2) not null check (notional > 0),
  round_ups integer not null,
  primary key (sweep_id, ticker, user_id)
);
comment on table private.sweep_positions is
  'What each swept user buys of each ticker in a sweep: the split of that ticker''s order.';

create table private.sweep_carry (
  user_id uuid not null references auth.users (id) on delete cascade,
  ticker text not null,
  notional numeric(14, 2) not null check (notional > 0),
  reason text not null,
  updated_at timestamptz not null default now(),
  primary key (user_id, ticker)
);
comment on table private.sweep_carry is
  'Notional swept but not bought yet (ticker under the broker minimum, unfilled order): joins the next sweep.';

-- Orders -------------------------------------------------------------------------------------------
create table public.broker_orders (
  id bigint generated always as identity primary key,
  sweep_id bigint not null references private.sweeps (id),
  client_order_id text not null unique,
  broker_order_id text unique,
  ticker text not null,
  notional numeric(14, 2) not null check (notional > 0),
  status text not null default 'new'
    check (status in ('new', 'partially_filled', 'filled', 'canceled', 'rejected')),
  filled_qty numeric(20, 9) not null default 0,
  filled_avg_price numeric(18, 6),
  filled_amount numeric(14, 2) not null default 0,
  reject_reason text,
  created_at timestamptz not null default now(),
  submitted_at timestamptz,
  filled_at timestamptz,
  updated_at timestamptz not null default now(),
  unique (sweep_id, ticker)
);
comment on table public.broker_orders is
  'One notional market order per ticker per sweep, in the broker''s words; submitted_at null: not acknowledged yet.';
create index broker_orders_open_idx on public.broker_orders (id)
  where status in ('new', 'partially_filled');

alter table public.broker_orders enable row level security;
create policy "broker_orders: admins read" on public.broker_orders
  for select to authenticated
  using ((select private.is_admin()));
revoke all on public.broker_orders from anon, authenticated;
grant select on public.broker_orders to authenticated;
grant select on public.broker_orders to service_role;

-- Trade events, consumed once ----------------------------------------------------------------------
create table private.broker_events (
  event_id text primary key,
  order_id bigint not null references public.broker_orders (id),
  event text not null,
  execution_id text,
  qty numeric(20, 9),
  price numeric(18, 6),
  at timestamptz,
  consumed_at timestamptz not null default now(),
  payload jsonb not null
);
comment on table private.broker_events is 'Every broker trade event consumed, once (its id is the broker''s).';

create table private.broker_event_cursor (
  stream text primary key,
  last_event_id bigint not null,
  updated_at timestamptz not null default now()
);
comment on table private.broker_event_cursor is
  'Where the trade-event stream resumes (since_id); moves in the transaction of the event it passes.';

-- Allocations of fills -----------------------------------------------------------------------------
create table public.fill_allocations (
  id bigint generated always as identity primary key,
  broker_order_id bigint not null references public.broker_orders (id),
  execution_id text not null,
  event_id text not null,
  user_id uuid references auth.users (id) on delete cascade,  -- null: the house
  ticker text not null,
  amount numeric(14, 2) not null,
  shares numeric(20, 9) not null,
  price numeric(18, 6) not null check (price > 0),
  kind text not null check (kind in ('buy', 'reversal')),
  created_at timestamptz not null default now(),
  constraint fill_allocations_once unique nulls not distinct (execution_id, event_id, user_id, kind)
);
comment on table public.fill_allocations is
  'Each fill split across its order''s users (pro rata, shares down to 9 dp) and the house (user_id null: the leftovers).';
create index fill_allocations_user_idx on public.fill_allocations (user_id, id);
create index fill_allocations_execution_idx on public.fill_allocations (execution_id);

alter table public.fill_allocations enable row level security;
create policy "fill_allocations: read own, admins read all" on public.fill_allocations
  for select to authenticated
  using (user_id = (select auth.uid()) or (select private.is_admin()));
revoke all on public.fill_allocations from anon, authenticated;
grant select on public.fill_allocations to authenticated;
grant select on public.fill_allocations to service_role;

create table private.house_positions (
  ticker text primary key,
  shares numeric(20, 9) not null,
  cash numeric(14, 2) not null,
  updated_at timestamptz not null default now()
);
comment on table private.house_positions is
  'The house''s leftovers per ticker: shares and cents no user''s pro-rata share rounded down to.';

-- Holdings at the broker's precision.
alter table public.holdings alter column shares type numeric(21, 9);

create or replace function private.add_fills_to_holdings()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.holdings as h (user_id, ticker, shares, invested, lots)
  select n.user_id, n.ticker, sum(n.shares), sum(n.amount), sum(case n.kind when 'buy' then 1 else -1 end)
  from new_rows as n
  where n.user_id is not null
  group by n.user_id, n.ticker
  order by n.user_id, n.ticker
  on conflict (user_id, ticker) do update
    set shares = h.shares + excluded.shares, invested = h.invested + excluded.invested,
        lots = h.lots + excluded.lots, updated_at = now();
  insert into private.house_positions as p (ticker, shares, cash)
  select n.ticker, sum(n.shares), sum(n.amount)
  from new_rows as n
  where n.user_id is null
  group by n.ticker
  order by n.ticker
  on conflict (ticker) do update
    set shares = p.shares + excluded.shares, cash = p.cash + excluded.cash, updated_at = now();
  return null;
end;
$$;

create trigger fill_allocations_holdings_insert
  after insert on public.fill_allocations
  referencing new table as new_rows
  for each statement execute function private.add_fills_to_holdings();

create or replace function private.refuse_changing_fill_allocations()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'fill allocations are immutable: a correction is a reversal' using errcode = '42501';
end;
$$;

create trigger fill_allocations_immutable
  before update on public.fill_allocations
  for each row execute function private.refuse_changing_fill_allocations();

-- Quieting the per-statement broadcast for the sweep's own statement --------------------------------
create or replace function private.broadcast_user_changes()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  changed_rows text := case tg_op
    when 'INSERT' then 'select user_id, id from new_rows'
    when 'DELETE' then 'select user_id, id from old_rows'
    else 'select user_id, id from new_rows union select user_id, id from old_rows'
  end;
  per_user record;
begin
  -- A sweep sends its own one message per user (round_ups_swept) instead.
  if coalesce(current_setting('kamioi.quiet_user_broadcasts', true), '') = 'on' then
    return null;
  end if;
  for per_user in execute format(
    'select user_id, count(*) as row_count, (array_agg(id order by id desc))[1:100] as ids '
    'from (%s) as changed group by user_id', changed_rows)
  loop
    perform realtime.send(
      jsonb_build_object('operation', tg_op, 'table', tg_table_name,
                         'count', per_user.row_count, 'ids', to_jsonb(per_user.ids)),
      tg_argv[0],
      'user:' || per_user.user_id::text || ':transactions',
      true
    );
  end loop;
  return null;
end;
$$;

-- The sweep ----------------------------------------------------------------------------------------
create or replace function private.sweep_round_ups(p_fallback_ticker text, p_min_notional numeric)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_sweep bigint;
  v_fallback text := nullif(p_fallback_ticker, '');
begin
  -- One sweep at a time: the carried positions are read and emptied by the sweep that holds this.
  perform pg_advisory_xact_lock(hashtext('kamioi.sweep'));
  insert into private.sweeps (fallback_ticker, min_notional) values (v_fallback, p_min_notional)
  returning id into v_sweep;
  perform set_config('kamioi.quiet_user_broadcasts', 'on', true);

  -- The temp tables below, declared for plpgsql_check (a string constant: nothing at run time).
  perform 'PRAGMA:TABLE: sweep_locked (id bigint, txn_date date, user_id uuid, round_up numeric(12, 2), merchant_key text)';
  perform 'PRAGMA:TABLE: sweep_merchants (merchant_key text, mapped text, fallback_reason text)';
  perform 'PRAGMA:TABLE: sweep_ready (id bigint, txn_date date, user_id uuid, round_up numeric(12, 2), ticker text, action text)';
  perform 'PRAGMA:TABLE: sweep_users (user_id uuid, multiplier smallint)';
  perform 'PRAGMA:TABLE: sweep_taken (id bigint, txn_date date, user_id uuid, round_up numeric(12, 2), ticker text, action text, multiplier smallint, swept boolean)';
  perform 'PRAGMA:TABLE: sweep_moved (user_id uuid, ticker text, round_up numeric, multiplier smallint, swept boolean)';
  perform 'PRAGMA:TABLE: sweep_pos (ticker text, user_id uuid, notional numeric, round_ups integer)';
  perform 'PRAGMA:TABLE: sweep_tickers (ticker text, notional numeric, ordered boolean)';

  -- The ready rows, read without locks: the UPDATE below takes only rows still `mapped` when it
  -- reaches them, and the positions come from what it changed (locking a million rows first would
  -- write every one of them twice).
  create temp table sweep_locked on commit drop as
    select t.id, t.txn_date, t.user_id, t.round_up, t.merchant_key
    from public.transactions as t
    where t.status = 'mapped';
  analyze sweep_locked;

  -- Each merchant's ticker once: the mapping's if the broker can buy it fractionally, else the fund.
  create temp table sweep_merchants on commit drop as
    select a.merchant_key,
           a.ticker as mapped,
           case when a.ticker is null then null
                when b.symbol is null then 'not_at_broker'
                when not b.tradable then 'not_tradable'
                when not b.fractionable then 'not_fractionable'
           end as fallback_reason
    from private.approved_mappings_in_force as a
    left join private.broker_assets as b on b.symbol = a.ticker
    where a.merchant_key in (select distinct r.merchant_key from sweep_locked as r);
  analyze sweep_merchants;

  insert into private.ticker_fallbacks as tf (ticker, reason, round_ups, last_sweep_id)
  select f.mapped, min(f.fallback_reason), count(*), v_sweep
  from sweep_locked as r join sweep_merchants as f on f.merchant_key = r.merchant_key
  where f.fallback_reason is not null
  group by f.mapped
  on conflict (ticker) do update
    set reason = excluded.reason, round_ups = tf.round_ups + excluded.round_ups,
        last_sweep_id = excluded.last_sweep_id, updated_at = now();

  create temp table sweep_ready on commit drop as
    select r.id, r.txn_date, r.user_id, r.round_up,
           case when f.fallback_reason is null and f.mapped is not null then f.mapped else v_fallback end as ticker,
           case when f.merchant_key is null then 'unlink'
                when r.round_up = 0 then 'nothing_to_invest'
                when f.fallback_reason is null and f.mapped is not null then 'buy'
                when v_fallback is not null then 'buy'
           end as action
    from sweep_locked as r
    left join sweep_merchants as f on f.merchant_key = r.merchant_key;

  -- Users at their threshold and not paused: all their ready round-ups go, x their multiplier.
  create temp table sweep_users on commit drop as
    select rules.user_id, rules.multiplier
    from private.investing_rules_of(array(select distinct r.user_id from sweep_ready as r)) as rules
    join (select r.user_id, sum(r.round_up) as ready from sweep_ready as r where r.action = 'buy' group by r.user_id)
      as totals on totals.user_id = rules.user_id
    where not rules.paused and totals.ready * rules.multiplier >= rules.threshold_dollars;
  analyze sweep_users;

  create temp table sweep_taken on commit drop as
    select s.id, s.txn_date, s.user_id, s.round_up, s.ticker, s.action, u.multiplier,
           (s.action = 'buy' and u.user_id is not null) as swept
    from sweep_ready as s
    left join sweep_users as u on u.user_id = s.user_id
    where s.action in ('unlink', 'nothing_to_invest') or (s.action = 'buy' and u.user_id is not null);
  analyze sweep_taken;

  create temp table sweep_moved (user_id uuid, ticker text, round_up numeric, multiplier smallint, swept boolean)
    on commit drop;
  with moved as (
    update public.transactions as t
    set status = case s.action when 'unlink' then 'pending' else 'invested' end,
        mapping_id = case s.action when 'unlink' then null else t.mapping_id end,
        sweep_id = case when s.swept then v_sweep end
    from sweep_taken as s
    where t.id = s.id and t.txn_date = s.txn_date and t.status = 'mapped'
    returning s.user_id, s.ticker, s.round_up, s.multiplier, s.swept
  )
  insert into sweep_moved select * from moved;

  -- This sweep's positions: swept round-ups x multiplier, plus everything carried.
  create temp table sweep_pos on commit drop as
    select x.ticker, x.user_id, sum(x.notional) as notional, sum(x.round_ups)::integer as round_ups
    from (
      select s.user_id, s.ticker, s.round_up * s.multiplier as notional, 1 as round_ups
      from sweep_moved as s where s.swept
      union all
      select c.user_id, c.ticker, c.notional, 0 from private.sweep_carry as c
    ) as x
    group by x.ticker, x.user_id
    having sum(x.notional) > 0;
  delete from private.sweep_carry;

  -- A ticker under the broker's minimum rolls to the next sweep; every other one is an order.
  create temp table sweep_tickers on commit drop as
    select p.ticker, sum(p.notional) as notional, sum(p.notional) >= p_min_notional as ordered
    from sweep_pos as p group by p.ticker;

  insert into private.sweep_carry (user_id, ticker, notional, reason)
  select p.user_id, p.ticker, p.notional, 'under_minimum'
  from sweep_pos as p join sweep_tickers as k on k.ticker = p.ticker and not k.ordered;

  insert into private.sweep_positions (sweep_id, ticker, user_id, notional, round_ups)
  select v_sweep, p.ticker, p.user_id, p.notional, p.round_ups
  from sweep_pos as p join sweep_tickers as k on k.ticker = p.ticker and k.ordered;

  insert into public.broker_orders (sweep_id, client_order_id, ticker, notional)
  -- The random part keeps ids unique at the broker across databases (a reset, a restored backup
  -- restarting sweep ids): the broker keeps every id it has seen.
  select v_sweep, 'kamioi-' || v_sweep || '-' || substr(md5(random()::text || clock_timestamp()::text), 1, 8)
                  || '-' || k.ticker,
         k.ticker, k.notional
  from sweep_tickers as k
  where k.ordered
  order by k.ticker;

  -- One message per swept user.
  perform realtime.send(
    jsonb_build_object('sweep_id', v_sweep, 'round_ups', u.round_ups, 'notional', u.notional, 'tickers', u.tickers),
    'round_ups_swept', 'user:' || u.user_id::text || ':transactions', true)
  from (
    select s.user_id, count(*) as round_ups, sum(s.round_up * s.multiplier) as notional,
           count(distinct s.ticker) as tickers
    from sweep_moved as s where s.swept group by s.user_id
  ) as u;

  update private.sweeps as w
  set users = x.users, round_ups = x.round_ups, notional = x.notional,
      orders = (select count(*) from public.broker_orders as o where o.sweep_id = v_sweep),
      carried = (select coalesce(sum(c.notional), 0) from private.sweep_carry as c)
  from (select count(distinct s.user_id) as users, count(*) as round_ups,
               coalesce(sum(s.round_up * s.multiplier), 0) as notional
        from sweep_moved as s where s.swept) as x
  where w.id = v_sweep;
  return v_sweep;
end;
$$;
comment on function private.sweep_round_ups(text, numeric) is
  'One sweep: ready round-ups x multiplier of users at their threshold into one order per ticker; returns the sweep id.';

-- Placing: the job records what the broker answered ------------------------------------------------
create or replace function private.record_order_submission(
  p_order_id bigint, p_broker_order_id text, p_status text, p_reject_reason text default null
)
returns void
language sql
set search_path = ''
as $$
  update public.broker_orders
  set broker_order_id = p_broker_order_id,
      submitted_at = coalesce(submitted_at, now()),
      status = case when status in ('filled', 'canceled', 'rejected') then status
                    when p_status in ('new', 'partially_filled', 'filled', 'canceled', 'rejected') then
                      case when p_status in ('partially_filled', 'filled') then status else p_status end
                    else status end,
      reject_reason = coalesce(p_reject_reason, reject_reason),
      updated_at = now()
  where id = p_order_id
$$;
comment on function private.record_order_submission(bigint, text, text, text) is
  'The broker acknowledged an order (fills come from trade events only, so they are counted once).';

-- Consuming one trade event ------------------------------------------------------------------------
create or replace function private.apply_trade_event(p_stream text, p_event jsonb)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_event_id text := p_event ->> 'event_id';
  v_kind text := p_event ->> 'event';
  v_execution text := p_event ->> 'execution_id';
  v_order public.broker_orders;
  v_qty numeric := (p_event ->> 'qty')::numeric;
  v_price numeric := (p_event ->> 'price')::numeric;
  v_amount numeric;
  v_inserted integer;
begin
  select * into v_order from public.broker_orders as o
  where o.client_order_id = p_event #>> '{order,client_order_id}'
  for update;
  if not found then
    return 'unknown_order';  -- not ours (another app on the account): skip, but move the cursor
  end if;

  insert into private.broker_events (event_id, order_id, event, execution_id, qty, price, at, payload)
  values (v_event_id, v_order.id, v_kind, v_execution, v_qty, v_price, (p_event ->> 'timestamp')::timestamptz, p_event)
  on conflict (event_id) do nothing;
  get diagnostics v_inserted = row_count;

  if v_inserted = 1 then
    if v_kind in ('trade_bust', 'trade_correct') then
      insert into public.fill_allocations (broker_order_id, execution_id, event_id, user_id, ticker, amount, shares, price, kind)
      select f.broker_order_id, f.execution_id, v_event_id, f.user_id, f.ticker, -f.amount, -f.shares, f.price, 'reversal'
      from public.fill_allocations as f
      where f.execution_id = v_execution and f.broker_order_id = v_order.id
        and f.event_id = (select max(g.event_id) from public.fill_allocations as g
                          where g.execution_id = v_execution and g.kind = 'buy' and g.broker_order_id = v_order.id)
        and f.kind = 'buy'
        and not exists (select 1 from public.fill_allocations as r
                        where r.execution_id = v_execution and r.kind = 'reversal' and r.event_id = v_event_id);
      update public.broker_orders as o
      set filled_qty = o.filled_qty - coalesce(b.qty, 0), filled_amount = o.filled_amount - coalesce(b.amount, 0)
      from (select e.qty, round(e.qty * e.price, 2) as amount from private.broker_events as e
            where e.execution_id = v_execution and e.order_id = v_order.id and e.event in ('fill', 'partial_fill', 'trade_correct')
              and e.event_id <> v_event_id
            order by e.consumed_at desc, e.event_id desc limit 1) as b
      where o.id = v_order.id;
    end if;
    if v_kind in ('fill', 'partial_fill', 'trade_correct') and v_qty > 0 then
      v_amount := round(v_qty * v_price, 2);
      with positions as (
        select p.user_id, p.notional, sum(p.notional) over () as total
        from private.sweep_positions as p
        where p.sweep_id = v_order.sweep_id and p.ticker = v_order.ticker
      ), users as (
        select ps.user_id,
               trunc(v_qty * ps.notional / ps.total, 9) as shares,
               trunc(v_amount * ps.notional / ps.total, 2) as amount
        from positions as ps
      )
      insert into public.fill_allocations (broker_order_id, execution_id, event_id, user_id, ticker, amount, shares, price, kind)
      select v_order.id, v_execution, v_event_id, u.user_id, v_order.ticker, u.amount, u.shares, v_price, 'buy'
      from users as u
      union all
      select v_order.id, v_execution, v_event_id, null, v_order.ticker,
             v_amount - coalesce((select sum(u.amount) from users as u), 0),
             v_qty - coalesce((select sum(u.shares) from users as u), 0), v_price, 'buy';
      update public.broker_orders as o
      set filled_qty = o.filled_qty + v_qty, filled_amount = o.filled_amount + v_amount
      where o.id = v_order.id;
    end if;
    update public.broker_orders as o
    set status = case
          -- Out of order, a `new` or an earlier partial fill must not move a later status back.
          when v_kind in ('fill', 'canceled', 'rejected') and o.status not in ('filled', 'canceled', 'rejected')
            then coalesce(p_event #>> '{order,status}', o.status)
          when v_kind = 'partial_fill' and o.status = 'new' then 'partially_filled'
          else o.status end,
        broker_order_id = coalesce(o.broker_order_id, p_event #>> '{order,id}'),
        submitted_at = coalesce(o.submitted_at, now()),
        filled_avg_price = case when o.filled_qty > 0 then round(o.filled_amount / o.filled_qty, 6) end,
        filled_at = case when p_event #>> '{order,status}' = 'filled' then coalesce(o.filled_at, now()) else o.filled_at end,
        reject_reason = case when v_kind = 'rejected' then coalesce(p_event ->> 'reason', 'rejected') else o.reject_reason end,
        updated_at = now()
    where o.id = v_order.id
    returning * into v_order;
    if v_kind in ('canceled', 'rejected') then
      perform private.carry_unfilled(v_order.id);
    end if;
  end if;

  insert into private.broker_event_cursor as c (stream, last_event_id)
  values (p_stream, (v_event_id)::bigint)
  on conflict (stream) do update
    set last_event_id = greatest(c.last_event_id, excluded.last_event_id), updated_at = now();
  return case when v_inserted = 1 then 'applied' else 'duplicate' end;
end;
$$;
comment on function private.apply_trade_event(text, jsonb) is
  'Consume one trade event exactly once: event row, order totals, allocations or reversals and the cursor in one transaction.';

-- An order that ends without filling: each user's unfilled notional joins their next sweep.
create or replace function private.carry_unfilled(p_order_id bigint)
returns void
language sql
set search_path = ''
as $$
  insert into private.sweep_carry as c (user_id, ticker, notional, reason)
  select p.user_id, o.ticker, p.notional - coalesce(f.amount, 0), 'order_' || o.status
  from public.broker_orders as o
  join private.sweep_positions as p on p.sweep_id = o.sweep_id and p.ticker = o.ticker
  left join (select a.user_id, sum(a.amount) as amount from public.fill_allocations as a
             where a.broker_order_id = p_order_id and a.user_id is not null group by a.user_id) as f
    on f.user_id = p.user_id
  where o.id = p_order_id and p.notional - coalesce(f.amount, 0) > 0
  on conflict (user_id, ticker) do update
    set notional = c.notional + excluded.notional, reason = excluded.reason, updated_at = now()
$$;

-- Reconciliation: an order we placed that the broker does not know (404 by client_order_id) ended
-- without filling; its users' notional waits for the next sweep.
create or replace function private.cancel_unknown_order(p_order_id bigint)
returns void
language plpgsql
set search_path = ''
as $$
begin
  update public.broker_orders
  set status = 'canceled', reject_reason = 'unknown at the broker', updated_at = now()
  where id = p_order_id and status in ('new', 'partially_filled') and filled_qty = 0;
  if found then
    perform private.carry_unfilled(p_order_id);
  end if;
end;
$$;
revoke execute on function private.cancel_unknown_order(bigint) from public, anon, authenticated;

-- What the dashboard shows --------------------------------------------------------------------------
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
      from public.transactions as t where t.status = 'mapped' and t.round_up > 0),
    'carried', (select jsonb_build_object('positions', count(*), 'notional', coalesce(sum(c.notional), 0))
                from private.sweep_carry as c),
    'fallbacks', (select coalesce(jsonb_agg(jsonb_build_object('ticker', f.ticker, 'reason', f.reason,
                                                               'round_ups', f.round_ups) order by f.ticker), '[]')
                  from private.ticker_fallbacks as f));
end;
$$;
comment on function public.investing_overview() is
  'Admin: broker orders, fills, the house position, what waits for a threshold, carried notional, ticker fallbacks.';
revoke execute on function public.investing_overview() from public, anon;
grant execute on function public.investing_overview() to authenticated, service_role;

-- Sweeps are queued by pg_cron (the minute job that queued the quote engine now queues the sweep):
-- a worker job, as every other scheduled job. Becoming `mapped` no longer buys at once (the
-- threshold decides), so the per-statement trigger that queued the quote engine goes.
drop trigger transactions_enqueue_investing on public.transactions;

create or replace function private.enqueue_due_sweep()
returns void
language sql
set search_path = ''
as $$
  select private.enqueue_job_once('invest.sweep')
  where (exists (select 1 from public.transactions as t where t.status = 'mapped')
         or exists (select 1 from public.broker_orders as o where o.status in ('new', 'partially_filled')))
    and not exists (select 1 from private.job_queue as q where q.kind = 'invest.sweep' and q.state = 'running')
$$;

select cron.schedule('kamioi-invest-mapped', '* * * * *', 'select private.enqueue_due_sweep()');

revoke execute on function private.sweep_round_ups(text, numeric) from public, anon, authenticated;
revoke execute on function private.record_order_submission(bigint, text, text, text) from public, anon, authenticated;
revoke execute on function private.apply_trade_event(text, jsonb) from public, anon, authenticated;
revoke execute on function private.carry_unfilled(bigint) from public, anon, authenticated;
revoke execute on function private.enqueue_due_sweep() from public, anon, authenticated;
revoke execute on function private.add_fills_to_holdings() from public, anon, authenticated;
revoke execute on function private.refuse_changing_fill_allocations() from public, anon, authenticated;
