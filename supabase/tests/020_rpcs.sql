-- Keyset RPCs, page caps, admin gates, and review_mapping.
begin;
\ir _helpers.psql
select plan(41);

-- Alice: 150 purchases over 75 days (two per day), Bob: one.
insert into public.transactions (user_id, txn_date, descriptor, amount, round_up)
select :'alice', current_date - (g / 2), 'PURCHASE ' || g, 1 + g, 0.5 from generate_series(0, 149) as g;
insert into public.transactions (user_id, txn_date, descriptor, amount) values (:'bob', current_date, 'BOB', 1);

-- 60 pending mappings newer than anything else (far future: the default partition), 5 approved.
insert into public.llm_mappings (created_at, merchant_name, merchant_key, status)
select timestamptz '2999-01-01' + make_interval(secs => g), 'ZQXJK COFFEE ' || g, 'zqxjk coffee ' || g, 'pending'
from generate_series(1, 60) as g;
insert into public.llm_mappings (created_at, merchant_name, merchant_key, status)
select timestamptz '2999-06-01' + make_interval(secs => g), 'ZQXJK APPROVED ' || g, 'zqxjk approved', 'approved'
from generate_series(1, 5) as g;
insert into public.llm_mappings (merchant_name, merchant_key) values ('ZQXJK 100% JUICE', 'zqxjk juice');

-- list_my_transactions ---------------------------------------------------------------------------
select tests.authenticate_as(:'alice');
select is((select count(*)::int from public.list_my_transactions()), 100, 'transactions: first page has 100 rows');
select is((select count(*)::int from public.list_my_transactions(p_limit => 1000)), 100, 'transactions: page cap is 100');
select is((select count(*)::int from public.list_my_transactions(p_limit => 7)), 7, 'transactions: smaller pages on request');
select is_empty($$select * from public.list_my_transactions() where user_id <> '$$ || :'alice' || $$'$$,
  'transactions: only the caller''s rows');
select ok((select bool_and(ok) from (
    select (txn_date, id) < (lag(txn_date) over w, lag(id) over w) or lag(id) over w is null as ok
    from public.list_my_transactions() window w as (order by txn_date desc, id desc)) as s),
  'transactions: newest date first, id breaking ties');
select txn_date as cursor_date, id as cursor_id from public.list_my_transactions() order by txn_date, id limit 1 \gset
select is((select count(*)::int from public.list_my_transactions(:'cursor_date', :'cursor_id')), 50,
  'transactions: the second page holds the remaining 50');
select results_eq(
  $$(select id from public.list_my_transactions() union all
     select id from public.list_my_transactions('$$ || :'cursor_date' || $$', $$ || :'cursor_id' || $$)) order by id$$,
  $$select id from public.transactions where user_id = '$$ || :'alice' || $$' order by id$$,
  'transactions: two pages cover every row exactly once');
select is_empty($$select * from public.list_my_transactions('$$ || :'cursor_date' || $$', $$ || :'cursor_id' || $$)
  where (txn_date, id) >= ('$$ || :'cursor_date' || $$', $$ || :'cursor_id' || $$)$$,
  'transactions: the next page starts strictly after the cursor');
select tests.authenticate_as(:'bob');
select is((select count(*)::int from public.list_my_transactions()), 1, 'transactions: another user gets only theirs');

-- Bob's purchases spread over every date window, including both ends of the default partition.
select tests.clear_authentication();
insert into public.transactions (id, user_id, txn_date, descriptor, amount)
select 9000000000000 + g, :'bob', d, 'SPREAD', 1
from unnest(array['2999-01-01', current_date + 20, current_date - 45, current_date - 250, current_date - 500,
                  current_date - 1000, '1990-01-01']::date[]) with ordinality as w (d, g);
select tests.authenticate_as(:'bob');
select results_eq('select txn_date from public.list_my_transactions() where id > 9000000000000',
  $$select txn_date from public.transactions where id > 9000000000000 order by txn_date desc$$,
  'transactions: the first page walks every date window, newest first, default partition included');
select results_eq($$select txn_date from public.list_my_transactions(current_date - 250, 9000000000004)$$,
  $$select txn_date from public.transactions where id > 9000000000004 order by txn_date desc$$,
  'transactions: a cursor deep in the past skips the newer windows');
select tests.authenticate_as_anon();
select throws_ok('select * from public.list_my_transactions()', '42501', null, 'transactions: anon cannot call');

-- list_pending_mappings -------------------------------------------------------------------------
select tests.authenticate_as(:'alice');
select throws_ok('select * from public.list_pending_mappings()', '42501', 'admin role required', 'pending: users are refused');
select tests.authenticate_as_anon();
select throws_ok('select * from public.list_pending_mappings()', '42501', null, 'pending: anon cannot call');
select tests.authenticate_as(:'admin');
select is((select count(*)::int from public.list_pending_mappings(p_limit => 500)), 50, 'pending: page cap is 50');
select results_eq('select merchant_name from public.list_pending_mappings(p_limit => 3)',
  array['ZQXJK COFFEE 60', 'ZQXJK COFFEE 59', 'ZQXJK COFFEE 58'], 'pending: newest first, approved rows excluded');
select created_at as pending_at, id as pending_id from public.list_pending_mappings() order by created_at, id limit 1 \gset
select results_eq(
  $$select merchant_name from public.list_pending_mappings('$$ || :'pending_at' || $$', $$ || :'pending_id' || $$) limit 10$$,
  $$select 'ZQXJK COFFEE ' || g from generate_series(10, 1, -1) as g$$,
  'pending: the next page continues right after the cursor');
