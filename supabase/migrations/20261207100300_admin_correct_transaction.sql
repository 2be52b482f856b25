/*
 * public.admin_correct_transaction: an admin corrects a purchase's amount, date or merchant, invested
 * or not, the way the ledger allows (the Data API refuses those columns on an invested row).
 *
 * One statement, like a mapping correction (private.correct_allocations_chunk): the row's open lot,
 * if it has one, gets its reversal (negated amount and shares at the buy's own price, recorded under
 * the key the lot was bought under), and the row takes the corrected values, its round-up computed
 * from the amount as the import computes it, and goes back to `mapped` under its merchant's approved
 * mapping in force, or to `pending` when there is none (an approval links it later). allocation_lot
 * is kept, so the engine, queued by the row becoming mapped, buys the next lot under the row's (new)
 * key: the history stays whole and lots stay numbered in order. Holdings, user totals, stats,
 * rollups and the user's broadcasts follow from their triggers; the ledger invariant is checked at
 * commit.
 *
 * Arguments: the row's key (p_id, p_txn_date), then what changes; null keeps a value, and at least
 * one must be given. The row is locked first, so a concurrent engine chunk or mapping correction
 * either finished before (the lot is then reversed already, and no second reversal is written) or
 * skips it. Admins only (private.require_admin); the caller's token never chooses the user.
 *
 * A date in another month moves the row to another partition, which PostgreSQL does as a delete and
 * an insert, and transactions_keep_invested refuses deleting a row with lots. Its function now lets
 * exactly this through: a trusted writer (not an API role) that marked the row, for the length of its
 * one UPDATE, in the transaction-local setting kamioi.moving_transaction. Every other delete of a row
 * with lots is refused as before (23503), and the moved row keeps its id and allocation_lot.
 */

create or replace function private.refuse_deleting_invested_transactions()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user not in ('anon', 'authenticated')
     and current_setting('kamioi.moving_transaction', true) = old.id::text then
    return old;  -- a row moving to another partition (admin_correct_transaction), not a delete
  end if;
  raise exception 'transaction % has allocations: investment records are kept', old.id
    using errcode = '23503';
end;
$$;

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
begin
  perform private.require_admin();
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
comment on function public.admin_correct_transaction(bigint, date, numeric, date, text) is
  'Admin: correct a purchase''s amount, date or merchant; an invested one gets the reversal of its lot '
  'and is invested again by the engine.';

revoke execute on function public.admin_correct_transaction(bigint, date, numeric, date, text) from public, anon;
grant execute on function public.admin_correct_transaction(bigint, date, numeric, date, text)
  to authenticated, service_role;
