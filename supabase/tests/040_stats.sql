-- dashboard_stats() equals a fresh COUNT/SUM after inserts, bulk INSERT ... SELECT, status
-- updates, investing and corrections by the allocation engine, deletes, compaction and TRUNCATE.
begin;
\ir _helpers.psql
select plan(16);
-- On a used stack the worker may be investing or mapping meanwhile: every comparison below would race
-- it. An EXCLUSIVE lock lets reads through and holds other writers of what the stats count back until
-- this file's transaction ends (it rolls back within seconds).
lock table public.llm_mappings, public.transactions, public.allocations, public.fill_allocations
  in exclusive mode;

-- The seeds' way: recompute everything with COUNT/SUM over the tables, in dashboard_stats' shape.
create function tests.fresh_stats()
returns jsonb
language sql
as $$
  select jsonb_build_object(
    'mappings', (
      select jsonb_build_object(
        'total', count(*),
        'approved', count(*) filter (where status = 'approved'),
        'pending', count(*) filter (where status = 'pending'),
        'rejected', count(*) filter (where status = 'rejected'),
        'admin_approved', count(*) filter (where admin_approved),
        'avg_confidence', round(avg(confidence), 4),
        'distinct_categories', count(distinct category),
        'by_category', coalesce((select jsonb_object_agg(category, n) from (
          select category, count(*) as n from public.llm_mappings where category is not null group by category) as c),
          '{}'::jsonb))
      from public.llm_mappings),
    'transactions', (
      select jsonb_build_object(
        'total', count(*),
        'amount', coalesce(sum(amount), 0),
        'round_up', coalesce(sum(round_up), 0),
        'by_status', coalesce((select jsonb_object_agg(status, jsonb_build_object(
            'count', n, 'amount', amount, 'round_up', round_up)) from (
          select status, count(*) as n, sum(amount) as amount, sum(round_up) as round_up
          from public.transactions group by status) as s), '{}'::jsonb))
      from public.transactions),
    'investing', (
      with by_ticker as (
        select ticker, sum(case kind when 'buy' then 1 else -1 end) as lots, sum(amount) as amount,
               sum(shares) as shares
        from (select ticker, kind, amount, shares from public.allocations
              union all  -- users' shares of broker fills are lots too (20261208300000)
              select ticker, kind, amount, shares from public.fill_allocations where user_id is not null) as l
        group by ticker
        having sum(case kind when 'buy' then 1 else -1 end) > 0
      ), waiting as (
        select status, count(*) as n, coalesce(sum(round_up), 0) as round_up
        from public.transactions where status in ('pending', 'mapped') group by status
      )
      select jsonb_build_object(
        'invested', coalesce((select sum(amount) from by_ticker), 0),
        'open_lots', coalesce((select sum(lots) from by_ticker), 0),
        'tickers', (select count(*) from by_ticker),
        'top_tickers', coalesce((
          select jsonb_agg(jsonb_build_object('ticker', ticker, 'amount', amount, 'shares', shares, 'lots', lots)
                           order by amount desc, ticker)
          from (select * from by_ticker order by amount desc, ticker limit 25) as top), '[]'::jsonb),
        'waiting', jsonb_build_object(
          'pending', jsonb_build_object('count', coalesce((select n from waiting where status = 'pending'), 0),
                                        'round_up', coalesce((select round_up from waiting where status = 'pending'), 0)),
          'mapped', jsonb_build_object('count', coalesce((select n from waiting where status = 'mapped'), 0),
                                       'round_up', coalesce((select round_up from waiting where status = 'mapped'), 0)))))
  )
$$;

select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match COUNT/SUM before any change');

-- single-row inserts by different roles
select tests.authenticate_as(:'alice');
insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by, category)
values ('MY CAFE', 'my cafe', 'user', :'alice', 'FOOD_AND_DRINK');
select tests.authenticate_as(:'admin');
insert into public.llm_mappings (merchant_name, merchant_key, status, admin_approved, confidence, category)
values ('SHELL', 'shell', 'approved', true, 0.99, 'TRANSPORTATION');
select tests.clear_authentication();
insert into public.transactions (user_id, txn_date, descriptor, amount, round_up)
values (:'alice', current_date, 'SHELL 1', 40.10, 0.90);
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after single-row inserts');

