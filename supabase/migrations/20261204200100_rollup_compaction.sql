/*
 * Compaction of the chart rollups (analytics rollups migration), every minute by pg_cron.
 *
 * Like private.compact_stats(): each statement deletes the deltas its snapshot sees and adds them to
 * the totals, so deltas of transactions still in flight are folded by a later run and nothing is
 * counted twice; a read (totals + deltas) is exact before, during and after a run. A bucket whose
 * totals come back to zero (everything in it deleted) stays; reads skip it.
 */

create or replace function private.compact_rollups()
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  folded_transactions bigint;
  folded_allocations bigint;
  folded_mappings bigint;
begin
  with taken as (
    delete from private.transaction_rollup_deltas
    returning grain, bucket, merchant_key, transactions, amount, round_up
  ), summed as (
    select grain, bucket, merchant_key, sum(transactions) as transactions, sum(amount) as amount,
           sum(round_up) as round_up, count(*) as deltas
    from taken group by 1, 2, 3
  ), applied as (
    insert into private.transaction_rollups as r (grain, bucket, merchant_key, transactions, amount, round_up)
    select grain, bucket, merchant_key, transactions, amount, round_up from summed
    on conflict (grain, bucket, merchant_key) do update
      set transactions = r.transactions + excluded.transactions, amount = r.amount + excluded.amount,
          round_up = r.round_up + excluded.round_up
  )
  select coalesce(sum(deltas), 0) into folded_transactions from summed;

  with taken as (
    delete from private.allocation_rollup_deltas returning grain, bucket, ticker, lots, amount, shares
  ), summed as (
    select grain, bucket, ticker, sum(lots) as lots, sum(amount) as amount, sum(shares) as shares,
           count(*) as deltas
    from taken group by 1, 2, 3
  ), applied as (
    insert into private.allocation_rollups as r (grain, bucket, ticker, lots, amount, shares)
    select grain, bucket, ticker, lots, amount, shares from summed
    on conflict (grain, bucket, ticker) do update
      set lots = r.lots + excluded.lots, amount = r.amount + excluded.amount, shares = r.shares + excluded.shares
  )
  select coalesce(sum(deltas), 0) into folded_allocations from summed;

  with taken as (
    delete from private.mapping_rollup_deltas
    returning day, created, auto_approved, admin_approved, rejected, pending, reviewed
  ), summed as (
    select day, sum(created) as created, sum(auto_approved) as auto_approved, sum(admin_approved) as admin_approved,
           sum(rejected) as rejected, sum(pending) as pending, sum(reviewed) as reviewed, count(*) as deltas
    from taken group by 1
  ), applied as (
    insert into private.mapping_rollups as r (day, created, auto_approved, admin_approved, rejected, pending, reviewed)
    select day, created, auto_approved, admin_approved, rejected, pending, reviewed from summed
    on conflict (day) do update
      set created = r.created + excluded.created, auto_approved = r.auto_approved + excluded.auto_approved,
          admin_approved = r.admin_approved + excluded.admin_approved, rejected = r.rejected + excluded.rejected,
          pending = r.pending + excluded.pending, reviewed = r.reviewed + excluded.reviewed
  )
  select coalesce(sum(deltas), 0) into folded_mappings from summed;

  return folded_transactions + folded_allocations + folded_mappings;
end;
$$;
comment on function private.compact_rollups() is
  'Fold committed rollup deltas into the rollup totals (pg_cron, every minute). Returns the number of deltas folded.';

select cron.schedule('kamioi-compact-rollups', '* * * * *', 'select private.compact_rollups()');
