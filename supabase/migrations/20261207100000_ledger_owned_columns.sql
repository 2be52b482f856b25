/*
 * Ledger-owned columns of transactions cannot be written through the Data API, admins included.
 *
 * RLS lets an admin insert, update and delete any transaction (the policies decide rows, not
 * columns), and the allocation engine trusts what it reads: an admin who set an invested row back to
 * `mapped` had it bought a second time while its first lot stayed open; one who set allocation_lot
 * to 0 could delete it and orphan its allocation; a changed round_up or txn_date left the lot
 * disagreeing with its purchase; a row set or inserted `invested` was never invested at all.
 *
 * The investing engine owns, and API roles (current_user anon / authenticated, whatever the
 * profile's role) are refused with 42501 and a message naming the column and what to use instead:
 * - allocation_lot, always (the engine numbers lots);
 * - status `invested`: no row is inserted as or set to `invested`, and an invested row's status
 *   does not change (only the engine, a mapping correction or public.admin_correct_transaction
 *   moves it, each writing the reversal of its lot in the same statement);
 * - of an invested row: round_up, amount, merchant_key and mapping_id (what its lot was bought
 *   from); correcting such a purchase is public.admin_correct_transaction (reversal, then the
 *   engine invests the corrected row again);
 * - of a row with lots (allocation_lot > 0, even all reversed): id and txn_date, the key its
 *   allocations are recorded under;
 * - deleting an invested row (a row with lots was already refused for everyone, 23503);
 * - user_id was already refused for everyone (transactions_keep_owner, 23514).
 * Everything else stays an admin's to edit through the Data API: a pending or mapped purchase's
 * amount, date or merchant, a descriptor, statuses among pending / mapped / failed.
 *
 * Who passes: current_user other than anon / authenticated, i.e. the worker and the admin API
 * (postgres), service_role, and security definer functions (the engine's, the linking triggers',
 * public.admin_correct_transaction), which run as their owner. So the trigger functions are
 * SECURITY INVOKER on purpose: they must see the writer.
 *
 * Cost: one row trigger per written row, returning at its first comparison for trusted writers.
 */

-- Each function raises its error itself: a shared raising function would need EXECUTE granted to
-- the API roles, since these run as the writer.
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

create or replace function private.guard_invested_delete()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user in ('anon', 'authenticated') then
    raise exception 'transactions.status of transaction % is invested: an invested purchase is kept (correct '
                    'it with public.admin_correct_transaction)', old.id
      using errcode = '42501', column = 'status',
            hint = 'To correct it call public.admin_correct_transaction; investment records are not deleted.';
  end if;
  return old;
end;
$$;

-- Named after transactions_keep_invested / _keep_owner so those fire first (row triggers fire in
-- name order) and keep their error codes for what they already refused.
create trigger transactions_ledger_guard_insert
  before insert on public.transactions
  for each row execute function private.guard_ledger_columns_on_insert();
create trigger transactions_ledger_guard_update
  before update on public.transactions
  for each row execute function private.guard_ledger_columns_on_update();
create trigger transactions_ledger_guard_delete
  before delete on public.transactions
  for each row when (old.status = 'invested')
  execute function private.guard_invested_delete();

revoke execute on function private.guard_ledger_columns_on_insert(), private.guard_ledger_columns_on_update(),
  private.guard_invested_delete()
  from public, anon, authenticated;
