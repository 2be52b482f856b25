-- A sweep takes round-ups without rewriting their transactions (private.sweep_members), and settles
-- them afterwards (private.settle_swept_round_ups). In between a taken row is `mapped` but held: the
-- next sweep does not take it again, the Data API guard refuses changing or deleting it, even to an
-- admin, and public.admin_correct_transaction refuses it by name. Settling turns bought rows
-- `invested` with their sweep, zero round-ups `invested`, and rows whose mapping lost its approval
-- `pending`, and tells each swept user once.
begin;
\ir _helpers.psql
select plan(16);

-- Fixtures (privileged): a buyable ticker, the admin at a $1 threshold, alice at the default $5.
insert into private.broker_assets (symbol, tradable, fractionable) values ('ZSTL', true, true);
with m as (
  insert into public.llm_mappings (merchant_name, merchant_key, ticker, status, admin_approved, category)
  values ('ZS SETTLE', 'zs settle', 'ZSTL', 'approved', true, 'FOOD_AND_DRINK')
  returning id, created_at)
insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
select 'zs settle', 'zs settle', id, created_at from m;
insert into public.investing_settings (user_id, threshold_dollars) values (:'admin', 1);
insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status, mapping_id)
select v.id, v.user_id, current_date - 2, v.descriptor, v.merchant_key, v.amount, v.round_up, 'mapped', mr.mapping_id
from (values (9151000000001, :'admin'::uuid, 'ZS SETTLE 1', 'zs settle', 4.50, 0.50),
             (9151000000002, :'admin'::uuid, 'ZS SETTLE 2', 'zs settle', 3.25, 0.75),
             (9151000000003, :'admin'::uuid, 'ZS SETTLE 3', 'zs settle', 3.00, 0.00),
             (9151000000004, :'admin'::uuid, 'ZS UNMAPPED', 'zs unmapped', 2.40, 0.60),
             (9151000000005, :'alice'::uuid, 'ZS SETTLE 5', 'zs settle', 2.90, 0.10))
  as v (id, user_id, descriptor, merchant_key, amount, round_up)
left join public.merchants as mr on mr.merchant_key = v.merchant_key;

select private.sweep_round_ups('VTI', 1) as sweep \gset
select is((select array_agg(status order by id)::text[] from public.transactions where id between 9151000000001 and 9151000000005),
  array['mapped', 'mapped', 'mapped', 'mapped', 'mapped'], 'the sweep rewrites no transaction');
select results_eq($$select outcome, ticker, (select array_agg(i order by i) from unnest(ids) as i), notional
                    from private.sweep_members
                    where sweep_id = $$ || :sweep || $$ and user_id = '$$ || :'admin' || $$' order by outcome$$,
  $$values ('bought'::text, 'ZSTL'::text, array[9151000000001, 9151000000002]::bigint[], 1.25::numeric(14, 2)),
           ('unlink', null, array[9151000000004]::bigint[], 0),
           ('zero', null, array[9151000000003]::bigint[], 0)$$,
  'the admin''s round-ups are taken per outcome: bought (at their $1 threshold), unlinked, nothing to invest');
select is((select count(*)::int from private.sweep_members where user_id = :'alice'), 0,
  'alice, under the default $5 threshold, is not taken');
select results_eq($$select ticker, notional from public.broker_orders where sweep_id = $$ || :sweep,
  $$values ('ZSTL'::text, 1.25::numeric(14, 2))$$, 'one order buys what was taken');
select is(private.sweeping(:'admin', 9151000000001), :sweep::bigint, 'private.sweeping names the sweep holding a row');

select private.sweep_round_ups('VTI', 1) as second \gset
select is((select count(*)::int from private.sweep_members where sweep_id = :second), 0,
  'the next sweep takes nothing a sweep holds');

-- Held rows, as an admin through the Data API
select tests.authenticate_as(:'admin');
select throws_like('update public.transactions set amount = 9.50 where id = 9151000000001',
  '%transactions.amount of transaction 9151000000001%', 'admin: a held row''s amount cannot change');
select throws_like($$update public.transactions set status = 'pending' where id = 9151000000004$$,
  '%transactions.status of transaction 9151000000004%', 'admin: a held row''s status cannot change');
select throws_like('delete from public.transactions where id = 9151000000002',
  '%being invested by a sweep%', 'admin: a held row cannot be deleted');
select throws_like('select public.admin_correct_transaction(9151000000001, current_date - 2, 9.99)',
  '%was invested by sweep%cannot be corrected here%', 'admin: a held row is not corrected, and says why');
select lives_ok('update public.transactions set amount = 2.80, round_up = 0.20 where id = 9151000000005',
  'admin: a mapped row no sweep holds is still corrected as before');

-- Settling
select tests.clear_authentication();
set constraints all immediate;
select is(private.settle_swept_round_ups(500), 1, 'one user is settled');
select results_eq($$select id, status, sweep_id from public.transactions where id between 9151000000001 and 9151000000004
                    order by id$$,
  $$values (9151000000001::bigint, 'invested'::text, $$ || :sweep || $$::bigint),
           (9151000000002, 'invested', $$ || :sweep || $$),
           (9151000000003, 'invested', null),
           (9151000000004, 'pending', null)$$,
  'bought rows are invested with their sweep, a zero round-up invested, an unapproved merchant''s row pending');
select is((select count(*)::int from private.sweep_members), 0, 'settled members are gone');
select results_eq($$select payload ->> 'round_ups', payload ->> 'notional' from realtime.messages
                    where event = 'round_ups_swept' and topic = 'user:$$ || :'admin' || $$:transactions'$$,
  $$values ('2'::text, '1.25'::text)$$, 'the admin hears of the sweep once, when their purchases show it');
select is(private.settle_swept_round_ups(500), 0, 'nothing is left to settle');

select * from finish();
rollback;
