/*
 * The ledger for swept round-ups: a sweep invests a transaction through broker orders, not through a
 * buy lot of its own, so the ledger's invariant and its Data API guard learn transactions.sweep_id.
 *
 * The invariant (20261207100100, checked at commit) had one rule for invested rows: exactly one open
 * buy lot of the round-up, the row's latest. A swept row (private.sweep_round_ups sets `invested` and
 * sweep_id in one statement) has no lot: its money is a share of its sweep's position
 * (private.sweep_positions) and reaches the user through public.fill_allocations. Its rule now:
 * - sweep_id set => the row is `invested`, its sweep exists (private.sweeps), and it has no open
 *   per-transaction lot (a swept round-up bought again by the quote engine would be invested twice;
 *   one set back to `mapped` would be swept twice);
 * - every other row keeps the quote engine's rule unchanged.
 * The keys checked are those of rows that were or became invested, as before, plus rows that carry a
 * sweep_id (a privileged writer setting one without investing is caught too).
 *
 * The guard (20261207100000): sweep_id is engine-owned. API roles cannot insert a row with one nor
 * change it (42501, naming the column): a user or admin who cleared it could have a row swept again,
 * and one who set it could hide a row from the sweep. public.admin_correct_transaction does not apply
 * to swept rows (its reset to `mapped` is refused by the invariant at commit: the money is at the
 * broker already).
 *
 * Own-row reads (20261207300000): public.fill_allocations is read by its user only, like allocations
 * and holdings; admins see fills through public.investing_overview() and the admin API.
 */

create or replace function private.guard_ledger_columns_on_insert()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  owned text;
  why text;
begin
  if current_user not in ('anon', 'authenticated') then
    return new;
  end if;
  if new.status = 'invested' then
    owned := 'status';
    why := 'a row is invested by the engine, never inserted as invested (insert it pending or mapped)';
  elsif new.allocation_lot <> 0 then
    owned := 'allocation_lot';
    why := 'lots are numbered by the engine';
  elsif new.sweep_id is not null then
    owned := 'sweep_id';
    why := 'sweeps are recorded by the sweep job';
  else
    return new;
  end if;
  raise exception 'transactions.% is owned by the investing engine: %', owned, why
    using errcode = '42501', column = owned,
          hint = 'Corrections of invested purchases go through public.admin_correct_transaction.';
end;
$$;

create or replace function private.guard_ledger_columns_on_update()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  owned text;
  why text;
begin
  if current_user not in ('anon', 'authenticated') then
    return new;
  end if;
  if new.allocation_lot is distinct from old.allocation_lot then
    owned := 'allocation_lot';
    why := 'lots are numbered by the engine';
  elsif new.sweep_id is distinct from old.sweep_id then
    owned := 'sweep_id';
    why := 'sweeps are recorded by the sweep job (a swept round-up is at the broker)';
  elsif old.status = 'invested' and new.status is distinct from old.status then
    owned := 'status';
    why := 'an invested row leaves `invested` only with the reversal of its lot';
  elsif new.status = 'invested' and old.status is distinct from 'invested' then
    owned := 'status';
    why := 'a row becomes invested when the engine buys its lot, never by hand';
  elsif old.status = 'invested' and new.round_up is distinct from old.round_up then
    owned := 'round_up';
    why := 'its lot was bought for this round-up';
  elsif old.status = 'invested' and new.amount is distinct from old.amount then
    owned := 'amount';
    why := 'its round-up was invested';
  elsif old.status = 'invested' and new.merchant_key is distinct from old.merchant_key then
    owned := 'merchant_key';
    why := 'its lot was bought for this merchant';
  elsif old.status = 'invested' and new.mapping_id is distinct from old.mapping_id then
    owned := 'mapping_id';
    why := 'its lot was bought under this mapping';
  elsif (old.allocation_lot > 0 or old.status = 'invested') and new.txn_date is distinct from old.txn_date then
    owned := 'txn_date';
    why := 'its lots are recorded under this date';
  elsif (old.allocation_lot > 0 or old.status = 'invested') and new.id is distinct from old.id then
    owned := 'id';
    why := 'its lots are recorded under this id';
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

