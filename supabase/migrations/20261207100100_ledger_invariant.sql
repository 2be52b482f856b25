/*
 * The ledger's invariant, enforced by the database at commit: an invested transaction with a
 * round-up has exactly one open lot, a buy of that amount, and it is the transaction's latest lot
 * (allocation_lot); any other transaction (not invested, or invested with nothing to invest) has
 * no open lot. A lot is open while its buy has no reversal.
 *
 * Checked for every UPDATE of transactions, whoever runs it (the engine included: a bug there is
 * what this catches), at COMMIT, so a transaction may pass through a broken state between its
 * statements (a reversal, then the status) as long as it commits a whole one; the engine, the
 * mapping corrections and public.admin_correct_transaction each write a lot and its transaction in
 * one statement anyway. A violation raises 23514 (check_violation) and the transaction rolls back.
 *
 * How, and why not a row-level constraint trigger on transactions (two lookups per row at commit:
 * 1.27x on an engine chunk of 20,000 rows, BENCHMARKS.md): a statement trigger collects the keys
 * (id, txn_date) the statement touched where the row was or became invested, old and new keys
 * alike (a date correction leaves no open lot behind), into one row of private.ledger_checks; a
 * deferred constraint trigger on that table checks all of them set-based at commit and deletes the
 * row. One event per statement, not per row, and the transition tables also carry the rows an
 * UPDATE moved to another partition (row-level AFTER UPDATE triggers do not fire for those). The
 * check reads each key's row as it is at commit (a later statement may have moved it further).
 *
 * Covered: every lot the product writes. Allocations are written only by the engine's statements,
 * each of which also updates the transaction it writes for. Not covered, on purpose: rows INSERTed
 * already invested. The Data API cannot do it (the ledger-owned columns guard refuses it); what
 * remains are privileged bulk loads that fabricate a ledger (bench/ builds 20M rows, then their lots
 * in later transactions) and must neither pay a check nor be refused between their two steps.
 */

create table private.ledger_checks (
  id bigint generated always as identity primary key,
  ids bigint[] not null,
  txn_dates date[] not null
);
comment on table private.ledger_checks is
  'Transaction keys a statement touched, checked against the ledger invariant at commit (then deleted).';
alter table private.ledger_checks enable row level security;

-- What breaks the invariant among some keys: one line per broken key (none: the ledger is whole).
create or replace function private.ledger_problems(p_ids bigint[], p_txn_dates date[])
returns setof text
language sql
stable
set search_path = ''
as $$
  with keys as (
    select distinct k.id, k.txn_date from unnest(p_ids, p_txn_dates) as k (id, txn_date)
  ), rows_now as (
    select k.id, k.txn_date, t.status, t.round_up, t.allocation_lot
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
           when r.status = 'invested' and r.round_up > 0
             then format('invested with a round-up of %s but %s open lot(s) worth %s (latest lot %s, latest buy %s)',
                         r.round_up, coalesce(l.open_lots, 0), coalesce(l.open_amount, 0), r.allocation_lot, l.last_buy)
           else format('%s with a round-up of %s but %s open lot(s) worth %s', r.status, r.round_up, l.open_lots,
                       l.open_amount)
         end)
  from rows_now as r
  left join lots as l on l.id = r.id and l.txn_date = r.txn_date
  where case
    when r.status = 'invested' and r.round_up > 0
      then not coalesce(l.open_lots = 1 and l.open_amount = r.round_up and l.last_buy = r.allocation_lot, false)
    else coalesce(l.open_lots, 0) <> 0
  end
$$;
comment on function private.ledger_problems(bigint[], date[]) is
  'The ledger invariant over some transaction keys: one line per key that breaks it.';

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
    select o.id, o.txn_date from old_rows as o where o.status = 'invested'
    union
    select n.id, n.txn_date from new_rows as n
    where n.status = 'invested' or n.id in (select o.id from old_rows as o where o.status = 'invested')
  ) as k
  having count(*) > 0;
  return null;
end;
$$;

create or replace function private.check_ledger_keys()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  problems text[];
begin
  select array_agg(p) into problems from (select p from private.ledger_problems(new.ids, new.txn_dates) as p limit 5) as x;
  if problems is not null then
    raise exception 'ledger invariant broken: %', array_to_string(problems, '; ')
      using errcode = '23514',
            hint = 'An invested round-up has exactly one open buy lot of its amount; corrections write a '
                   'reversal (public.admin_correct_transaction, mapping corrections) in the same transaction.';
  end if;
  delete from private.ledger_checks as c where c.id = new.id;
  return null;
end;
$$;

create trigger transactions_ledger_keys
  after update on public.transactions
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.collect_ledger_keys();

create constraint trigger ledger_checks_at_commit
  after insert on private.ledger_checks
  deferrable initially deferred
  for each row execute function private.check_ledger_keys();

revoke all on table private.ledger_checks from public, anon, authenticated, service_role;
revoke execute on function private.ledger_problems(bigint[], date[]), private.collect_ledger_keys(),
  private.check_ledger_keys()
  from public, anon, authenticated;
