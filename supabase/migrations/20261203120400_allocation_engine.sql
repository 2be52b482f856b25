/*
 * The allocation engine: set-based SQL the `allocations.invest` and `allocations.correct` jobs
 * (jobs/invest.py, jobs/correct_allocations.py) call chunk by chunk, and the triggers that queue them.
 *
 * private.invest_chunk(after_id, limit, fallback_ticker, max_price_age): one statement takes the
 * next `limit` mapped transactions after `after_id` (keyset on transactions_mapped_id_idx, rows
 * locked, rows another transaction holds skipped), and for each:
 * - its merchant has no approved mapping in force (rejected since it was mapped): back to
 *   `pending`, mapping cleared; an approval links it again.
 * - its round-up is 0 (whole-dollar purchases, refunds): `invested`, nothing to allocate.
 * - its ticker (the mapping's, else the fallback fund; see below) has a quote no older than
 *   max_price_age: a buy allocation of its round-up, shares = round(amount / price, 8), and
 *   `invested`, both in this statement (so in the same database transaction), the lot taken from
 *   transactions.allocation_lot.
 * - otherwise it stays `mapped`: the chunk returns the tickers it could not price, the job asks
 *   the price provider for them and runs the same range again; what still has no price waits with
 *   its reason in private.price_holds.
 * Exactly once: the row lock and the `status = 'mapped'` condition keep two engines apart; the
 * unique (transaction, lot, kind) constraint would refuse a second buy even if they did not.
 *
 * Merchants without a public ticker (private companies: 221 of the 575 catalog merchants) are
 * invested in a broad-market fund, INVEST_FALLBACK_TICKER (VTI by default), recorded as such on
 * the allocation (its ticker, and the mapping whose ticker is null). Kamioi's promise is that
 * round-ups get invested; leaving a third of them idle until a private company lists is worse for
 * users than owning the market. An empty setting keeps them `mapped` (reason no_ticker) instead.
 *
 * private.correct_allocations_chunk(mapping, fallback, limit): up to `limit` open lots chosen by a
 * mapping that no longer stands (not the approved mapping in force of its merchant, or its ticker
 * changed) get a reversal; their transactions go back to `mapped` under the mapping now in force
 * (then the invest job buys the next lot) or to `pending` when there is none.
 *
 * Queueing (deduplicated against queued jobs of the same payload):
 * - transactions becoming `mapped` (linking after mapping, an approval, a correction) queue
 *   allocations.invest; pg_cron does too, every minute, while mapped transactions exist, which
 *   retries held tickers and rows a chunk skipped as locked.
 * - a merchant's mapping in force changing away from a mapping that has lots, and a mapping
 *   with lots losing its approval or changing its ticker, queue allocations.correct for it.
 */

create or replace function private.enqueue_job_once(p_kind text, p_payload jsonb default '{}'::jsonb)
returns void
language sql
set search_path = ''
as $$
  insert into private.job_queue (kind, payload)
  select p_kind, p_payload
  where not exists (
    select 1 from private.job_queue as q
    where q.state = 'queued' and q.kind = p_kind and q.payload = p_payload
  )
$$;
comment on function private.enqueue_job_once(text, jsonb) is
  'Queue a job unless the same kind and payload is already queued (a running one may miss new rows).';

-- Each merchant's mapping in force, where that mapping is approved: what every rule below asks.
create view private.approved_mappings_in_force as
  select mr.merchant_key, m.id as mapping_id, m.created_at as mapping_created_at, m.ticker
  from public.merchants as mr
  join public.llm_mappings as m
    on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at and m.status = 'approved';
comment on view private.approved_mappings_in_force is
  'Merchants whose mapping in force is approved, with that mapping''s key and ticker.';

