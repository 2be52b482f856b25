/*
 * A sweep records which round-ups it took apart from the transactions, and the transactions learn
 * what became of them afterwards, off the money path.
 *
 * Why: the sweep used to turn each swept transaction `invested` in its own statement, a rewrite of a
 * wide row under eight indexes and the statement triggers of a partitioned table: 88% of a 1M
 * round-up sweep (BENCHMARKS.md), 0.07x of a bare insert of one row per round-up. Now:
 * - private.sweep_round_ups reads the ready rows once, groups them per user, ticker and outcome
 *   (bought; `unlink`: the merchant's mapping lost its approval; `zero`: nothing to invest) into
 *   private.sweep_members, their transaction keys as arrays, and writes the positions and the orders
 *   in the same transaction: the money path commits O(users x tickers) rows and rewrites no
 *   transaction;
 * - private.settle_swept_round_ups(p_users) then applies the members to the transactions, a few
 *   hundred users per call (one transaction each; the job calls it once the orders are placed and
 *   their fills allocated, and again on its next run if it was killed): bought rows become `invested`
 *   with their sweep_id, `unlink` rows go back to `pending`, `zero` rows become `invested` with
 *   nothing bought. It deletes those members and sends each user whose round-ups were bought one
 *   `round_ups_swept` message, so a user told of a sweep reads their purchases already invested;
 * - until then a member row is `mapped` but not ready: the next sweep skips it, the admin dashboard
 *   counts it as settling, not as waiting for a threshold, and nobody may change it: the Data API
 *   guard refuses it for API roles (42501), and public.admin_correct_transaction refuses it (and a
 *   swept row) with its own error (55000), since the money is at the broker already. Both take the
 *   sweep's advisory lock shared first, so an edit either commits before a sweep reads the row or
 *   waits for the sweep and is then refused: a row is never bought at one round-up and kept at
 *   another.
 */

-- No foreign keys: rows are written only by the sweep that created their sweep, from the users'
-- transactions it just read, and live for seconds; a check per row was a fifth of the sweep.
create table private.sweep_members (
  sweep_id bigint not null,
  user_id uuid not null,
  outcome text not null check (outcome in ('bought', 'unlink', 'zero')),
  ticker text,  -- what `bought` rows bought (null for the others)
  mapped_ticker text,  -- the mapping's ticker, when the broker could not buy it and the fund was bought
  ids bigint[] not null,
  txn_dates date[] not null,
  notional numeric(14, 2) not null,
  constraint sweep_members_once unique nulls not distinct (sweep_id, user_id, outcome, ticker, mapped_ticker),
  check (cardinality(ids) = cardinality(txn_dates)),
  check ((outcome = 'bought') = (ticker is not null))
);
comment on table private.sweep_members is
  'Round-ups a sweep took whose transactions do not show it yet (private.settle_swept_round_ups).';
create index sweep_members_user_idx on private.sweep_members (user_id);
alter table private.sweep_members enable row level security;
revoke all on table private.sweep_members from public, anon, authenticated, service_role;

-- The sweep that holds a transaction while its outcome is not settled (null: none).
create or replace function private.sweeping(p_user_id uuid, p_id bigint)
returns bigint
language sql
stable
security definer
set search_path = ''
as $$
  select m.sweep_id from private.sweep_members as m where m.user_id = p_user_id and p_id = any(m.ids) limit 1
$$;
comment on function private.sweeping(uuid, bigint) is
  'The sweep that took this transaction, while the transaction does not show it yet.';
revoke execute on function private.sweeping(uuid, bigint) from public, anon;
grant execute on function private.sweeping(uuid, bigint) to authenticated;

-- The sweep ------------------------------------------------------------------------------------------
create or replace function private.sweep_round_ups(p_fallback_ticker text, p_min_notional numeric)
returns bigint
language plpgsql
-- Grouping a million round-ups with their keys in memory, not in batches spilled to disk.
set work_mem = '256MB'
set search_path = ''
as $$
declare
  v_sweep bigint;
  v_fallback text := nullif(p_fallback_ticker, '');
