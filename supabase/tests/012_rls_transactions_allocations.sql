-- transactions and allocations: everyone reads only their own rows through the tables, admins
-- included (admins read all through the security definer admin RPCs, e.g. admin_list_transactions),
-- so an admin's Data API write reaches only rows the admin can read; allocations are written by the allocation engine only (no API role inserts,
-- updates or deletes them, admins included) and never updated by anyone; anon nothing.
begin;
\ir _helpers.psql
select plan(32);

insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status, allocation_lot)
values (9000000000001, :'alice', current_date, 'STARBUCKS #1', 'starbucks', 4.25, 0.75, 'invested', 1),
       (9000000000002, :'alice', current_date - 1, 'AMAZON MKTPL', 'amazon', 19.10, 0.90, 'pending', 0),
       (9000000000003, :'bob', current_date, 'SHELL OIL', 'shell', 40.00, 0.50, 'invested', 1);
select tests.test_price('SBUX') as price_id \gset
insert into public.allocations (id, transaction_id, txn_date, user_id, ticker, amount, shares, price_id, price)
values (9000000000001, 9000000000001, current_date, :'alice', 'SBUX', 0.75, 0.0075, :price_id, 100),
       (9000000000002, 9000000000003, current_date, :'bob', 'SBUX', 1.00, 0.0100, :price_id, 100);

-- anon
select tests.authenticate_as_anon();
select throws_ok('select * from public.transactions', '42501', null, 'anon cannot read transactions');
select throws_ok('select * from public.allocations', '42501', null, 'anon cannot read allocations');
select throws_ok($$insert into public.transactions (user_id, txn_date, descriptor, amount)
  values ('$$ || :'alice' || $$', current_date, 'x', 1)$$, '42501', null, 'anon cannot insert transactions');

-- a user
select tests.authenticate_as(:'alice');
select results_eq('select id from public.transactions where id > 9000000000000 order by id',
  array[9000000000001, 9000000000002]::bigint[], 'a user reads only their own transactions');
select results_eq('select id from public.allocations where id > 9000000000000 order by id',
  array[9000000000001]::bigint[], 'a user reads only their own allocations');
select is_empty($$select * from public.transactions where user_id = '$$ || :'bob' || $$'$$,
  'filtering for another user''s rows returns nothing');
select throws_ok($$insert into public.transactions (user_id, txn_date, descriptor, amount)
  values ('$$ || :'alice' || $$', current_date, 'x', 1)$$, '42501', null, 'a user cannot insert transactions, even their own');
select results_eq($$with u as (update public.transactions set status = 'invested' where id = 9000000000001 returning 1)
  select count(*)::int from u$$, array[0], 'a user cannot update their own transaction''s status');
select results_eq($$with u as (update public.transactions set amount = 0 where id > 9000000000000 returning 1)
  select count(*)::int from u$$, array[0], 'a user cannot update any transaction');
select results_eq('with d as (delete from public.transactions where id > 9000000000000 returning 1) select count(*)::int from d',
  array[0], 'a user cannot delete transactions');
select throws_ok($$insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, price_id, price)
  values (9000000000001, current_date, '$$ || :'alice' || $$', 'SBUX', 1, 1, $$ || :price_id || $$, 1)$$, '42501', null,
  'a user cannot insert allocations');
select throws_ok('update public.allocations set shares = 100 where id > 9000000000000', '42501', null,
  'a user cannot update allocations');
select throws_ok('delete from public.allocations where id > 9000000000000', '42501', null,
  'a user cannot delete allocations');

-- another user
select tests.authenticate_as(:'bob');
select results_eq('select id from public.transactions where id > 9000000000000', array[9000000000003]::bigint[],
  'another user reads only their own transactions');
select results_eq('select id from public.allocations where id > 9000000000000', array[9000000000002]::bigint[],
  'another user reads only their own allocations');

-- an admin
select tests.authenticate_as(:'admin');
select results_eq('select count(*)::int from public.transactions where id > 9000000000000', array[0],
  'through the table an admin reads only their own transactions (none here)');
select results_eq('select count(*)::int from public.allocations where id > 9000000000000', array[0],
  'through the table an admin reads only their own allocations (none here)');
select lives_ok($$insert into public.transactions (id, user_id, txn_date, descriptor, amount)
  values (9000000000004, '$$ || :'bob' || $$', current_date, 'ADMIN FIX', 1)$$, 'an admin inserts transactions');
select results_eq($$with u as (update public.transactions set status = 'mapped' where id = 9000000000004 returning 1)
  select count(*)::int from u$$, array[0], 'an admin''s Data API update reaches no other user''s transaction');
select throws_ok($$insert into public.allocations (id, transaction_id, txn_date, user_id, ticker, amount, shares, price_id, price)
  values (9000000000003, 9000000000004, current_date, '$$ || :'bob' || $$', 'SBUX', 1, 0.01, $$ || :price_id || $$, 100)$$,
  '42501', null, 'an admin cannot insert allocations either (only the allocation engine does)');
select throws_ok('update public.allocations set shares = 0.02 where id = 9000000000001', '42501', null,
  'an admin cannot update allocations');
select throws_ok('delete from public.allocations where id = 9000000000001', '42501', null,
  'an admin cannot delete allocations');
select results_eq('with d as (delete from public.transactions where id = 9000000000004 returning 1) select count(*)::int from d',
  array[0], 'an admin''s Data API delete reaches no other user''s transaction');
select results_eq($$select count(*)::int from public.admin_list_transactions(p_user_id => '$$ || :'bob' || $$')
  where id > 9000000000000$$, array[2], 'an admin reads every transaction through admin_list_transactions');

-- service_role: the importer and the investing worker
select tests.authenticate_as_service_role();
select lives_ok($$insert into public.transactions (id, user_id, txn_date, descriptor, amount)
  values (9000000000005, '$$ || :'alice' || $$', current_date, 'IMPORTED', 2)$$, 'service_role inserts transactions');
select results_eq('select count(*)::int from public.transactions where id > 9000000000000', array[5],
  'service_role reads every transaction');
select throws_ok('delete from public.transactions where id = 9000000000001', '23503', null,
  'a transaction with allocations cannot be deleted (investment records are kept)');
select lives_ok($$update public.transactions set status = 'invested' where id = 9000000000005$$,
  'service_role updates transactions');
select lives_ok($$insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, price_id, price)
  values (9000000000005, current_date, '$$ || :'alice' || $$', 'SBUX', 0.5, 0.005, $$ || :price_id || $$, 100)$$,
  'service_role (the trusted backend) inserts allocations');
select throws_ok($$insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, price_id, price)
  values (9000000000005, current_date, '$$ || :'alice' || $$', 'SBUX', 0.5, 0.005, $$ || :price_id || $$, 100)$$,
  '23505', null, 'a second buy of the same lot is refused (exactly once is a constraint)');
select throws_ok('update public.allocations set shares = 0 where id = 9000000000001', '55000', null,
  'nobody updates an allocation, not even service_role: corrections are reversals');

select tests.clear_authentication();
select throws_ok('update public.allocations set ticker = ticker where id = 9000000000001', '55000', null,
  'not even the owner role updates an allocation');

select tests.clear_authentication();
select * from finish();
rollback;
