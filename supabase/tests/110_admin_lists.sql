-- Admin lists and exports: admins only (users get 42501, anon cannot execute), the lists' keyset and
-- filters, per-user totals exact after inserts, deletes, allocations and TRUNCATE, export jobs and
-- their admin:exports broadcasts readable by admins only.
begin;
\ir _helpers.psql
select plan(31);

insert into public.merchants (merchant_key, display_name) values ('zq list', 'ZQ List Cafe');
insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
values (9200000000001, :'alice', '2026-03-01', 'ZQ LIST 1', 'zq list', 4.50, 0.50, 'pending'),
       (9200000000002, :'alice', '2026-03-01', 'ZQ LIST 2', 'zq list', 3.75, 0.25, 'failed'),
       (9200000000003, :'alice', '2026-02-11', 'ZQ LIST 3', 'zq list', 120.00, 0, 'pending'),
       (9200000000004, :'bob', '2026-03-02', 'ZQ LIST 4', 'zq list', 2.25, 0.75, 'pending');

-- Who may call ---------------------------------------------------------------------------------------
select tests.authenticate_as(:'alice');
select throws_ok('select * from public.admin_list_transactions()', '42501', 'admin role required',
  'a user cannot list every transaction');
select throws_ok('select * from public.admin_list_mappings()', '42501', 'admin role required',
  'a user cannot list every mapping');
select throws_ok('select * from public.admin_list_users()', '42501', 'admin role required',
  'a user cannot list users');
select throws_ok($$ select * from private.admin_transactions_page('{}', null, null, 100) $$, '42501', null,
  'a user cannot run the private page function behind the list');
select is_empty('select * from public.export_jobs', 'a user sees no export jobs');
select tests.authenticate_as_anon();
select throws_ok('select * from public.admin_list_transactions()', '42501', null, 'anon cannot call the transactions list');
select throws_ok('select * from public.admin_list_users()', '42501', null, 'anon cannot call the users list');
select throws_ok('select * from public.export_jobs', '42501', null, 'anon cannot read export jobs');

-- The transactions list (as an admin, RLS on) ---------------------------------------------------------
select tests.authenticate_as(:'admin');
select results_eq(
  $$ select id from public.admin_list_transactions(p_merchant_key => 'zq list') $$,
  array[9200000000004, 9200000000002, 9200000000001, 9200000000003]::bigint[],
  'newest first by (txn_date, id) across users');
select results_eq(
  $$ select id from public.admin_list_transactions(p_merchant_key => 'zq list', p_before_date => '2026-03-01',
                                                    p_before_id => 9200000000002) $$,
  array[9200000000001, 9200000000003]::bigint[],
  'the cursor continues after the last row');
select results_eq(
  format($$ select id from public.admin_list_transactions(p_merchant_key => 'zq list', p_user_id => %L::uuid,
                                                           p_status => 'pending', p_amount_max => 10) $$, :'alice'),
  array[9200000000001]::bigint[],
  'filters combine');
select results_eq(
  $$ select id from public.admin_list_transactions(p_merchant_key => 'zq list', p_date_from => '2026-03-01',
                                                    p_date_to => '2026-03-01') $$,
  array[9200000000002, 9200000000001]::bigint[],
  'a date range is inclusive');
select is(
  (select merchant_name || ' ' || allocations::text from public.admin_list_transactions(p_merchant_key => 'zq list') limit 1),
  'ZQ List Cafe []', 'rows carry the merchant name and their (empty) allocations');
reset role;
insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount)
select :'bob', '2026-01-01', 'ZQ MANY', 'zq many', 1.5 from generate_series(1, 120);
select tests.authenticate_as(:'admin');
select is(
  (select count(*)::int from public.admin_list_transactions(p_merchant_key => 'zq many', p_limit => 1000)), 100,
  'a page holds at most 100');
select throws_ok(
  $$ select * from public.admin_list_transactions(p_status => 'lost') $$, '22023', 'unknown transaction status: lost',
  'an unknown status is refused');
select throws_ok(
  $$ select * from public.admin_list_transactions(p_amount_min => 10, p_amount_max => 1) $$, '22023', null,
  'an empty amount range is refused');
reset role;
select throws_ok(
  $$ select * from private.admin_transactions_page('{"colour": "red"}', null, null, 10) $$, '22023',
  'unknown filter: colour', 'an unknown filter is refused (export jobs call the page function with jsonb)');
select tests.authenticate_as(:'admin');