begin
  -- One sweep at a time: the carried positions are read and emptied by the sweep that holds this.
  -- Edits of mapped rows through the API take it shared (the guard), so none lands mid-sweep.
  perform pg_advisory_xact_lock(hashtext('kamioi.sweep'));
  insert into private.sweeps (fallback_ticker, min_notional) values (v_fallback, p_min_notional)
  returning id into v_sweep;

  -- The temp tables below, declared for plpgsql_check (a string constant: nothing at run time).
  perform 'PRAGMA:TABLE: sweep_settling (id bigint)';
  perform 'PRAGMA:TABLE: sweep_locked (id bigint, txn_date date, user_id uuid, round_up numeric(12, 2), merchant_key text)';
  perform 'PRAGMA:TABLE: sweep_merchants (merchant_key text, mapped text, ticker text, fallback_reason text)';
  perform 'PRAGMA:TABLE: sweep_groups (user_id uuid, outcome text, ticker text, fallback_reason text, mapped text, round_up numeric, round_ups integer, ids bigint[], txn_dates date[])';
  perform 'PRAGMA:TABLE: sweep_users (user_id uuid, multiplier smallint)';
  perform 'PRAGMA:TABLE: sweep_pos (ticker text, user_id uuid, notional numeric, round_ups integer)';
  perform 'PRAGMA:TABLE: sweep_tickers (ticker text, notional numeric, ordered boolean)';

  -- Rows an earlier sweep took and has not settled yet (normally none: the job settles before it
  -- ends) are not ready again.
  create temp table sweep_settling on commit drop as
    select unnest(m.ids) as id from private.sweep_members as m;

  -- The ready rows. Nothing else writes a mapped row while this runs: API edits wait for the lock
  -- above, and the engine's writers take pending rows (linking) or rows with lots (corrections).
  create temp table sweep_locked on commit drop as
    select t.id, t.txn_date, t.user_id, t.round_up, t.merchant_key
    from public.transactions as t
    where t.status = 'mapped'
      and not exists (select 1 from sweep_settling as s where s.id = t.id);
  analyze sweep_locked;

  -- Each merchant's ticker once: the mapping's if the broker can buy it fractionally, else the fund.
  create temp table sweep_merchants on commit drop as
    select a.merchant_key,
           a.ticker as mapped,
           case when a.ticker is not null and b.tradable and b.fractionable then a.ticker else v_fallback end as ticker,
           case when a.ticker is null then null
                when b.symbol is null then 'not_at_broker'
                when not b.tradable then 'not_tradable'
                when not b.fractionable then 'not_fractionable'
           end as fallback_reason
    from private.approved_mappings_in_force as a
    left join private.broker_assets as b on b.symbol = a.ticker
    where a.merchant_key in (select distinct r.merchant_key from sweep_locked as r);
  analyze sweep_merchants;

  -- The one pass over the ready rows: per user, ticker and outcome. `none` (no fund to fall back
  -- on) stays mapped and keeps no keys.
  create temp table sweep_groups on commit drop as
    select r.user_id, g.outcome,
           case when g.outcome = 'bought' then f.ticker end as ticker,
           case when g.outcome in ('bought', 'none') then f.fallback_reason end as fallback_reason,
           case when g.outcome in ('bought', 'none') and f.fallback_reason is not null then f.mapped end as mapped,
           sum(r.round_up) as round_up, count(*)::integer as round_ups,
           array_agg(r.id) filter (where g.outcome <> 'none') as ids,
           array_agg(r.txn_date) filter (where g.outcome <> 'none') as txn_dates
    from sweep_locked as r
    left join sweep_merchants as f on f.merchant_key = r.merchant_key
    cross join lateral (select case when f.merchant_key is null then 'unlink'
                                    when r.round_up = 0 then 'zero'
                                    when f.ticker is null then 'none'
                                    else 'bought' end as outcome) as g
    group by 1, 2, 3, 4, 5;
  analyze sweep_groups;

  insert into private.ticker_fallbacks as tf (ticker, reason, round_ups, last_sweep_id)
  select g.mapped, min(g.fallback_reason), sum(g.round_ups), v_sweep
  from sweep_groups as g
  where g.fallback_reason is not null
  group by g.mapped
  on conflict (ticker) do update
    set reason = excluded.reason, round_ups = tf.round_ups + excluded.round_ups,
        last_sweep_id = excluded.last_sweep_id, updated_at = now();

  -- Users at their threshold and not paused: all their ready round-ups go, x their multiplier.
  create temp table sweep_users on commit drop as
    select rules.user_id, rules.multiplier
    from private.investing_rules_of(array(select distinct g.user_id from sweep_groups as g where g.outcome = 'bought'))
      as rules
    join (select g.user_id, sum(g.round_up) as ready from sweep_groups as g where g.outcome = 'bought'
          group by g.user_id) as totals on totals.user_id = rules.user_id
    where not rules.paused and totals.ready * rules.multiplier >= rules.threshold_dollars;
  analyze sweep_users;

  -- What this sweep takes: the swept users' round-ups (what the orders buy), and everyone's rows with
  -- nothing to buy. The transactions follow in settle_swept_round_ups.
  insert into private.sweep_members (sweep_id, user_id, outcome, ticker, mapped_ticker, ids, txn_dates, notional)
  select v_sweep, g.user_id, g.outcome, g.ticker, g.mapped, g.ids, g.txn_dates,
         case when g.outcome = 'bought' then g.round_up * u.multiplier else 0 end
  from sweep_groups as g
  left join sweep_users as u on u.user_id = g.user_id
  where g.outcome in ('unlink', 'zero') or (g.outcome = 'bought' and u.user_id is not null);

  -- This sweep's positions: swept round-ups x multiplier, plus everything carried.
  create temp table sweep_pos on commit drop as
    select x.ticker, x.user_id, sum(x.notional) as notional, sum(x.round_ups)::integer as round_ups
    from (
      select m.user_id, m.ticker, m.notional, cardinality(m.ids) as round_ups
      from private.sweep_members as m where m.sweep_id = v_sweep and m.outcome = 'bought'
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

  update private.sweeps as w
  set users = x.users, round_ups = x.round_ups, notional = x.notional,
      orders = (select count(*) from public.broker_orders as o where o.sweep_id = v_sweep),
      carried = (select coalesce(sum(c.notional), 0) from private.sweep_carry as c)
  from (select count(distinct m.user_id) as users, coalesce(sum(cardinality(m.ids)), 0) as round_ups,
               coalesce(sum(m.notional), 0) as notional
        from private.sweep_members as m where m.sweep_id = v_sweep and m.outcome = 'bought') as x
  where w.id = v_sweep;
  -- Gone now, not at commit: a second sweep in the same transaction creates them again.
  drop table sweep_settling, sweep_locked, sweep_merchants, sweep_groups, sweep_users, sweep_pos, sweep_tickers;
  return v_sweep;
end;
$$;
comment on function private.sweep_round_ups(text, numeric) is
  'One sweep: ready round-ups x multiplier of users at their threshold into one order per ticker and '
  'private.sweep_members; returns the sweep id.';

-- Settling: the transactions learn what the sweep did with them --------------------------------------
create or replace function private.settle_swept_round_ups(p_users integer)
returns integer
language plpgsql
-- A batch is a few thousand rows of a table of millions: looked up by key in their own partition,
-- never by a hash join over every partition.
set enable_hashjoin = off
set enable_mergejoin = off
set search_path = ''
as $$
declare
  v_sweeps bigint[];
  v_users uuid[];
begin
  select array_agg(b.sweep_id), array_agg(b.user_id) into v_sweeps, v_users
  from (select distinct m.sweep_id, m.user_id from private.sweep_members as m
        order by m.sweep_id, m.user_id limit p_users) as b;
  if v_users is null then
    return 0;
  end if;
  perform 1 from private.sweep_members as m
  where (m.sweep_id, m.user_id) in (select * from unnest(v_sweeps, v_users))
  for update;
  -- One message per user per sweep, below, instead of the per-statement one.
  perform set_config('kamioi.quiet_user_broadcasts', 'on', true);
  -- A bought row's round-up is at the broker, whatever happened to the row since (nothing may: see
  -- the header); the others move only if they are still as the sweep read them.
  update public.transactions as t
  set status = case when k.outcome = 'unlink' then 'pending' else 'invested' end,
      mapping_id = case when k.outcome = 'unlink' then null else t.mapping_id end,
      sweep_id = case when k.outcome = 'bought' then k.sweep_id end
  from (select m.sweep_id, m.outcome, r.id, r.txn_date
        from private.sweep_members as m
        cross join lateral unnest(m.ids, m.txn_dates) as r (id, txn_date)
        where (m.sweep_id, m.user_id) in (select * from unnest(v_sweeps, v_users))) as k
  where t.id = k.id and t.txn_date = k.txn_date
    and (k.outcome = 'bought' and t.sweep_id is distinct from k.sweep_id or k.outcome <> 'bought' and t.status = 'mapped');
  perform realtime.send(
    jsonb_build_object('sweep_id', u.sweep_id, 'round_ups', u.round_ups, 'notional', u.notional, 'tickers', u.tickers),
    'round_ups_swept', 'user:' || u.user_id::text || ':transactions', true)
  from (select m.sweep_id, m.user_id, sum(cardinality(m.ids)) as round_ups, sum(m.notional) as notional,
               count(distinct m.ticker) as tickers
        from private.sweep_members as m
        where (m.sweep_id, m.user_id) in (select * from unnest(v_sweeps, v_users)) and m.outcome = 'bought'
        group by m.sweep_id, m.user_id) as u;
  delete from private.sweep_members as m
  where (m.sweep_id, m.user_id) in (select * from unnest(v_sweeps, v_users));
  perform set_config('kamioi.quiet_user_broadcasts', 'off', true);
  return cardinality(v_users);
