-- Round-up rules and broker orders through the Data API: a user reads and writes only their own
-- investing_settings row, within the bounds; nobody but admins reads broker orders; fill allocations
-- are read by their user only (admins too: fills reach admins through public.investing_overview) and
-- written by nobody through the API; anon gets nothing. The ledger's invariant (checked at commit; here
-- made immediate) takes a swept row by the sweep's rule (invested, its sweep recorded, no lot of its
-- own) and transactions.sweep_id is the engine's, refused to the Data API.
begin;
\ir _helpers.psql
select plan(40);

-- Fixtures, as the engine writes them (privileged).
insert into private.sweeps (id, min_notional) overriding system value values (900000001, 1);
insert into public.broker_orders (id, sweep_id, client_order_id, ticker, notional)
  overriding system value values (900000001, 900000001, 'pgtap-900000001-SBUX', 'SBUX', 12.50);
insert into public.fill_allocations (broker_order_id, execution_id, event_id, user_id, ticker, amount, shares, price, kind)
values (900000001, 'pgtap-exec', 'pgtap-1', :'alice', 'SBUX', 5.00, 0.05, 100, 'buy'),
       (900000001, 'pgtap-exec', 'pgtap-1', :'bob', 'SBUX', 7.49, 0.0749, 100, 'buy'),
       (900000001, 'pgtap-exec', 'pgtap-1', null, 'SBUX', 0.01, 0.0001, 100, 'buy');

-- A swept round-up has no lot of its own: the invariant checks it by the sweep's rule.
with m as (
  insert into public.llm_mappings (merchant_name, merchant_key, ticker, status, admin_approved, category)
  values ('ZS SWEEP', 'zs sweep', 'ZSWP', 'approved', true, 'FOOD_AND_DRINK')
  returning id, created_at)
insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
select 'zs sweep', 'zs sweep', id, created_at from m;
select tests.test_price('ZSWP', 50);
insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
values (9150000000001, :'admin', current_date - 3, 'ZS SWEEP 1', 'zs sweep', 4.50, 0.50, 'mapped'),
       (9150000000002, :'admin', current_date - 3, 'ZS SWEEP 2', 'zs sweep', 3.25, 0.75, 'mapped'),
       (9150000000003, :'alice', current_date - 3, 'ZS SWEEP 3', 'zs sweep', 2.90, 0.10, 'mapped');
set constraints all immediate;
select lives_ok($$update public.transactions set status = 'invested', sweep_id = 900000001
  where id in (9150000000001, 9150000000003)$$, 'postgres: a swept row is invested with its sweep and no lot of its own');
select throws_ok($$update public.transactions set status = 'mapped' where id = 9150000000003$$,
  '23514', null, 'postgres: a swept row set back to mapped breaks the invariant (it would be swept twice)');
select throws_ok($$update public.transactions set sweep_id = -1 where id = 9150000000003$$,
  '23514', null, 'postgres: a swept row''s sweep must be recorded');
select throws_ok($$update public.transactions set sweep_id = 900000001 where id = 9150000000002$$,
  '23514', null, 'postgres: a sweep_id on a row that is not invested breaks the invariant');
select private.invest_chunk(9150000000001, 1, 'VTI', interval '1 day');
select is((select status from public.transactions where id = 9150000000002), 'invested',
  'the quote engine buys a lot for the other row (setup)');
select throws_ok($$update public.transactions set sweep_id = 900000001 where id = 9150000000002$$,
  '23514', null, 'postgres: a row with an open lot of its own cannot be swept as well (invested twice)');

-- Events in batches: each applied once, in order, one outcome each.
select is(private.apply_trade_events('pgtap', jsonb_build_array(
    jsonb_build_object('event_id', '777000001', 'event', 'new',
                       'order', jsonb_build_object('client_order_id', 'pgtap-900000001-SBUX', 'status', 'new', 'id', 'b-1')),
    jsonb_build_object('event_id', '777000001', 'event', 'new',
                       'order', jsonb_build_object('client_order_id', 'pgtap-900000001-SBUX', 'status', 'new', 'id', 'b-1')),
    jsonb_build_object('event_id', '777000002', 'event', 'new',
                       'order', jsonb_build_object('client_order_id', 'not-ours', 'status', 'new', 'id', 'b-2')))),
  array['applied', 'duplicate', 'unknown_order'], 'a batch of events: applied, its duplicate a no-op, another app''s order skipped');
select throws_ok($$select private.apply_trade_events('pgtap', '{"event_id": "1"}')$$, '22023', null,
  'a batch must be a JSON array');

-- The minute's sweep is background work: a user's import or export is claimed before it.
select private.enqueue_job_once('invest.sweep');
select results_eq($$select distinct lane from private.job_queue where kind = 'invest.sweep' and state = 'queued'$$,
  array['background'], 'sweeps run in the background lane');

-- anon
select tests.authenticate_as_anon();
select throws_ok('select * from public.investing_settings', '42501', null, 'anon cannot read round-up rules');
select throws_ok($$insert into public.investing_settings (user_id) values ('$$ || :'alice' || $$')$$, '42501', null,
  'anon cannot create round-up rules');