create or replace function private.ledger_problems(p_ids bigint[], p_txn_dates date[])
returns setof text
language sql
stable
set search_path = ''
as $$
  with keys as (
    select distinct k.id, k.txn_date from unnest(p_ids, p_txn_dates) as k (id, txn_date)
  ), rows_now as (
    select k.id, k.txn_date, t.status, t.round_up, t.allocation_lot, t.sweep_id,
           exists (select 1 from private.sweeps as s where s.id = t.sweep_id) as sweep_exists
    from keys as k
    left join public.transactions as t on t.id = k.id and t.txn_date = k.txn_date
  ), lots as (
    select a.transaction_id as id, a.txn_date,
           count(*) filter (where a.kind = 'buy') - count(*) filter (where a.kind = 'reversal') as open_lots,
           sum(a.amount) as open_amount,
           max(a.lot) filter (where a.kind = 'buy') as last_buy
    from keys as k
    join public.allocations as a on a.transaction_id = k.id and a.txn_date = k.txn_date
    group by a.transaction_id, a.txn_date
  )
  select format('transaction %s (%s): %s', r.id, r.txn_date, case
           when r.status is null then format('no transaction under this key, but %s open lot(s) worth %s',
                                             l.open_lots, l.open_amount)
           when r.sweep_id is not null
             then format('%s and swept by sweep %s (%s) with %s open lot(s) worth %s', r.status, r.sweep_id,
                         case when r.sweep_exists then 'recorded' else 'no such sweep' end,
                         coalesce(l.open_lots, 0), coalesce(l.open_amount, 0))
           when r.status = 'invested' and r.round_up > 0
             then format('invested with a round-up of %s but %s open lot(s) worth %s (latest lot %s, latest buy %s)',
                         r.round_up, coalesce(l.open_lots, 0), coalesce(l.open_amount, 0), r.allocation_lot, l.last_buy)
           else format('%s with a round-up of %s but %s open lot(s) worth %s', r.status, r.round_up, l.open_lots,
                       l.open_amount)
         end)
  from rows_now as r
  left join lots as l on l.id = r.id and l.txn_date = r.txn_date
  where case
    when r.status is not null and r.sweep_id is not null
      then not (r.status = 'invested' and r.sweep_exists and coalesce(l.open_lots, 0) = 0)
    when r.status = 'invested' and r.round_up > 0
      then not coalesce(l.open_lots = 1 and l.open_amount = r.round_up and l.last_buy = r.allocation_lot, false)
    else coalesce(l.open_lots, 0) <> 0
  end
$$;
comment on function private.ledger_problems(bigint[], date[]) is
  'The ledger invariant over some transaction keys (swept rows by the sweep''s rule): one line per key that breaks it.';

create or replace function private.collect_ledger_keys()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.ledger_checks (ids, txn_dates)
  select array_agg(k.id), array_agg(k.txn_date)
  from (
    select o.id, o.txn_date from old_rows as o where o.status = 'invested' or o.sweep_id is not null
    union
    select n.id, n.txn_date from new_rows as n
    where n.status = 'invested' or n.sweep_id is not null
       or n.id in (select o.id from old_rows as o where o.status = 'invested' or o.sweep_id is not null)
  ) as k
  having count(*) > 0;
  return null;
end;
$$;

revoke execute on function private.guard_ledger_columns_on_insert(), private.guard_ledger_columns_on_update(),
  private.ledger_problems(bigint[], date[]), private.collect_ledger_keys()
  from public, anon, authenticated;

-- fill_allocations: own rows only -----------------------------------------------------------------
drop policy "fill_allocations: read own, admins read all" on public.fill_allocations;
create policy "fill_allocations: read own" on public.fill_allocations
  for select to authenticated
  using (user_id = (select auth.uid()));
