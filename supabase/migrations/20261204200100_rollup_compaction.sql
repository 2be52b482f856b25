/*
 * Compaction of the chart rollups (analytics rollups migration), every minute by pg_cron.
 *
 * Like private.compact_stats(): each statement deletes the deltas its snapshot sees and adds them to
 * the totals, so deltas of transactions still in flight are folded by a later run and nothing is
 * counted twice; a read (totals + deltas) is exact before, during and after a run. A bucket whose
 * totals come back to zero (everything in it deleted) stays; reads skip it.
 *
 * The transactions' statement also keeps the category rollups (analytics rollups migration): queued
 * merchants whose category in force differs from the one they are filed under move their compacted
 * months over, the new month x merchant deltas are added under the categories in force, and the
 * merchants are refiled; runs are serialized by an advisory lock, so no queued move happens twice.
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
  -- One compaction at a time (pg_cron and a manual call): each moves queued merchants exactly once.
  perform pg_advisory_xact_lock(private.rollup_lock_key('compaction'));

  -- Transactions and categories in one statement, so one snapshot decides which deltas, queued
  -- merchants and categories in force this run folds.
  with taken as (
    delete from private.transaction_rollup_deltas
    returning grain, bucket, merchant_key, transactions, amount, round_up
  ), summed as (
    select grain, bucket, merchant_key, sum(transactions) as transactions, sum(amount) as amount,
           sum(round_up) as round_up, count(*) as deltas
    from taken group by 1, 2, 3
  ), applied as (
    insert into private.transaction_rollups as r (grain, bucket, merchant_key, transactions, amount, round_up)
    select grain, bucket, merchant_key, transactions, amount, round_up from summed order by 1, 2, 3
    on conflict (grain, bucket, merchant_key) do update
      set transactions = r.transactions + excluded.transactions, amount = r.amount + excluded.amount,
          round_up = r.round_up + excluded.round_up
  ), queued as (
    delete from private.rollup_recategorized returning merchant_key
  ), moved as (
    select f.merchant_key, f.category as filed, coalesce(c.category, 'UNMAPPED') as current
    from (select distinct merchant_key from queued) as q
    join private.rollup_merchant_categories as f on f.merchant_key = q.merchant_key
    left join private.merchant_categories_in_force as c on c.merchant_key = q.merchant_key
    where f.category <> coalesce(c.category, 'UNMAPPED')
  ), new_months as (
    select s.bucket, s.merchant_key, coalesce(c.category, 'UNMAPPED') as category,
           s.transactions, s.amount, s.round_up
    from summed as s
    left join private.merchant_categories_in_force as c on c.merchant_key = s.merchant_key
    where s.grain = 'month_merchant'
  ), category_changes as (
    -- A moved merchant's compacted months leave the category it was filed under for its current one.
    select t.bucket as month, m.filed as category, -t.transactions as transactions, -t.amount as amount,
           -t.round_up as round_up
    from moved as m
    join private.transaction_rollups as t on t.grain = 'month_merchant' and t.merchant_key = m.merchant_key
    union all
    select t.bucket, m.current, t.transactions, t.amount, t.round_up
    from moved as m
    join private.transaction_rollups as t on t.grain = 'month_merchant' and t.merchant_key = m.merchant_key
    union all
    -- New deltas count under the current category (the filed one, for merchants not queued).
    select bucket, category, transactions, amount, round_up from new_months
  ), category_applied as (
    insert into private.category_rollups as r (month, category, transactions, amount, round_up)
    select month, category, sum(transactions), sum(amount), sum(round_up) from category_changes group by 1, 2
    on conflict (month, category) do update
      set transactions = r.transactions + excluded.transactions, amount = r.amount + excluded.amount,
          round_up = r.round_up + excluded.round_up
  ), refiled as (
    insert into private.rollup_merchant_categories as f (merchant_key, category)
    select merchant_key, current from moved
    union
    select n.merchant_key, n.category from new_months as n
    where not exists (select 1 from private.rollup_merchant_categories as f where f.merchant_key = n.merchant_key)
    on conflict (merchant_key) do update set category = excluded.category
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
    select grain, bucket, ticker, lots, amount, shares from summed order by 1, 2, 3
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
