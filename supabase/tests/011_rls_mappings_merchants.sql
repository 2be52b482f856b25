-- llm_mappings and merchants: admins do everything; users only suggest and edit their own pending
-- suggestions and can never touch review columns; anon nothing.
begin;
\ir _helpers.psql
select plan(33);

insert into public.llm_mappings (id, created_at, merchant_name, merchant_key, company_name, ticker, category, confidence)
values (9000000000001, now(), 'STARBUCKS #123', 'pgtap:starbucks', 'Starbucks', 'SBUX', 'FOOD_AND_DRINK', 0.97);
insert into public.merchants (merchant_key, display_name) values ('pgtap:starbucks', 'Starbucks')
  on conflict (merchant_key) do nothing;

-- anon
select tests.authenticate_as_anon();
select throws_ok('select * from public.llm_mappings where id > 9000000000000', '42501', null, 'anon cannot read mappings');
select throws_ok($$insert into public.llm_mappings (merchant_name, merchant_key) values ('x', 'x')$$, '42501', null,
  'anon cannot insert mappings');
select throws_ok($$select * from public.merchants where merchant_key in ('pgtap:starbucks', 'x')$$, '42501', null, 'anon cannot read merchants');

-- a user: suggestions only
select tests.authenticate_as(:'alice');
select is_empty('select * from public.llm_mappings where id > 9000000000000', 'a user does not see LLM mappings');
select lives_ok($$insert into public.llm_mappings (id, merchant_name, merchant_key, company_name, source, submitted_by)
  values (9000000000002, 'LOCAL CAFE', 'local cafe', 'Local Cafe', 'user', '$$ || :'alice' || $$')$$,
  'a user suggests a pending mapping');
select results_eq('select id from public.llm_mappings where id > 9000000000000', array[9000000000002::bigint], 'a user sees their own suggestion');
select throws_ok($$insert into public.llm_mappings (merchant_name, merchant_key, source, status, submitted_by)
  values ('X', 'x', 'user', 'approved', '$$ || :'alice' || $$')$$, '42501', null,
  'a user cannot insert an approved mapping');
select throws_ok($$insert into public.llm_mappings (merchant_name, merchant_key, source, admin_approved, submitted_by)
  values ('X', 'x', 'user', true, '$$ || :'alice' || $$')$$, '42501', null,
  'a user cannot insert an admin-approved mapping');
select throws_ok($$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
  values ('X', 'x', 'user', '$$ || :'bob' || $$')$$, '42501', null,
  'a user cannot suggest in another user''s name');
select throws_ok($$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
  values ('X', 'x', 'llm', '$$ || :'alice' || $$')$$, '42501', null,
  'a user cannot pose as the LLM');
select results_eq($$with u as (update public.llm_mappings set company_name = 'Local Cafe LLC' where id = 9000000000002 returning 1)
  select count(*)::int from u$$, array[1], 'a user edits their pending suggestion');
select throws_ok('update public.llm_mappings set status = ''approved'' where id = 9000000000002', '42501', null,
  'a user cannot change status of their own suggestion');
select throws_ok('update public.llm_mappings set admin_approved = true where id = 9000000000002', '42501', null,
  'a user cannot set admin_approved on their own suggestion');
select throws_ok($$update public.llm_mappings set reviewer = '$$ || :'alice' || $$' where id = 9000000000002$$, '42501', null,
  'a user cannot set reviewer on their own suggestion');
select results_eq($$with u as (update public.llm_mappings set company_name = 'x' where id = 9000000000001 returning 1)
  select count(*)::int from u$$, array[0], 'a user cannot update LLM mappings');
select results_eq('with d as (delete from public.llm_mappings where id = 9000000000001 returning 1) select count(*)::int from d',
  array[0], 'a user cannot delete LLM mappings');
select is_empty($$select * from public.merchants where merchant_key in ('pgtap:starbucks', 'x')$$, 'a user does not see merchants');
select throws_ok($$insert into public.merchants (merchant_key, display_name) values ('x', 'X')$$, '42501', null,
  'a user cannot insert merchants');
select results_eq($$with u as (update public.merchants set display_name = 'x' where merchant_key = 'pgtap:starbucks' returning 1) select count(*)::int from u$$,
  array[0], 'a user cannot update merchants');
select results_eq($$with d as (delete from public.merchants where merchant_key = 'pgtap:starbucks' returning 1) select count(*)::int from d$$, array[0],
  'a user cannot delete merchants');

-- another user
select tests.authenticate_as(:'bob');
select is_empty('select * from public.llm_mappings where id > 9000000000000', 'another user does not see the first user''s suggestion');
select results_eq($$with u as (update public.llm_mappings set company_name = 'x' where id = 9000000000002 returning 1)
  select count(*)::int from u$$, array[0], 'another user cannot edit it');

-- the suggester withdraws it while pending
select tests.authenticate_as(:'alice');
select results_eq('with d as (delete from public.llm_mappings where id = 9000000000002 returning 1) select count(*)::int from d',
  array[1], 'a user withdraws their pending suggestion');

-- an admin
select tests.authenticate_as(:'admin');
select results_eq('select id from public.llm_mappings where id > 9000000000000', array[9000000000001::bigint], 'an admin reads every mapping');
select lives_ok($$insert into public.llm_mappings (id, merchant_name, merchant_key, source, status, admin_approved)
  values (9000000000003, 'AMAZON MKTPL', 'pgtap:amazon', 'admin', 'approved', true)$$, 'an admin inserts an approved mapping');
select lives_ok($$update public.llm_mappings set status = 'rejected', reviewer = '$$ || :'admin' || $$' where id = 9000000000001$$,
  'an admin changes review columns');
select results_eq('with d as (delete from public.llm_mappings where id = 9000000000003 returning 1) select count(*)::int from d',
  array[1], 'an admin deletes a mapping');
select results_eq($$select merchant_key from public.merchants where merchant_key = 'pgtap:starbucks'$$, array['pgtap:starbucks'], 'an admin reads merchants');
select lives_ok($$insert into public.merchants (merchant_key, display_name) values ('pgtap:amazon', 'Amazon')$$,
  'an admin inserts merchants');
select results_eq($$with u as (update public.merchants set display_name = 'Amazon.com' where merchant_key = 'pgtap:amazon' returning 1)
  select count(*)::int from u$$, array[1], 'an admin updates merchants');
select results_eq($$with d as (delete from public.merchants where merchant_key = 'pgtap:amazon' returning 1) select count(*)::int from d$$,
  array[1], 'an admin deletes merchants');

-- service_role
select tests.authenticate_as_service_role();
select lives_ok($$update public.llm_mappings set status = 'approved', admin_approved = true where id = 9000000000001$$,
  'service_role changes review columns');
select results_eq($$select count(*)::int from public.merchants where merchant_key = 'pgtap:starbucks'$$, array[1], 'service_role reads merchants');

select tests.clear_authentication();
select * from finish();
rollback;