-- Mappings and users ----------------------------------------------------------------------------------
insert into public.llm_mappings (merchant_name, merchant_key, confidence, status, category)
-- The names share a word no other mapping has: on a used stack (the demo, imports) other pending
-- mappings name a "CENTER" too, and the search below is a substring match on merchant_name.
values ('ZQ_QWXCENTER 1', 'zq_center_1', 0.9, 'pending', 'TRAVEL'),
       ('ZQ_QWXCENTER 2', 'zq_center_2', 0.2, 'pending', 'TRAVEL'),
       ('ZQ_QWXCENTER 3', 'zq_center_3', null, 'approved', 'TRAVEL'),
       ('ZQXQWXCENTER 4', 'zqxcenter_4', 0.5, 'pending', 'TRAVEL');
select results_eq(
  $$ select merchant_key from public.admin_list_mappings(p_merchant_key_prefix => 'zq_center', p_sort => 'confidence_desc') $$,
  array['zq_center_1', 'zq_center_2', 'zq_center_3'],
  'a key prefix is literal (its _ is not a wildcard) and the confidence sort puts unknown last');
select results_eq(
  $$ select merchant_key from public.admin_list_mappings(p_search => 'qwxcenter', p_status => 'pending',
                                                         p_confidence_min => 0.3, p_sort => 'confidence_asc') $$,
  array['zqxcenter_4', 'zq_center_1'],
  'search, status and confidence combine, ascending');
select throws_ok($$ select * from public.admin_list_mappings(p_search => 'ce') $$, '22023', null,
  'a search shorter than a trigram is refused');
select throws_ok($$ select * from public.admin_list_mappings(p_sort => 'random()') $$, '22023', null,
  'an unknown sort is refused');
select results_eq(
  $$ select email, transactions, round_ups from public.admin_list_users(p_email_prefix => 'ALI') $$,
  $$ values ('alice@test.local'::text, 3::bigint, 0.75::numeric) $$,
  'an email prefix search (any case) with the user''s maintained totals');

-- Totals stay exact -----------------------------------------------------------------------------------
reset role;
delete from public.transactions where id = 9200000000002;
select private.compact_user_totals() > 0 as compacted \gset
insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up)
values (:'alice', '2025-01-05', 'ZQ LIST OLD', 'zq list', 1.10, 0.90);
select results_eq(
  format($$ select transactions, round_ups from private.user_totals_of(array[%L::uuid]) $$, :'alice'),
  format($$ select count(*), sum(round_up) from public.transactions where user_id = %L $$, :'alice'),
  'a delete, a compaction and a later insert: totals equal a recount');
select throws_ok(
  format($$ update public.transactions set user_id = %L where id = 9200000000001 $$, :'bob'),
  '23514', null, 'a purchase never changes owner (the totals follow inserts and deletes)');
truncate public.transactions cascade;
select results_eq(
  format($$ select transactions, round_ups from private.user_totals_of(array[%L::uuid, %L::uuid]) $$, :'alice', :'bob'),
  $$ values (0::bigint, 0::numeric), (0::bigint, 0::numeric) $$,
  'TRUNCATE resets every user''s transaction totals');

-- Export jobs -------------------------------------------------------------------------------------------
select id as export_id from private.create_export_job('users', '{"role": "admin"}', null, :'admin') \gset
select is((select list || ' ' || state || ' ' || file_name from public.export_jobs where id = :export_id),
  'users queued users-' || :export_id || '.csv', 'an export is queued with its file name');
select is((select kind from private.job_queue where id = (select queue_job_id from public.export_jobs where id = :export_id)),
  'exports.csv', 'as a job the worker runs');
select throws_ok($$ select private.create_export_job('users', '{"colour": "red"}', null, null) $$, '22023', null,
  'an export''s filters are validated like the list''s');
select tests.authenticate_as(:'admin');
select set_config('realtime.topic', 'admin:exports', true);
select ok(exists(select 1 from realtime.messages where topic = 'admin:exports' and (payload ->> 'id')::bigint = :export_id),
  'admins hear export progress on admin:exports');
select is((select count(*)::int from public.export_jobs where id = :export_id), 1, 'admins read export jobs');
select tests.authenticate_as(:'alice');
select set_config('realtime.topic', 'admin:exports', true);
select is_empty($$ select 1 from realtime.messages where topic = 'admin:exports' $$,
  'users do not hear admin:exports');

select * from finish();
rollback;