-- bulk INSERT ... SELECT, spanning partitions and the default partition
insert into public.llm_mappings (created_at, merchant_name, merchant_key, category, confidence, status, admin_approved)
select now() - make_interval(days => g % 200) + (case when g % 97 = 0 then interval '900 years' else interval '0' end),
       'BULK ' || g, 'bulk ' || g,
       (array['FOOD_AND_DRINK', 'TRAVEL', 'ENTERTAINMENT', 'GENERAL_MERCHANDISE', null])[1 + g % 5],
       case when g % 7 = 0 then null else (g % 10000) / 10000.0 end,
       (array['pending', 'approved', 'rejected'])[1 + g % 3], g % 3 = 1
from generate_series(1, 20000) as g;
insert into public.transactions (user_id, txn_date, descriptor, amount, round_up, status)
select case when g % 2 = 0 then :'alice'::uuid else :'bob'::uuid end,
       current_date - (g % 1200), 'BULK ' || g, (g % 5000) / 100.0, (g % 100) / 100.0,
       (array['pending', 'mapped', 'invested', 'failed'])[1 + g % 4]
from generate_series(1, 20000) as g;
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after bulk INSERT ... SELECT');

-- status changes
update public.llm_mappings set status = 'approved', admin_approved = true
where merchant_key like 'bulk %' and status = 'pending' and confidence > 0.5;
update public.llm_mappings set category = 'TRAVEL', confidence = null where merchant_key like 'bulk 1%';
update public.transactions set status = 'invested' where descriptor like 'BULK %' and status = 'mapped';
update public.transactions set amount = amount + 1 where descriptor like 'BULK 2%';
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after status updates');

-- investing: the engine buys lots; a ticker change reverses them and the next run buys them again
with fuel as (
  insert into public.llm_mappings (merchant_name, merchant_key, ticker, status, admin_approved, category)
  values ('ZQ FUEL', 'zq fuel', 'SHEL', 'approved', true, 'TRANSPORTATION') returning id, created_at)
insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
select 'zq fuel', 'ZQ Fuel', id, created_at from fuel;
insert into public.prices (ticker, as_of, price, source) values ('SHEL', now(), 25, 'test'), ('VTI', now(), 300, 'test');
insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
select case when g % 2 = 0 then :'alice'::uuid else :'bob'::uuid end, current_date - (g % 90), 'ZQ FUEL ' || g,
       'zq fuel', 10 + g / 100.0, ((100 - g % 100) % 100) / 100.0, 'mapped'
from generate_series(1, 3000) as g;
select invested from private.invest_chunk(0, 100000, 'VTI', interval '1 day');
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after investing');
update public.llm_mappings set ticker = null where merchant_key = 'zq fuel';
select id as fuel_id from public.llm_mappings where merchant_key = 'zq fuel' \gset
select private.correct_allocations_chunk(:fuel_id, 'VTI', 100000);
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after a correction reversed the lots');
select invested from private.invest_chunk(0, 100000, 'VTI', interval '1 day');
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after the corrected lots were bought again');

-- a status change by review_mapping as an admin
select tests.authenticate_as(:'admin');
select id as review_id, created_at as review_at from public.llm_mappings where merchant_key = 'my cafe' \gset
select public.review_mapping(:review_id, :'review_at', 'rejected');
select tests.clear_authentication();
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after a review');

-- deletes
delete from public.llm_mappings where merchant_key like 'bulk %' and status = 'rejected';
delete from public.transactions where descriptor like 'BULK %' and status = 'failed';
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after deletes');

-- a statement that changes nothing stats-relevant writes no delta
select count(*) as deltas_before from private.stat_deltas \gset
update public.llm_mappings set reason = 'seen' where merchant_key like 'bulk 5%';
select is((select count(*)::int from private.stat_deltas), :deltas_before, 'an update of other columns writes no delta');

-- compaction folds deltas into totals without changing the answer
select ok(private.compact_stats() > 0, 'compaction folds the pending deltas');
select is((select count(*)::int from private.stat_deltas), 0, 'no delta is left after compaction');
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after compaction');

-- a rolled-back statement leaves no trace
savepoint before_failure;
insert into public.llm_mappings (merchant_name, merchant_key) select 'X', 'x' from generate_series(1, 10);
rollback to savepoint before_failure;
select is(public.dashboard_stats(), tests.fresh_stats(), 'stats match after a rolled-back insert');

-- TRUNCATE resets
-- (a TRUNCATE of allocations resets the investing totals, fills' included: they go too)
truncate public.allocations, public.transactions, public.fill_allocations;
select is(public.dashboard_stats() -> 'transactions', tests.fresh_stats() -> 'transactions',
  'transaction stats match after TRUNCATE');
select is(public.dashboard_stats() -> 'investing', tests.fresh_stats() -> 'investing',
  'investing stats match after TRUNCATE');

select * from finish();
rollback;
