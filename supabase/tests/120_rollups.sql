-- Chart rollups: admin-only (no API role reads them or their functions; the admin API reads them as
-- the owner); the triggers put late rows, corrections, reviews and reversals in their buckets; the
-- backfill rebuilds them exactly.
begin;
\ir _helpers.psql
select plan(61);

-- No API role, not even an admin's token, reads a rollup or calls a chart function ----------------
create function tests.rollups_refused(p_who text)
returns setof text
language plpgsql
as $$
declare
  target text;
begin
  foreach target in array array[
    'select * from private.transaction_rollups', 'select * from private.transaction_rollup_deltas',
    'select * from private.allocation_rollups', 'select * from private.mapping_rollups',
    'select * from private.rollup_backfills',
    'select * from private.analytics_category_months(current_date - 30, current_date + 1)',
    'select * from private.analytics_activity(current_date - 30, current_date + 1, ''day'')',
    'select private.backfill_rollups_chunk(''transactions'', 10)',
    'select private.restart_rollup_backfill(''transactions'')',
    'select private.compact_rollups()'
  ] loop
    return next throws_ok(target, '42501', null, p_who || ' cannot run: ' || target);
  end loop;
end;
$$;
grant execute on function tests.rollups_refused(text) to anon, authenticated, service_role;

-- Admins see the charts through the admin API, which reads them as the owner.
select tests.authenticate_as(:'alice');
select * from tests.rollups_refused('a user');
select tests.authenticate_as(:'admin');
select * from tests.rollups_refused('an admin''s token');
select tests.authenticate_as_anon();
select * from tests.rollups_refused('anon');
select tests.authenticate_as_service_role();
select * from tests.rollups_refused('the secret key''s role');
select tests.clear_authentication();

-- The triggers -------------------------------------------------------------------------------------
create function tests.rollup_day(p_day date, p_key text)
returns table (transactions bigint, amount numeric, round_up numeric)
language sql
as $$
  select sum(transactions)::bigint, sum(amount), sum(round_up)
  from private.transaction_rollup_rows('day_merchant', p_day, p_day + 1) where merchant_key = p_key
  having sum(transactions) <> 0
$$;
create function tests.rollup_month(p_month date, p_key text)
returns table (transactions bigint, amount numeric, round_up numeric)
language sql
as $$
  select sum(transactions)::bigint, sum(amount), sum(round_up)
  from private.transaction_rollup_rows('month_merchant', p_month, p_month + 1) where merchant_key = p_key
  having sum(transactions) <> 0
$$;

insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
values (9110000000001, :'alice', '2026-03-14', 'ZR ONE', 'zr one', 4.25, 0.75, 'pending'),
       (9110000000002, :'bob', '2026-03-14', 'ZR ONE', 'zr one', 1.10, 0.90, 'pending'),
       (9110000000003, :'bob', '2024-01-31', 'ZR ONE', 'zr one', 9.99, 0.01, 'pending');
select results_eq($$select * from tests.rollup_day('2026-03-14', 'zr one')$$,
  $$values (2::bigint, 5.35::numeric, 1.65::numeric)$$, 'an insert lands in its day x merchant bucket');
select results_eq($$select * from tests.rollup_month('2024-01-01', 'zr one')$$,
  $$values (1::bigint, 9.99::numeric, 0.01::numeric)$$, 'a late row of an old month lands in that month');

update public.transactions set txn_date = '2026-02-28', amount = 5.25 where id = 9110000000001;
select results_eq($$select * from tests.rollup_day('2026-03-14', 'zr one')$$,
  $$values (1::bigint, 1.10::numeric, 0.90::numeric)$$, 'a corrected date leaves its old day');
select results_eq($$select * from tests.rollup_month('2026-02-01', 'zr one')$$,
  $$values (1::bigint, 5.25::numeric, 0.75::numeric)$$, '... and lands, with its corrected amount, in the new month');

select private.compact_rollups();
delete from public.transactions where id = 9110000000002;
select is((select count(*)::int from tests.rollup_day('2026-03-14', 'zr one')), 0,
  'a delete empties its bucket (compacted totals plus the delete''s delta)');

-- Reviews move a mapping between the status columns of its creation day and count on the review day.
insert into public.llm_mappings (merchant_name, merchant_key, status, category, created_at)
values ('ZR TWO', 'zr two', 'pending', 'FOOD_AND_DRINK', '2026-03-01 12:00+00') returning id as zr_two \gset
select results_eq($$select created, pending, admin_approved from private.analytics_mapping_throughput('2026-03-01', '2026-03-02')$$,
  $$select created, pending, admin_approved from private.analytics_mapping_throughput_scan('2026-03-01', '2026-03-02')$$,
  'a new pending mapping counts on its creation day');
