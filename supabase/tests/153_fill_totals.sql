-- Fills count where allocations count (20261208300000): a user's share of a fill adds to the
-- dashboard's invested amount, open lots and shares per ticker, and to that user's total invested; a
-- reversal takes it back; the house's leftovers add to neither.
begin;
\ir _helpers.psql
select plan(7);

select invested as alice_before from private.user_totals_of(array[:'alice']::uuid[]) \gset
select coalesce((select invested from private.user_totals_of(array[:'bob']::uuid[])), 0) as bob_before \gset

insert into private.sweeps (id, min_notional) overriding system value values (900000153, 1);
insert into public.broker_orders (id, sweep_id, client_order_id, ticker, notional)
  overriding system value values (900000153, 900000153, 'pgtap-900000153-ZFTA', 'ZFTA', 10);
insert into public.fill_allocations (broker_order_id, execution_id, event_id, user_id, ticker, amount, shares, price, kind)
values (900000153, 'zft-a', 'zft-1', :'alice', 'ZFTA', 3.00, 0.3, 10, 'buy'),
       (900000153, 'zft-a', 'zft-1', :'bob', 'ZFTA', 2.00, 0.2, 10, 'buy'),
       (900000153, 'zft-a', 'zft-1', null, 'ZFTA', 0.07, 0.007, 10, 'buy');

select results_eq(
  $$select amount, shares, lots from private.analytics_investing_by_ticker() where ticker = 'ZFTA'$$,
  $$values (5.00::numeric, 0.5::numeric, 2::bigint)$$,
  'the dashboard counts the users'' shares of a fill as lots at the fill price, not the house''s');
select is((select invested from private.user_totals_of(array[:'alice']::uuid[])),
  coalesce(:'alice_before'::numeric, 0) + 3.00, 'the user''s total invested gains their share');
select is((select invested from private.user_totals_of(array[:'bob']::uuid[])),
  :'bob_before'::numeric + 2.00, 'each user of the fill gains their own share');

-- A bust reverses bob's share.
insert into public.fill_allocations (broker_order_id, execution_id, event_id, user_id, ticker, amount, shares, price, kind)
values (900000153, 'zft-a', 'zft-2', :'bob', 'ZFTA', -2.00, -0.2, 10, 'reversal');
select results_eq(
  $$select amount, shares, lots from private.analytics_investing_by_ticker() where ticker = 'ZFTA'$$,
  $$values (3.00::numeric, 0.3::numeric, 1::bigint)$$,
  'a reversal takes its lot, amount and shares back');
select is((select invested from private.user_totals_of(array[:'bob']::uuid[])),
  :'bob_before'::numeric, 'and the user''s total returns to what it was');

-- Compaction folds the deltas without changing what is read.
select private.compact_user_totals() is not null as compacted \gset
select is((select invested from private.user_totals_of(array[:'alice']::uuid[])),
  coalesce(:'alice_before'::numeric, 0) + 3.00, 'the total survives compaction');

select ok(not has_function_privilege('authenticated', 'private.record_fill_user_totals()', 'execute'),
  'API roles cannot call the trigger functions');

select * from finish();
rollback;