select is_empty($$select * from public.list_pending_mappings(p_limit => 50) where status <> 'pending'$$,
  'pending: only pending rows');
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.list_pending_mappings()), 50, 'pending: service_role may list');

-- search_mappings -------------------------------------------------------------------------------
select tests.authenticate_as(:'admin');
select is((select count(*)::int from public.search_mappings('zqxjk coffee', p_limit => 500)), 50, 'search: page cap is 50');
select is((select count(*)::int from public.search_mappings('ZqXjK CoFfEe 5')), 11, 'search: case-insensitive substring (5 and 50-59)');
select is((select count(*)::int from public.search_mappings('zq')), 0, 'search: fewer than 3 characters return nothing');
select results_eq($$select merchant_name from public.search_mappings('zqxjk 100%')$$, array['ZQXJK 100% JUICE'],
  'search: % in the query is literal');
select is((select count(*)::int from public.search_mappings('zqxjk_coffee')), 0, 'search: _ in the query is literal');
select min(id) as search_cursor from public.search_mappings('zqxjk coffee') \gset
select results_eq(
  $$(select id from public.search_mappings('zqxjk coffee') union all
     select id from public.search_mappings('zqxjk coffee', $$ || :'search_cursor' || $$)) order by id desc$$,
  $$select id from public.llm_mappings where merchant_name like 'ZQXJK COFFEE %' order by id desc$$,
  'search: keyset pages by id cover every match once');
select tests.authenticate_as(:'alice');
select throws_ok($$select * from public.search_mappings('zqxjk')$$, '42501', null, 'search: users are refused');

-- list_users ------------------------------------------------------------------------------------
select tests.clear_authentication();
insert into auth.users (id, email) select extensions.gen_random_uuid(), 'bulk' || g || '@test.local' from generate_series(1, 101) as g;
select tests.authenticate_as(:'admin');
select is((select count(*)::int from public.list_users(p_limit => 1000)), 100, 'users: page cap is 100');
select created_at as user_at, id as user_id from public.list_users(p_limit => 2) order by created_at, id limit 1 \gset
select results_eq(
  $$(select id from public.list_users(p_limit => 2) union all
     select id from public.list_users('$$ || :'user_at' || $$', '$$ || :'user_id' || $$', 3))$$,
  'select id from public.list_users(p_limit => 5)',
  'users: keyset pages continue where the last one stopped');
select tests.authenticate_as(:'alice');
select throws_ok('select * from public.list_users()', '42501', null, 'users: users are refused');

-- dashboard_stats gate --------------------------------------------------------------------------
select throws_ok('select public.dashboard_stats()', '42501', null, 'stats: users are refused');
select tests.authenticate_as_anon();
select throws_ok('select public.dashboard_stats()', '42501', null, 'stats: anon cannot call');
select tests.authenticate_as(:'admin');
select ok(public.dashboard_stats() ?& array['mappings', 'transactions'], 'stats: admins get the dashboard');
select tests.authenticate_as_service_role();
select ok(public.dashboard_stats() ? 'mappings', 'stats: service_role gets the dashboard');

-- review_mapping --------------------------------------------------------------------------------
select tests.clear_authentication();
select id as review_id, created_at as review_at from public.llm_mappings where merchant_name = 'ZQXJK COFFEE 1' \gset
select tests.authenticate_as(:'alice');
select throws_ok($$select public.review_mapping($$ || :'review_id' || $$, '$$ || :'review_at' || $$', 'approved')$$,
  '42501', null, 'review: users are refused');
select tests.authenticate_as(:'admin');
select results_eq(
  $$select status, admin_approved, reviewer, reviewed_at is not null
    from public.review_mapping($$ || :'review_id' || $$, '$$ || :'review_at' || $$', 'approved')$$,
  $$values ('approved'::text, true, '$$ || :'admin' || $$'::uuid, true)$$,
  'review: approving sets status, admin_approved, reviewer and reviewed_at');
select results_eq($$select mapping_id, mapping_created_at from public.merchants where merchant_key = 'zqxjk coffee 1'$$,
  $$values ($$ || :'review_id' || $$::bigint, '$$ || :'review_at' || $$'::timestamptz)$$,
  'review: the approved mapping is in force for its merchant');
select throws_ok($$delete from public.llm_mappings where id = $$ || :'review_id',
  '23503', null, 'review: a mapping in force cannot be deleted');
select results_eq(
  $$select status, admin_approved from public.review_mapping($$ || :'review_id' || $$, '$$ || :'review_at' || $$', 'rejected')$$,
  $$values ('rejected'::text, false)$$, 'review: rejecting sets status and clears admin_approved');
select results_eq($$select mapping_id from public.merchants where merchant_key = 'zqxjk coffee 1'$$,
  array[null::bigint], 'review: rejecting the mapping in force clears the merchant''s pointer');
select throws_ok($$select public.review_mapping($$ || :'review_id' || $$, '$$ || :'review_at' || $$', 'maybe')$$,
  '22023', null, 'review: only approved or rejected');
select throws_ok($$select public.review_mapping(-1, now(), 'approved')$$, 'P0002', null, 'review: unknown mapping');

select tests.clear_authentication();
select * from finish();
rollback;
