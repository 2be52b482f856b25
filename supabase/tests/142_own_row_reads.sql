-- Users' reads seek user_id (issue 20, item 6): the natural Data API reads of transactions, holdings,
-- allocations and profiles are index seeks on the caller's id, every role sees only its own rows
-- through the tables (admins included), and admins read everything through the admin RPCs.
begin;
\ir _helpers.psql
select plan(27);

create function tests.plan_text(p_query text)
returns text
language plpgsql
as $$
declare
  line text;
  plan text := '';
begin
  for line in execute 'explain (costs off) ' || p_query loop
    plan := plan || line || E'\n';
  end loop;
  return plan;
end;
$$;

-- Three users' purchases over three months (three partitions), one holding each, an allocation.
insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
select 9420000000000 + g, u.id, current_date - (g * 20), 'POS ' || g, 'm' || g, 1 + g, 0.5, 'pending'
from generate_series(1, 6) as g
cross join lateral (select (array[:'alice', :'bob', :'admin']::uuid[])[1 + g % 3] as id) as u;
select tests.test_price('SBUX') as price_id \gset
insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status, allocation_lot)
values (9420000000100, :'alice', current_date, 'STARBUCKS', 'starbucks', 4.25, 0.75, 'invested', 1),
       (9420000000101, :'bob', current_date, 'STARBUCKS', 'starbucks', 3.25, 0.75, 'invested', 1);
insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, price_id, price)
values (9420000000100, current_date, :'alice', 'SBUX', 0.75, 0.0075, :price_id, 100),
       (9420000000101, current_date, :'bob', 'SBUX', 0.75, 0.0075, :price_id, 100);

-- Other users' purchases, one a day for 40 months back and 6 ahead (every month partition) and a few
-- in the default partition, so the planner weighs a real choice: seeking the caller's rows or walking
-- the date index past everyone else's. Triggers off (fake owners); the statistics are rolled back.
set local session_replication_role = replica;
insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
select 9420000100000 + g, ('00000000-0000-4000-a420-' || lpad((g % 50)::text, 12, '0'))::uuid,
       case when g % 100 = 0 then date '1990-01-01' + g else current_date - 1220 + g end,
       'OTHER', 'other', 5, 0.5, 'pending'
from generate_series(1, 1400) as g;
set local session_replication_role = origin;
analyze public.transactions;

-- The policies: one read policy per table, on the caller's id only, the uid an initPlan ------------
select is(
  (select string_agg(tablename || ': ' || qual, E'\n' order by tablename) from pg_policies
   where schemaname = 'public' and cmd = 'SELECT' and 'authenticated' = any(roles)
     and tablename in ('transactions', 'allocations', 'holdings', 'profiles')),
  E'allocations: (user_id = ( SELECT auth.uid() AS uid))\n'
  'holdings: (user_id = ( SELECT auth.uid() AS uid))\n'
  'profiles: (id = ( SELECT auth.uid() AS uid))\n'
  'transactions: (user_id = ( SELECT auth.uid() AS uid))',
  'each user-facing read policy filters on the caller''s own id and nothing else (no admin branch)');

-- A user: the natural queries seek user_id ---------------------------------------------------------
select tests.authenticate_as(:'alice');
-- Test tables are tiny, so a sequential scan would be cheapest whatever the policy: with seq scans
-- priced out, the question is whether the policy lets an index condition on user_id exist at all
-- (the old `uid or admin` policy left a Seq Scan, or the date index with a filter).
set local enable_seqscan = off;
select tests.plan_text('select * from public.transactions order by txn_date desc, id desc limit 50') as tx_plan \gset
select ok(:'tx_plan' ~ 'Index Cond: \(user_id = \$0\)',
  'transactions newest first: the partitions are sought by user_id (the policy''s initPlan)');
select ok(:'tx_plan' !~ 'Seq Scan' and :'tx_plan' !~ 'Filter: \(user_id' and :'tx_plan' !~ '_(p\d{4}_\d{2}|default)_txn_date_id_idx',
  'transactions newest first: no partition is scanned or walked by date past other users'' rows');
-- A handful of rows sort cheaper than they merge; at scale the merge wins (BENCHMARKS.md). With sorts
-- priced out: the user index yields each partition in page order, so the page needs no sort at all.
set local enable_sort = off;
select tests.plan_text('select * from public.transactions order by txn_date desc, id desc limit 50') as tx_merge \gset
reset enable_sort;
select ok(:'tx_merge' ~ 'Merge Append' and :'tx_merge' !~ '(^|\n)\s*(->\s+)?Sort(\n|$)',
  'transactions newest first: one ordered scan per partition, merged, no sort');
select ok(:'tx_merge' ~ 'transactions_\w*user_id_txn_date_id_idx' and :'tx_merge' !~ 'Filter: \(user_id',
  'transactions newest first: the merge reads (user_id, txn_date desc, id desc), seeking user_id');