end;
$$;
comment on function private.settle_swept_round_ups(integer) is
  'Apply up to p_users users'' sweep members to their transactions (oldest sweep first) and tell each user '
  'whose round-ups were bought once; returns how many users it settled (0: none left).';
revoke execute on function private.sweep_round_ups(text, numeric), private.settle_swept_round_ups(integer)
  from public, anon, authenticated;

-- The Data API guard: a round-up being settled is held like an invested one --------------------------
create or replace function private.guard_ledger_columns_on_update()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  owned text;
  why text;
  held boolean := old.status = 'invested';
begin
  if current_user not in ('anon', 'authenticated') then
    return new;
  end if;
  if old.status = 'mapped' then
    -- A sweep running now commits before this reads its members (private.sweep_round_ups).
    perform pg_advisory_xact_lock_shared(hashtext('kamioi.sweep'));
    held := private.sweeping(old.user_id, old.id) is not null;
  end if;
  if new.allocation_lot is distinct from old.allocation_lot then
    owned := 'allocation_lot';
    why := 'lots are numbered by the engine';
  elsif new.sweep_id is distinct from old.sweep_id then
    owned := 'sweep_id';
    why := 'sweeps are recorded by the sweep job (a swept round-up is at the broker)';
  elsif held and new.status is distinct from old.status then
    owned := 'status';
    why := case when old.status = 'invested' then 'an invested row leaves `invested` only with the reversal of its lot'
                else 'a sweep bought its round-up: it becomes invested, nothing else' end;
  elsif new.status = 'invested' and old.status is distinct from 'invested' then
    owned := 'status';
    why := 'a row becomes invested when the engine buys its lot, never by hand';
  elsif held and new.round_up is distinct from old.round_up then
    owned := 'round_up';
    why := 'its round-up was bought as it is';
  elsif held and new.amount is distinct from old.amount then
    owned := 'amount';
    why := 'its round-up was invested';
  elsif held and new.merchant_key is distinct from old.merchant_key then
    owned := 'merchant_key';
    why := 'its round-up was bought for this merchant';
  elsif held and new.mapping_id is distinct from old.mapping_id then
    owned := 'mapping_id';
    why := 'its round-up was bought under this mapping';
  elsif (old.allocation_lot > 0 or held) and new.txn_date is distinct from old.txn_date then
    owned := 'txn_date';
    why := 'its investment is recorded under this date';
  elsif (old.allocation_lot > 0 or held) and new.id is distinct from old.id then
    owned := 'id';
    why := 'its investment is recorded under this id';
  else
    return new;
  end if;
  raise exception 'transactions.% of transaction % is owned by the investing engine: % (correct it with '
                  'public.admin_correct_transaction)', owned, old.id, why
    using errcode = '42501', column = owned,
          hint = 'To correct an invested purchase (amount, date, merchant) call public.admin_correct_transaction'
                 '(p_id, p_txn_date, p_amount, p_new_txn_date, p_merchant_key): it reverses the lot and the'
                 ' engine invests the corrected row again.';
