-- The ledger through the Data API (issue 20, item 1): each write an admin could make to an invested
-- transaction is refused (42501, naming the column and the RPC), a user's too; trusted roles still
-- write, but the ledger invariant (checked at commit; here made immediate) refuses a broken ledger
-- from anyone; public.admin_correct_transaction reverses the lot and the engine invests the corrected
-- round-up; user totals follow updates.
begin;
\ir _helpers.psql
select plan(49);
-- The rows under attack are the admin's own: an admin reads (and so writes) only their own rows through
-- the tables (20261207300000_own_row_reads), so the guard is what stands between them and their ledger.
\set owner :admin

-- A merchant with an approved mapping in force and a fresh price; one without a mapping.
with m as (
  insert into public.llm_mappings (merchant_name, merchant_key, ticker, status, admin_approved, category)
  values ('ZL BREW', 'zl brew', 'ZLBR', 'approved', true, 'FOOD_AND_DRINK')
  returning id, created_at)
insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
select 'zl brew', 'zl brew', id, created_at from m;
select tests.test_price('ZLBR', 50) as price_id \gset

-- Checked at each statement here (the file is one transaction that never commits).
set constraints all immediate;

insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
values (9140000000001, :'owner', current_date - 3, 'ZL BREW 1', 'zl brew', 4.50, 0.50, 'mapped'),
       (9140000000002, :'owner', current_date - 3, 'ZL BREW 2', 'zl brew', 3.00, 0, 'mapped'),
       (9140000000003, :'owner', current_date - 3, 'ZL BREW 3', 'zl brew', 2.90, 0.10, 'pending'),
       (9140000000004, :'owner', current_date - 3, 'ZL BREW 4', 'zl brew', 7.25, 0.75, 'mapped'),
       (9140000000005, :'alice', current_date - 3, 'ZL BREW 5', 'zl brew', 3.60, 0.40, 'mapped');
select is((select invested from private.invest_chunk(9140000000000, 10, 'VTI', interval '1 day')), 3,
  'the engine invests the mapped round-ups (setup)');

create function tests.ledger(p_id bigint)
returns table (status text, round_up numeric, allocation_lot int, open_lots bigint, open_amount numeric)
language sql
as $$
  select t.status, t.round_up, t.allocation_lot::int,
         (select count(*) filter (where a.kind = 'buy') - count(*) filter (where a.kind = 'reversal')
          from public.allocations as a where a.transaction_id = t.id and a.txn_date = t.txn_date),
         (select coalesce(sum(a.amount), 0)
          from public.allocations as a where a.transaction_id = t.id and a.txn_date = t.txn_date)
  from public.transactions as t where t.id = p_id
$$;
grant execute on function tests.ledger(bigint) to authenticated;

-- An admin through the Data API: every attack of the issue ----------------------------------------
select tests.authenticate_as(:'admin');
select results_eq($$with u as (update public.transactions set status = 'mapped' where id = 9140000000005
  returning 1) select count(*)::int from u$$, array[0], 'admin: another user''s rows are out of the tables'' reach');
select throws_ok($$update public.transactions set status = 'mapped' where id = 9140000000001$$,
  '42501', null, 'admin: an invested row''s status cannot go back to mapped (a second buy would follow)');
select throws_like($$update public.transactions set status = 'mapped' where id = 9140000000001$$,
  '%transactions.status of transaction 9140000000001%public.admin_correct_transaction%',
  'the error names the column and the RPC to use');
select throws_ok($$update public.transactions set allocation_lot = 0 where id = 9140000000001$$,
  '42501', null, 'admin: allocation_lot is the engine''s');
select throws_ok($$update public.transactions set allocation_lot = 0, status = 'mapped' where id = 9140000000001$$,
  '42501', null, 'admin: nor with the status at once');
select throws_ok('delete from public.transactions where id = 9140000000001',
  '23503', null, 'admin: a row with lots is not deleted (as before)');
select throws_ok('delete from public.transactions where id = 9140000000002',
  '42501', null, 'admin: an invested row without a lot (nothing to invest) is not deleted either');
select throws_ok('update public.transactions set round_up = round_up + 4.90 where id = 9140000000001',
  '42501', null, 'admin: an invested round-up cannot change (4.90 would never be invested)');
select throws_like('update public.transactions set round_up = round_up + 4.90 where id = 9140000000001',
  '%transactions.round_up%', 'the round_up refusal names round_up');
select throws_ok('update public.transactions set amount = 1.23 where id = 9140000000001',
  '42501', null, 'admin: an invested amount cannot change');