select tests.plan_text('select * from public.holdings') as h_plan \gset
select ok(:'h_plan' !~ 'Seq Scan', 'holdings: no sequential scan');
select ok(:'h_plan' ~ 'Index Cond: \(user_id = \$0\)', 'holdings: the primary key is sought by user_id');
-- Sorts priced out again: on a table without statistics (a fresh stack) a bitmap scan and a sort of
-- a handful of rows looks cheaper than the ordered index scan the page gets at scale.
set local enable_sort = off;
select tests.plan_text('select * from public.allocations order by created_at desc, id desc limit 50') as a_plan \gset
reset enable_sort;
select ok(:'a_plan' ~ 'Index Cond: \(user_id = \$0\)' and :'a_plan' !~ 'Seq Scan' and :'a_plan' !~ 'Sort',
  'allocations newest first: allocations_user_created_idx sought by user_id, no sort');
select tests.plan_text('select * from public.profiles') as p_plan \gset
select ok(:'p_plan' ~ 'Index Cond: \(id = \$0\)' and :'p_plan' !~ 'Seq Scan', 'profiles: the primary key is sought');
reset enable_seqscan;

-- ANALYZE's row counts in pg_class are written in place, not rolled back: count again without the
-- fake rows so the stack's planner is left as it was found.
select tests.clear_authentication();
set local session_replication_role = replica;
delete from public.transactions where id > 9420000100000;
set local session_replication_role = origin;
analyze public.transactions;
select tests.authenticate_as(:'alice');

-- ... and return the caller's rows only
select results_eq('select id from public.transactions where id > 9420000000000 order by txn_date desc, id desc',
  $$select id from (values (9420000000100, 0), (9420000000003, 3), (9420000000006, 6)) as v (id, o) order by o$$,
  'a user reads exactly their own transactions, newest first');
select results_eq('select distinct user_id from public.allocations', array[:'alice'::uuid],
  'a user reads only their own allocations');
select results_eq('select distinct user_id from public.holdings', array[:'alice'::uuid],
  'a user reads only their own holdings');
select results_eq('select id from public.profiles', array[:'alice'::uuid], 'a user reads only their own profile');
select is_empty($$select * from public.transactions where user_id = '$$ || :'bob' || $$'$$,
  'asking for another user''s transactions by id returns nothing');
select is_empty($$select * from public.holdings where user_id <> '$$ || :'alice' || $$'$$,
  'asking for everyone else''s holdings returns nothing');
-- A forged user_role claim does not widen a read: the policy has no role branch left to open.
select set_config('request.jwt.claims', jsonb_build_object('sub', :'alice', 'role', 'authenticated',
  'user_role', 'admin')::text, true);
select is((select count(*)::int from public.transactions where user_id <> :'alice'), 0,
  'a user whose token claims admin still reads only their own transactions');
select throws_ok('select * from public.admin_list_transactions()', '42501', null,
  'and cannot use the admin list (it checks the profile)');

-- An admin: their own rows through the tables, everything through the admin RPCs ------------------
select tests.authenticate_as(:'admin');
select results_eq('select distinct user_id from public.transactions where id > 9420000000000', array[:'admin'::uuid],
  'through the table an admin reads only their own transactions');
select is_empty($$select * from public.holdings where user_id in ('$$ || :'alice' || $$', '$$ || :'bob' || $$')$$,
  'through the table an admin reads no other user''s holdings');
select is_empty($$select * from public.allocations where user_id in ('$$ || :'alice' || $$', '$$ || :'bob' || $$')$$,
  'through the table an admin reads no other user''s allocations');
select results_eq('select id from public.profiles', array[:'admin'::uuid],
  'through the table an admin reads only their own profile');
select results_eq(
  $$select count(*)::int from unnest(array['$$ || :'alice' || $$', '$$ || :'bob' || $$', '$$ || :'admin' || $$']::uuid[]) as u (id),
    lateral public.admin_list_transactions(p_user_id => u.id) as t$$,
  array[8], 'admin_list_transactions returns every user''s transactions');
select results_eq(
  $$select count(*)::int from public.list_users() where id in ('$$ || :'alice' || $$', '$$ || :'bob' || $$')$$,
  array[2], 'list_users (now security definer) still returns every profile to an admin');
select results_eq(
  $$select count(*)::int from public.admin_list_users() where id in ('$$ || :'alice' || $$', '$$ || :'bob' || $$')$$,
  array[2], 'admin_list_users returns every profile to an admin');
select results_eq($$with u as (update public.transactions set descriptor = 'EDITED' where id = 9420000000001 returning 1)
  select count(*)::int from u$$, array[0], 'an admin''s Data API update reaches no other user''s transaction');

-- A user cannot borrow the definer function list_users.
select tests.authenticate_as(:'bob');
select throws_ok('select * from public.list_users()', '42501', null, 'list_users still refuses a user');

-- service_role (the worker, the importer) still reads every row.
select tests.authenticate_as_service_role();
select results_eq('select count(distinct user_id)::int from public.transactions where id between 9420000000001 and 9420000000101', array[3],
  'service_role reads every user''s transactions');

select tests.clear_authentication();
select * from finish();
rollback;