update public.llm_mappings set status = 'approved', admin_approved = true, reviewer = :'admin', reviewed_at = now()
where id = :zr_two;
select results_eq($$select created, auto_approved, admin_approved, rejected, pending
                    from private.analytics_mapping_throughput('2026-03-01', '2026-03-02')$$,
  $$select created, auto_approved, admin_approved, rejected, pending
    from private.analytics_mapping_throughput_scan('2026-03-01', '2026-03-02')$$,
  'its review moves it from pending to admin approved on the same creation day');
select ok((select reviewed >= 1 from private.analytics_mapping_throughput(current_date, current_date + 1)),
  'and counts as reviewed today');

-- An allocation and its reversal land in their transaction's day; the reversal nets it out.
select tests.test_price('ZRTK', 10) as zr_price \gset
insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, kind, lot, price_id, price)
values (9110000000003, '2024-01-31', :'bob', 'ZRTK', 0.01, 0.001, 'buy', 1, :zr_price, 10);
select results_eq($$select lots, amount from private.analytics_ticker_months('2024-01-01', '2024-02-01')
                    where ticker = 'ZRTK'$$,
  $$values (1::bigint, 0.01::numeric)$$, 'a buy counts in its transaction''s month and ticker');
insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, kind, lot, price_id, price)
values (9110000000003, '2024-01-31', :'bob', 'ZRTK', -0.01, -0.001, 'reversal', 1, :zr_price, 10);
select is((select count(*)::int from private.analytics_ticker_months('2024-01-01', '2024-02-01') where ticker = 'ZRTK'), 0,
  'its reversal, written today, nets it out in that same month');

-- Every chart equals its recomputation --------------------------------------------------------------
select set_eq($$select * from private.analytics_category_months('2020-01-01', current_date + 1)$$,
  $$select * from private.analytics_category_months_scan('2020-01-01', current_date + 1)$$,
  'category months equal the scan');
select set_eq($$select * from private.analytics_category_months('2026-02-10', '2026-03-20')$$,
  $$select * from private.analytics_category_months_scan('2026-02-10', '2026-03-20')$$,
  'also for a window that cuts months');
select results_eq($$select * from private.analytics_top_merchants('2020-01-01', current_date + 1, 100)$$,
  $$select * from private.analytics_top_merchants_scan('2020-01-01', current_date + 1, 100)$$,
  'top merchants equal the scan');

-- A review moves a merchant's whole history to its new category, before and after compaction.
select private.compact_rollups();
with m as (
  insert into public.llm_mappings (merchant_name, merchant_key, status, admin_approved, category)
  values ('ZR ONE', 'zr one', 'approved', true, 'TRAVEL') returning id, created_at)
insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
select 'zr one', 'ZR One', id, created_at from m;
select set_eq($$select * from private.analytics_category_months('2020-01-01', current_date + 1) where category = 'TRAVEL'$$,
  $$select * from private.analytics_category_months_scan('2020-01-01', current_date + 1) where category = 'TRAVEL'$$,
  'a merchant''s first mapping moves its unmapped history to the mapping''s category at once');
select private.compact_rollups();
update public.llm_mappings set category = 'ENTERTAINMENT' where merchant_key = 'zr one' and category = 'TRAVEL';
select set_eq($$select * from private.analytics_category_months('2020-01-01', current_date + 1)$$,
  $$select * from private.analytics_category_months_scan('2020-01-01', current_date + 1)$$,
  'an edited category of the mapping in force moves it again');
select ok(exists (select 1 from private.analytics_category_months('2020-01-01', current_date + 1)
                  where category = 'ENTERTAINMENT'), 'under the edited category');
select private.compact_rollups();
select set_eq($$select * from private.analytics_category_months('2020-01-01', current_date + 1)$$,
  $$select * from private.analytics_category_months_scan('2020-01-01', current_date + 1)$$,
  'and compaction files it there');

-- The backfill rebuilds them exactly, chunk by chunk ------------------------------------------------
select ok(private.restart_rollup_backfill('transactions') > 0, 'a restart makes every current row the backfill''s');
select is((select count(*)::int from private.transaction_rollup_rows('day', '2020-01-01', current_date + 1)), 0,
  'until the backfill runs, the rollups are empty');
select private.backfill_rollups_chunk('transactions', 9223372036854775807);
select is(private.backfill_rollups_chunk('transactions', 10), 0::bigint, 'a finished backfill has nothing left to count');
select set_eq($$select * from private.analytics_activity('2020-01-01', current_date + 1, 'month')$$,
  $$select * from private.analytics_activity_scan('2020-01-01', current_date + 1, 'month')$$,
  'after the backfill, activity per month equals the scan');

select * from finish();
rollback;
