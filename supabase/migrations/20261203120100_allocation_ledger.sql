/*
 * Allocations become an immutable ledger of lots.
 *
 * A transaction's round-up is invested as a lot: a `buy` allocation (amount, shares at a recorded
 * price, the mapping in force that chose the ticker). A correction never edits it: it writes a
 * `reversal` of the same lot (negated amount and shares, at the buy's own price: the user is made
 * whole at cost, the platform bears any market difference of its mapping error), and the
 * transaction is invested again as the next lot. Exactly-once is a constraint, not luck: one buy
 * and at most one reversal per (transaction, lot), so a job that crashed and re-ran, or two
 * engines racing, can never invest a transaction twice.
 *
 * transactions.allocation_lot: the lot of the transaction's latest buy (0: never invested). The
 * engine increments it in the same statement that inserts the buy, which is how the lot number
 * is assigned without looking up earlier allocations.
 *
 * Indexes:
 * - unique (transaction_id, txn_date, lot, kind): the exactly-once constraint; it also serves the
 *   foreign key and "allocations of this transaction", so the old (transaction_id, txn_date)
 *   index goes.
 * - partial (mapping_id) on buys: corrections find the lots a mapping chose.
 * - partial transactions (id) where status = 'mapped': the engine's keyset over what waits to be
 *   invested. It holds only the backlog, so it stays small however large the table grows.
 *
 * Writes: nobody inserts, updates or deletes allocations through the Data API (admins included):
 * only the engine (worker, postgres) inserts, so every row has its price, lot and holdings.
 * UPDATE is refused for everyone by a trigger.
 *
 * No foreign key to transactions: the engine writes a lot in the very statement that locks and
 * updates its transaction (the buy comes from the UPDATE's RETURNING, a reversal from an existing
 * lot), so the reference holds by construction, and the per-row check through the partitioned
 * parent was the largest cost of investing (2.5 s of a 7 s chunk of 20,000 rows, BENCHMARKS.md).
 * What the key also gave, keeping investment records, is a cheap row trigger on the rare path
 * instead: a transaction that was ever invested (allocation_lot > 0) cannot be deleted (23503, as
 * the key answered), so partition maintenance still leaves such rows in the default partition,
 * and a user who ever invested cannot be deleted by a cascade (closing such an account is a
 * process, not a DELETE).
 */

alter table public.transactions add column allocation_lot smallint not null default 0;
comment on column public.transactions.allocation_lot is
  'Lot of the latest buy allocation of this transaction''s round-up (0: never invested).';

create index transactions_mapped_id_idx on public.transactions (id) where status = 'mapped';

alter table public.allocations
  drop constraint allocations_amount_check,
  drop constraint allocations_shares_check,
  add column kind text not null default 'buy' check (kind in ('buy', 'reversal')),
  add column lot smallint not null default 1 check (lot >= 1),
  add column price_id bigint not null references public.prices (id),
  add column price numeric(18, 6) not null check (price > 0),
  add column mapping_id bigint,
  add column mapping_created_at timestamptz,
  add constraint allocations_sign_follows_kind check (
    (kind = 'buy' and amount > 0 and shares >= 0) or (kind = 'reversal' and amount < 0 and shares <= 0)
  ),
  add constraint allocations_one_per_lot unique (transaction_id, txn_date, lot, kind);

alter table public.allocations drop constraint allocations_transaction_fk;

create or replace function private.refuse_deleting_invested_transactions()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'transaction % has allocations: investment records are kept', old.id
    using errcode = '23503';
end;
$$;

create trigger transactions_keep_invested
  before delete on public.transactions
  for each row when (old.allocation_lot > 0)
  execute function private.refuse_deleting_invested_transactions();

comment on column public.allocations.kind is
  'buy: the lot''s investment; reversal: its correction (negated amount and shares, same price).';
comment on column public.allocations.mapping_id is
  'The mapping in force that chose the ticker (with mapping_created_at); corrections follow it.';

drop index public.allocations_transaction_idx;
create index allocations_mapping_buys_idx on public.allocations (mapping_id) where kind = 'buy';

create or replace function private.refuse_allocation_update()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'allocations are immutable: a correction writes a reversal'
    using errcode = '55000';
end;
$$;

create trigger allocations_immutable
  before update on public.allocations
  for each statement execute function private.refuse_allocation_update();

drop policy "allocations: admins insert" on public.allocations;
drop policy "allocations: admins update" on public.allocations;
drop policy "allocations: admins delete" on public.allocations;
revoke insert, update, delete on public.allocations from authenticated;