-- Investing ----------------------------------------------------------------------------------------
create or replace function private.invest_chunk(
  p_after_id bigint,
  p_limit integer,
  p_fallback_ticker text,
  p_max_price_age interval
)
returns table (
  last_id bigint, scanned integer, invested integer, amount numeric, nothing_to_invest integer,
  unlinked integer, held integer, unpriced_tickers text[]
)
language sql
set search_path = ''
as $$
  with chunk as (
    select t.id, t.txn_date, t.user_id, t.round_up, t.merchant_key
    from public.transactions as t
    where t.status = 'mapped' and t.id > p_after_id
    order by t.id
    limit greatest(p_limit, 1)
    for update of t skip locked
  ), in_force as (
    -- Once per merchant of the chunk (hundreds), not once per transaction (thousands).
    select a.merchant_key, a.mapping_id, a.mapping_created_at,
           coalesce(a.ticker, nullif(p_fallback_ticker, '')) as ticker
    from private.approved_mappings_in_force as a
    where a.merchant_key in (select c.merchant_key from chunk as c)
  ), resolved as (
    select c.*, f.mapping_id, f.mapping_created_at, f.ticker
    from chunk as c
    left join in_force as f on f.merchant_key = c.merchant_key
  ), quotes as (
    select distinct on (p.ticker) p.ticker, p.id, p.price
    from public.prices as p
    where p.ticker in (select f.ticker from in_force as f)
      and p.as_of >= now() - p_max_price_age
    order by p.ticker, p.as_of desc, p.id desc
  ), decided as (
    select r.*, q.id as price_id, q.price,
           case when r.mapping_id is null then 'unlink'
                when r.round_up = 0 then 'nothing_to_invest'
                when q.id is not null then 'invest'
           end as action
    from resolved as r
    left join quotes as q on q.ticker = r.ticker
  ), moved as (
    -- Carries what the buy needs in its RETURNING, so the insert reads it alone (joining it back to
    -- `decided`, whose size the planner cannot know, made a nested loop over both).
    update public.transactions as t
    set status = case d.action when 'unlink' then 'pending' else 'invested' end,
        mapping_id = d.mapping_id,
        allocation_lot = t.allocation_lot + (d.action = 'invest')::integer
    from decided as d
    where d.action is not null and t.id = d.id and t.txn_date = d.txn_date
      -- The chunk's id range: without it the planner, blind to the chunk's size, hashed every
      -- partition of transactions (2.9 s of an 11.7 s chunk at 2M rows, growing with the table).
      and t.id between (select min(c.id) from chunk as c) and (select max(c.id) from chunk as c)
    returning t.id, t.txn_date, t.allocation_lot, d.action, d.user_id, d.ticker, d.round_up, d.price_id,
              d.price, d.mapping_id, d.mapping_created_at
  ), bought as (
    insert into public.allocations (
      transaction_id, txn_date, user_id, ticker, amount, shares, kind, lot, price_id, price,
      mapping_id, mapping_created_at)
    select mv.id, mv.txn_date, mv.user_id, mv.ticker, mv.round_up, round(mv.round_up / mv.price, 8), 'buy',
           mv.allocation_lot, mv.price_id, mv.price, mv.mapping_id, mv.mapping_created_at
    from moved as mv
    where mv.action = 'invest'
    returning amount
  )
  select (select max(c.id) from chunk as c),
         (select count(*)::integer from chunk),
         (select count(*)::integer from bought),
         (select coalesce(sum(b.amount), 0) from bought as b),
         (select count(*)::integer from decided as d where d.action = 'nothing_to_invest'),
         (select count(*)::integer from decided as d where d.action = 'unlink'),
         (select count(*)::integer from decided as d where d.action is null),
         (select coalesce(array_agg(distinct d.ticker order by d.ticker), '{}')
          from decided as d where d.action is null and d.ticker is not null)
$$;
comment on function private.invest_chunk(bigint, integer, text, interval) is
  'Invest the next mapped transactions after an id at fresh prices; returns counts and the tickers left unpriced.';

-- Why mapped round-ups still wait, for the admin dashboard and `kamioi demo`. Reads the mapped
-- backlog only (the partial index), not the table.
create or replace function public.investing_backlog(p_fallback_ticker text default 'VTI')
returns table (reason text, transactions bigint, round_up numeric)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_admin();
  return query
    select coalesce(case
             when a.mapping_id is null then 'no_approved_mapping'
             when coalesce(a.ticker, nullif(p_fallback_ticker, '')) is null then 'no_ticker'
             else h.reason
           end, 'queued') as reason,
           count(*), sum(t.round_up)
    from public.transactions as t
    left join private.approved_mappings_in_force as a on a.merchant_key = t.merchant_key
    left join private.price_holds as h on h.ticker = coalesce(a.ticker, nullif(p_fallback_ticker, ''))
    where t.status = 'mapped'
    group by 1
    order by 3 desc;
end;
$$;
comment on function public.investing_backlog(text) is
  'Admin: mapped round-ups not invested yet, by reason (queued, a price hold, no ticker, no approved mapping).';
revoke execute on function public.investing_backlog(text) from public, anon;
grant execute on function public.investing_backlog(text) to authenticated, service_role;

