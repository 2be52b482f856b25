/*
 * The ledger's invariant, enforced by the database at commit: an invested transaction with a
 * round-up has exactly one open lot, a buy of that amount, and it is the transaction's latest lot
 * (allocation_lot); any other transaction (not invested, or invested with nothing to invest) has
 * no open lot. A lot is open while its buy has no reversal.
 *
 * A deferred constraint trigger on transactions checks each updated row whose ledger state can
 * move (it was or becomes invested), at COMMIT, against the row as it is then (read again: a
 * later statement of the same transaction may have moved it further) and the allocations recorded
 * under its key. When the key itself changed (id or txn_date), the old key is checked too: it must
 * have no open lot left. Deferred, so a transaction may pass through a broken state between its
 * statements (a reversal, then the status) as long as it commits a whole one; the engine, the
 * mapping corrections and public.admin_correct_transaction each write a lot and its transaction in
 * one statement anyway. A violation raises 23514 (check_violation) and the transaction rolls back.
 *
 * Covered: every UPDATE of transactions, whoever runs it (the engine included: a bug there is what
 * this catches). Allocations are written only by the engine's statements, each of which also updates
 * the transaction it writes for, so checking the transaction side sees every lot the product writes.
 * Not covered, on purpose: rows INSERTed already invested. The Data API cannot do it (the
 * ledger-owned columns guard refuses it); what remains are privileged bulk loads that fabricate a
 * ledger (bench/ builds 20M rows, then their lots in later transactions) and must not pay a row check
 * each or be refused between the two steps.
 *
 * Cost: one trigger event per row the engine invests (an index probe of allocations_one_per_lot and
 * of the transaction's primary key at commit); BENCHMARKS.md has the invest chunk with and without.
 */

create or replace function private.ledger_key_problem(p_id bigint, p_txn_date date)
returns text
language sql
stable
set search_path = ''
as $$
  with t as (
    select tr.status, tr.round_up, tr.allocation_lot
    from public.transactions as tr
    where tr.id = p_id and tr.txn_date = p_txn_date
  ), lots as (
    select count(*) filter (where a.kind = 'buy') - count(*) filter (where a.kind = 'reversal') as open_lots,
           coalesce(sum(a.amount), 0) as open_amount,
           max(a.lot) filter (where a.kind = 'buy') as last_buy
    from public.allocations as a
    where a.transaction_id = p_id and a.txn_date = p_txn_date
  )
  select case
    when t.status = 'invested' and t.round_up > 0
         and not (l.open_lots = 1 and l.open_amount = t.round_up and l.last_buy = t.allocation_lot)
      then format('invested with a round-up of %s but %s open lot(s) worth %s (latest lot %s, latest buy %s)',
                  t.round_up, l.open_lots, l.open_amount, t.allocation_lot, l.last_buy)
    when (t.status is null or t.status <> 'invested' or t.round_up = 0) and l.open_lots <> 0
      then format('%s with %s open lot(s) worth %s', coalesce(t.status || ' (round-up ' || t.round_up || ')',
                  'no transaction under this key'), l.open_lots, l.open_amount)
  end
  from lots as l
  left join t on true
$$;
comment on function private.ledger_key_problem(bigint, date) is
  'What breaks the ledger invariant for one transaction key (null: nothing).';

create or replace function private.check_ledger_invariant()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  problem text := private.ledger_key_problem(new.id, new.txn_date);
begin
  if problem is null and (new.id, new.txn_date) is distinct from (old.id, old.txn_date) then
    problem := private.ledger_key_problem(old.id, old.txn_date);
    if problem is not null then
      problem := format('its former key (%s, %s): %s', old.id, old.txn_date, problem);
    end if;
  end if;
  if problem is not null then
    raise exception 'ledger invariant broken by transaction % (%): %', new.id, new.txn_date, problem
      using errcode = '23514',
            hint = 'An invested round-up has exactly one open buy lot of its amount; corrections write a '
                   'reversal (public.admin_correct_transaction, mapping corrections) in the same transaction.';
  end if;
  return null;
end;
$$;

create constraint trigger transactions_ledger_invariant
  after update on public.transactions
  deferrable initially deferred
  for each row
  when (old.status = 'invested' or new.status = 'invested')
  execute function private.check_ledger_invariant();

revoke execute on function private.ledger_key_problem(bigint, date), private.check_ledger_invariant()
  from public, anon, authenticated;