end;
$$;

create or replace function private.guard_invested_delete()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user not in ('anon', 'authenticated') then
    return old;
  end if;
  if old.status = 'mapped' then
    perform pg_advisory_xact_lock_shared(hashtext('kamioi.sweep'));
    if private.sweeping(old.user_id, old.id) is null then
      return old;
    end if;
  end if;
  raise exception 'transactions.status of transaction % is %: an invested purchase is kept (correct '
                  'it with public.admin_correct_transaction)', old.id,
                  case old.status when 'invested' then 'invested' else 'being invested by a sweep' end
    using errcode = '42501', column = 'status',
          hint = 'To correct it call public.admin_correct_transaction; investment records are not deleted.';
end;
$$;

drop trigger transactions_ledger_guard_delete on public.transactions;
create trigger transactions_ledger_guard_delete
  before delete on public.transactions
  for each row when (old.status in ('invested', 'mapped'))
  execute function private.guard_invested_delete();

-- Corrections: a swept purchase is refused by name ------------------------------------------------------
create or replace function public.admin_correct_transaction(
  p_id bigint,
  p_txn_date date,
  p_amount numeric default null,
  p_new_txn_date date default null,
  p_merchant_key text default null
)
returns public.transactions
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  current_row public.transactions;
  corrected public.transactions;
  new_amount numeric(12, 2);
  new_date date;
  new_key text;
  swept_by bigint;