-- Corrections --------------------------------------------------------------------------------------
create or replace function private.correct_allocations_chunk(
  p_mapping_id bigint,
  p_fallback_ticker text,
  p_limit integer
)
returns integer
language sql
set search_path = ''
as $$
  with standing as (
    -- The ticker a lot of this mapping may keep: only while it is its merchant's approved mapping in force.
    select coalesce(a.ticker, nullif(p_fallback_ticker, '')) as ticker
    from private.approved_mappings_in_force as a
    where a.mapping_id = p_mapping_id
  ), open_lots as (
    select a.*
    from public.allocations as a
    where a.mapping_id = p_mapping_id and a.kind = 'buy'
      and not exists (
        select 1 from public.allocations as r
        where r.transaction_id = a.transaction_id and r.txn_date = a.txn_date and r.lot = a.lot
          and r.kind = 'reversal')
      and a.ticker is distinct from (select s.ticker from standing as s)
    order by a.id
    limit greatest(p_limit, 1)
  ), locked as (
    select t.id, t.txn_date, t.merchant_key
    from public.transactions as t
    join open_lots as l on l.transaction_id = t.id and l.txn_date = t.txn_date
    where t.status = 'invested' and t.allocation_lot = l.lot
      -- bounds the scan of transactions, as in invest_chunk
      and t.id between (select min(o.transaction_id) from open_lots as o)
                   and (select max(o.transaction_id) from open_lots as o)
    for update of t
  ), reversed as (
    insert into public.allocations (
      transaction_id, txn_date, user_id, ticker, amount, shares, kind, lot, price_id, price,
      mapping_id, mapping_created_at)
    select l.transaction_id, l.txn_date, l.user_id, l.ticker, -l.amount, -l.shares, 'reversal', l.lot,
           l.price_id, l.price, l.mapping_id, l.mapping_created_at
    from open_lots as l
    join locked as k on k.id = l.transaction_id and k.txn_date = l.txn_date
    returning 1
  ), moved as (
    update public.transactions as t
    set status = case when now_in_force.mapping_id is null then 'pending' else 'mapped' end,
        mapping_id = now_in_force.mapping_id
    from locked as k
    left join private.approved_mappings_in_force as now_in_force on now_in_force.merchant_key = k.merchant_key
    where t.id = k.id and t.txn_date = k.txn_date
      and t.id between (select min(o.id) from locked as o) and (select max(o.id) from locked as o)
  )
  -- `moved` runs to completion without being read (data-modifying WITH queries always do).
  select count(*)::integer from reversed
$$;
comment on function private.correct_allocations_chunk(bigint, text, integer) is
  'Reverse up to p_limit open lots of a mapping that no longer stands; returns how many were reversed.';

-- Queueing -----------------------------------------------------------------------------------------
create or replace function private.enqueue_investing_for_mapped()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (select 1 from new_rows as n where n.status = 'mapped') then
    perform private.enqueue_job_once('allocations.invest');
  end if;
  return null;
end;
$$;

create trigger transactions_enqueue_investing
  after update on public.transactions
  referencing new table as new_rows
  for each statement execute function private.enqueue_investing_for_mapped();

-- A mapping that chose lots: is there a lot to look at? (One probe of allocations_mapping_buys_idx.)
create or replace function private.enqueue_corrections(p_mapping_ids bigint[])
returns void
language sql
set search_path = ''
as $$
  select private.enqueue_job_once('allocations.correct', jsonb_build_object('mapping_id', ids.mapping_id))
  from (select distinct unnest(p_mapping_ids) as mapping_id) as ids
  where exists (select 1 from public.allocations as a where a.mapping_id = ids.mapping_id and a.kind = 'buy')
$$;

create or replace function private.enqueue_corrections_for_merchants()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.enqueue_corrections(array(
    select o.mapping_id
    from old_rows as o
    join new_rows as n on n.id = o.id
    where o.mapping_id is not null and n.mapping_id is distinct from o.mapping_id));
  return null;
end;
$$;

create trigger merchants_enqueue_corrections
  after update on public.merchants
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.enqueue_corrections_for_merchants();

create or replace function private.enqueue_corrections_for_mappings()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.enqueue_corrections(array(
    select o.id
    from old_rows as o
    join new_rows as n on n.id = o.id and n.created_at = o.created_at
    where o.status = 'approved' and (n.status <> 'approved' or n.ticker is distinct from o.ticker)));
  return null;
end;
$$;

create trigger llm_mappings_enqueue_corrections
  after update on public.llm_mappings
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.enqueue_corrections_for_mappings();

create or replace function private.enqueue_due_investing()
returns void
language sql
set search_path = ''
as $$
  select private.enqueue_job_once('allocations.invest')
  where exists (select 1 from public.transactions as t where t.status = 'mapped')
    and not exists (
      select 1 from private.job_queue as q where q.kind = 'allocations.invest' and q.state = 'running')
$$;

select cron.schedule('kamioi-invest-mapped', '* * * * *', 'select private.enqueue_due_investing()');

revoke execute on function private.invest_chunk(bigint, integer, text, interval) from public, anon, authenticated;
revoke execute on function private.correct_allocations_chunk(bigint, text, integer) from public, anon, authenticated;