select throws_ok($$update public.transactions set merchant_key = 'zl other' where id = 9140000000001$$,
  '42501', null, 'admin: an invested row''s merchant cannot change');
select throws_ok('update public.transactions set mapping_id = null where id = 9140000000001',
  '42501', null, 'admin: an invested row''s mapping cannot change');
select throws_ok('update public.transactions set txn_date = txn_date + 1 where id = 9140000000001',
  '42501', null, 'admin: an invested row''s date cannot change (same partition)');
select throws_ok('update public.transactions set txn_date = txn_date - 400 where id = 9140000000001',
  '42501', null, 'admin: nor to another partition');
select throws_ok('update public.transactions set id = 9140000000099 where id = 9140000000001',
  '42501', null, 'admin: nor its id');
select throws_ok($$update public.transactions set status = 'invested' where id = 9140000000003$$,
  '42501', null, 'admin: a pending row cannot be set invested');
select throws_ok($$insert into public.transactions (id, user_id, txn_date, descriptor, amount, round_up, status)
  values (9140000000010, '$$ || :'owner' || $$', current_date, 'FAKE', 1.50, 0.50, 'invested')$$,
  '42501', null, 'admin: a row cannot be inserted invested');
select throws_ok($$insert into public.transactions (id, user_id, txn_date, descriptor, amount, round_up, allocation_lot)
  values (9140000000011, '$$ || :'owner' || $$', current_date, 'FAKE', 1.50, 0.50, 3)$$,
  '42501', null, 'admin: nor with a lot number');
select throws_ok($$update public.transactions set status = 'mapped' where id > 9140000000000$$,
  '42501', null, 'admin: a bulk update touching invested rows is refused as a whole');
select results_eq('select status, round_up, allocation_lot, open_lots, open_amount from tests.ledger(9140000000001)',
  $$values ('invested'::text, 0.50::numeric, 1, 1::bigint, 0.50::numeric)$$,
  'after every attempt the invested row still has its one open lot');

-- What stays an admin's to edit.
select lives_ok($$update public.transactions set descriptor = 'ZL BREW #1 FIXED' where id = 9140000000001$$,
  'admin: an invested row''s descriptor is editable');
select lives_ok($$update public.transactions set amount = 2.80, round_up = 0.20, txn_date = txn_date - 1,
  merchant_key = 'zl other' where id = 9140000000003$$, 'admin: a pending purchase is editable');
select lives_ok($$update public.transactions set status = 'failed' where id = 9140000000003$$,
  'admin: statuses among pending / mapped / failed');

-- A user through the Data API: RLS leaves them no row to write -----------------------------------
select tests.authenticate_as(:'alice');
select results_eq($$with u as (update public.transactions set status = 'mapped', round_up = 5 where id = 9140000000005
  returning 1) select count(*)::int from u$$, array[0], 'user: their own invested row is not theirs to update');
select results_eq($$with d as (delete from public.transactions where id = 9140000000005 returning 1)
  select count(*)::int from d$$, array[0], 'user: nor to delete');
select throws_ok($$insert into public.transactions (user_id, txn_date, descriptor, amount, status)
  values ('$$ || :'alice' || $$', current_date, 'FAKE', 1, 'invested')$$, '42501', null, 'user: nor to insert invested');
select throws_ok('select public.admin_correct_transaction(9140000000005, current_date - 3, 9.99)',
  '42501', null, 'user: the correction RPC is for admins');
select tests.authenticate_as_anon();
select throws_ok('select public.admin_correct_transaction(9140000000005, current_date - 3, 9.99)',
  '42501', null, 'anon: nor for anon');

-- Trusted roles pass the guard, but not the invariant -----------------------------------------------
select tests.authenticate_as_service_role();
select lives_ok($$update public.transactions set descriptor = 'IMPORT FIX' where id = 9140000000004$$,
  'service_role writes transactions');
select throws_ok($$update public.transactions set status = 'mapped' where id = 9140000000004$$,
  '23514', null, 'service_role: leaving invested without a reversal breaks the invariant');
select tests.clear_authentication();
select throws_ok('update public.transactions set round_up = 5.40 where id = 9140000000004',
  '23514', null, 'postgres: an invested round-up that differs from its open lot breaks the invariant');
select throws_ok($$update public.transactions set status = 'invested' where id = 9140000000003$$,
  '23514', null, 'postgres: invested without a lot breaks the invariant');