begin
  perform private.require_admin();
  -- A sweep running now commits its members before this reads the row (private.sweep_round_ups).
  perform pg_advisory_xact_lock_shared(hashtext('kamioi.sweep'));
  if p_amount is null and p_new_txn_date is null and p_merchant_key is null then
    raise exception 'nothing to correct: give p_amount, p_new_txn_date or p_merchant_key' using errcode = '22023';
  end if;
  if p_amount is not null and (p_amount <> round(p_amount, 2) or abs(p_amount) >= 10000000000) then
    raise exception 'amount % is not a cent amount of at most 10 digits before the point', p_amount
      using errcode = '22023';
  end if;
  if p_new_txn_date is not null and not isfinite(p_new_txn_date) then
    raise exception 'txn_date must be a calendar date, got %', p_new_txn_date using errcode = '22023';
  end if;
  if p_merchant_key is not null and (btrim(p_merchant_key) = '' or length(p_merchant_key) > 200) then
    raise exception 'merchant_key must be 1 to 200 characters' using errcode = '22023';
  end if;

  select t.* into current_row
  from public.transactions as t
  where t.id = p_id and t.txn_date = p_txn_date
  for update;
  if not found then
    raise exception 'transaction % on % not found', p_id, p_txn_date using errcode = 'P0002';
  end if;
  swept_by := coalesce(current_row.sweep_id, private.sweeping(current_row.user_id, current_row.id));
  if swept_by is not null then
    raise exception 'transaction % on % was invested by sweep %: its round-up is in that sweep''s broker orders, '
                    'so it cannot be corrected here', p_id, p_txn_date, swept_by
      using errcode = '55000',
            hint = 'Undoing a swept round-up needs a sell at the broker, which Kamioi does not place: the purchase '
                   'stays as it was bought.';
  end if;

  new_amount := coalesce(p_amount, current_row.amount);
  new_date := coalesce(p_new_txn_date, current_row.txn_date);
  new_key := coalesce(p_merchant_key, current_row.merchant_key);

  perform set_config('kamioi.moving_transaction', current_row.id::text, true);
  with open_lot as (
    select b.*
    from public.allocations as b
    where current_row.status = 'invested'
      and b.transaction_id = current_row.id and b.txn_date = current_row.txn_date
      and b.lot = current_row.allocation_lot and b.kind = 'buy'
      and not exists (
        select 1 from public.allocations as r
        where r.transaction_id = b.transaction_id and r.txn_date = b.txn_date and r.lot = b.lot
          and r.kind = 'reversal')
  ), reversed as (
    insert into public.allocations (
      transaction_id, txn_date, user_id, ticker, amount, shares, kind, lot, price_id, price,
      mapping_id, mapping_created_at)
    select l.transaction_id, l.txn_date, l.user_id, l.ticker, -l.amount, -l.shares, 'reversal', l.lot,
           l.price_id, l.price, l.mapping_id, l.mapping_created_at
    from open_lot as l
    returning 1
  )
  update public.transactions as t
  set amount = new_amount,
      round_up = case when new_amount > 0 then ceil(new_amount) - new_amount else 0 end,
      txn_date = new_date,
      merchant_key = new_key,
      status = case when f.mapping_id is null then 'pending' else 'mapped' end,
      mapping_id = f.mapping_id
  from (select 1) as one
  left join private.approved_mappings_in_force as f on f.merchant_key = new_key
  where t.id = current_row.id and t.txn_date = current_row.txn_date
  returning t.* into corrected;
  perform set_config('kamioi.moving_transaction', '', true);

  return corrected;
end;
$$;

-- The dashboard: a round-up bought but not settled is not waiting -----------------------------------------
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
                  from private.ticker_fallbacks as f));
end;
$$;
comment on function public.investing_overview() is
  'Admin: broker orders, fills, the house position, what waits for a threshold, what is being settled, carried '
  'notional, ticker fallbacks.';

-- Foreign keys the books do without ------------------------------------------------------------------
-- A user's share of a fill is a record of what the house bought for them: deleting the user must not
-- delete it (users + house = the fill would break for that order), and each key check cost a lookup
-- per row on the sweep's and every fill's insert (a third of a fill's time). The rows are written
-- only by private.sweep_round_ups and private.apply_trade_event, from the sweep they just created and
-- the users whose transactions they just read.
alter table private.sweep_positions
  drop constraint sweep_positions_sweep_id_fkey,
  drop constraint sweep_positions_user_id_fkey;
alter table public.fill_allocations drop constraint fill_allocations_user_id_fkey;