select throws_ok('select * from public.broker_orders', '42501', null, 'anon cannot read broker orders');
select throws_ok('select * from public.fill_allocations', '42501', null, 'anon cannot read fill allocations');

-- a user: their own row only
select tests.authenticate_as(:'alice');
select lives_ok($$insert into public.investing_settings (user_id, multiplier, threshold_dollars) values ('$$ || :'alice' || $$', 3, 10)$$,
  'a user creates their own rules');
select throws_ok($$insert into public.investing_settings (user_id, multiplier) values ('$$ || :'bob' || $$', 10)$$, '42501', null,
  'a user cannot create rules for another user');
select throws_ok($$update public.investing_settings set multiplier = 11 where user_id = '$$ || :'alice' || $$'$$, '23514', null,
  'the multiplier is at most 10');
select throws_ok($$update public.investing_settings set multiplier = 0 where user_id = '$$ || :'alice' || $$'$$, '23514', null,
  'the multiplier is at least 1');
select throws_ok($$update public.investing_settings set threshold_dollars = 100.01 where user_id = '$$ || :'alice' || $$'$$, '23514', null,
  'the threshold is at most $100');
select throws_ok($$update public.investing_settings set threshold_dollars = 0.99 where user_id = '$$ || :'alice' || $$'$$, '23514', null,
  'the threshold is at least $1');
select lives_ok($$update public.investing_settings set paused = true where user_id = '$$ || :'alice' || $$'$$,
  'a user pauses');
select throws_ok($$update public.investing_settings set user_id = '$$ || :'bob' || $$' where user_id = '$$ || :'alice' || $$'$$,
  '42501', null, 'a user cannot hand their row to another user');
select throws_ok('delete from public.investing_settings', '42501', null,
  'a user cannot delete rules (setting the defaults back is an update)');

select tests.clear_authentication();
insert into public.investing_settings (user_id, multiplier) values (:'bob', 7);
select tests.authenticate_as(:'alice');
select results_eq('select user_id::text from public.investing_settings', array[:'alice'::text],
  'a user reads only their own rules');
select results_eq($$with u as (update public.investing_settings set multiplier = 1 where user_id = '$$ || :'bob' || $$' returning 1)
  select count(*)::int from u$$, array[0], 'a user cannot update another user''s rules');
select throws_ok($$insert into public.investing_settings (user_id) values ('$$ || :'bob' || $$')
  on conflict (user_id) do update set multiplier = 1$$, '42501', null, 'an upsert cannot reach another user''s row');
select is_empty('select * from public.broker_orders', 'a user reads no broker orders');
select results_eq('select user_id::text from public.fill_allocations where event_id = ''pgtap-1''',
  array[:'alice'::text], 'a user reads only their own fill allocations (not the house''s, not another user''s)');
select throws_ok($$insert into public.fill_allocations (broker_order_id, execution_id, event_id, user_id, ticker, amount, shares, price, kind)
  values (900000001, 'x', 'y', '$$ || :'alice' || $$', 'SBUX', 100, 1, 100, 'buy')$$, '42501', null,
  'a user cannot write fill allocations for themselves');
select throws_ok($$update public.broker_orders set status = 'filled'$$, '42501', null, 'a user cannot update orders');
select throws_ok($$select private.sweep_round_ups('VTI', 1)$$, '42501', null, 'a user cannot run a sweep');
select throws_ok($$select private.apply_trade_event('trades', '{}')$$, '42501', null, 'a user cannot feed trade events');
select throws_ok('select public.investing_overview()', '42501', null, 'a user cannot read the investing overview');

-- an admin: reads orders, not other users' fill allocations, writes neither, and not a user's rules;
-- sweep_id is out of an admin's reach too, even on their own rows
select tests.authenticate_as(:'admin');
select is_empty('select * from public.fill_allocations where event_id = ''pgtap-1''',
  'an admin reads no one else''s fill allocations (own rows only)');
select throws_like('update public.transactions set sweep_id = null where id = 9150000000001',
  '%transactions.sweep_id of transaction 9150000000001%', 'admin: a swept row''s sweep_id cannot be cleared');
select throws_like('update public.transactions set sweep_id = 900000001 where id = 9150000000002',
  '%transactions.sweep_id%', 'admin: a row cannot be marked swept by hand');
select throws_like($$insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up,
  status, sweep_id) values ('$$ || :'admin' || $$', current_date, 'ZS SWEEP 4', 'zs sweep', 1.50, 0.50, 'mapped',
  900000001)$$, '%transactions.sweep_id%', 'admin: a row cannot be inserted as swept');
select throws_like('select public.admin_correct_transaction(9150000000001, current_date - 3, 9.99)',
  '%was invested by sweep 900000001%cannot be corrected here%',
  'admin: a swept purchase is refused by name, not corrected back to mapped (its money is at the broker)');
select results_eq('select client_order_id from public.broker_orders where id = 900000001',
  array['pgtap-900000001-SBUX'], 'an admin reads broker orders');
select is_empty('select * from public.investing_settings', 'an admin does not read users'' rules');
select throws_ok($$insert into public.broker_orders (sweep_id, client_order_id, ticker, notional)
  values (900000001, 'admin-made', 'SBUX', 5)$$, '42501', null, 'an admin cannot place orders through the API');

select * from finish();
rollback;