-- Deferred by default: a reversal and the status may come in two statements of one transaction.
create function tests.reverse_by_hand(p_id bigint)
returns void
language plpgsql
as $$
begin
  set constraints all deferred;
  insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, kind, lot, price_id, price)
  select transaction_id, txn_date, user_id, ticker, -amount, -shares, 'reversal', lot, price_id, price
  from public.allocations where transaction_id = p_id and kind = 'buy';
  update public.transactions set status = 'mapped' where id = p_id;
  set constraints all immediate;
end;
$$;
select lives_ok('select tests.reverse_by_hand(9140000000004)',
  'postgres: reversal then status, in two statements, commits a whole ledger');
select results_eq('select status, open_lots from tests.ledger(9140000000004)', $$values ('mapped'::text, 0::bigint)$$,
  'that row waits for its next lot');

-- The correction RPC --------------------------------------------------------------------------------
select round_ups as round_ups_before from private.user_totals_of(array[:'owner']::uuid[]) \gset
select tests.authenticate_as(:'admin');
select throws_ok('select public.admin_correct_transaction(9140000000001, current_date - 3)',
  '22023', null, 'nothing to correct is an error');
select throws_ok('select public.admin_correct_transaction(9140000000001, current_date, 9.40)',
  'P0002', null, 'a key that does not exist is not found');
select throws_ok('select public.admin_correct_transaction(9140000000001, current_date - 3, 9.405)',
  '22023', null, 'an amount in fractions of a cent is refused');
select results_eq($$select status, amount, round_up, allocation_lot::int
                    from public.admin_correct_transaction(9140000000001, current_date - 3, 9.40)$$,
  $$values ('mapped'::text, 9.40::numeric(12,2), 0.60::numeric(12,2), 1)$$,
  'admin corrects an invested amount: mapped again, round-up recomputed, lot number kept');
select results_eq($$select kind, amount, lot::int from public.allocations where transaction_id = 9140000000001
                    order by lot, kind$$,
  $$values ('buy'::text, 0.50::numeric(12,2), 1), ('reversal', -0.50, 1)$$, 'its lot is reversed');
select results_eq($$select status, merchant_key, mapping_id
                    from public.admin_correct_transaction(9140000000002, current_date - 3, null, current_date - 2, 'zl unmapped')$$,
  $$values ('pending'::text, 'zl unmapped'::text, null::bigint)$$,
  'a new merchant without an approved mapping: back to pending, mapping cleared');
select throws_ok($$select public.admin_correct_transaction(9140000000002, current_date - 3, 1.00)$$,
  'P0002', null, 'the row moved to its corrected date');
select tests.clear_authentication();
select is((select round_ups - :round_ups_before from private.user_totals_of(array[:'owner']::uuid[])), 0.10::numeric,
  'user totals follow the updates (round-ups 0.50 -> 0.60, 0 -> 0)');

-- The engine invests the corrected row again, the right amount.
select tests.clear_authentication();
select is((select amount from private.invest_chunk(9140000000000, 10, 'VTI', interval '1 day')), 1.35::numeric,
  'the engine invests the corrected 0.60 (and the row reversed by hand, 0.75)');
select results_eq('select status, round_up, allocation_lot, open_lots, open_amount from tests.ledger(9140000000001)',
  $$values ('invested'::text, 0.60::numeric, 2, 1::bigint, 0.60::numeric)$$,
  'one open lot again: lot 2 of the corrected round-up');
select results_eq($$select user_id::text, invested, lots from public.holdings where user_id = '$$ || :'owner' || $$' and ticker = 'ZLBR'$$,
  format($$values (%L, 1.35::numeric(14,2), 2)$$, :'owner'),
  'holdings: the reversed lots are gone, the new ones count (0.60 + 0.75)');

-- A date correction of an invested row: the reversal stays under the old key, the new lot is under the new one.
select tests.authenticate_as(:'admin');
select results_eq($$select status, txn_date from public.admin_correct_transaction(9140000000001, current_date - 3, null, current_date - 40)$$,
  $$values ('mapped'::text, current_date - 40)$$, 'admin corrects an invested date (another month)');
select tests.clear_authentication();
select is((select invested from private.invest_chunk(9140000000000, 10, 'VTI', interval '1 day')), 1,
  'the engine invests it again');
select results_eq($$select txn_date, kind, lot::int from public.allocations where transaction_id = 9140000000001
                    order by lot, kind$$,
  $$values (current_date - 3, 'buy'::text, 1), (current_date - 3, 'reversal', 1), (current_date - 3, 'buy', 2),
           (current_date - 3, 'reversal', 2), (current_date - 40, 'buy', 3)$$,
  'the history stays whole; lot 3 is recorded under the corrected date');

select tests.clear_authentication();
select * from finish();
rollback;
