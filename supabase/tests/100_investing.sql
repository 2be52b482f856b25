-- Investing: who may read and write prices, holdings and allocations; the allocation engine's
-- rules (one buy per mapped round-up at a fresh price, fallback fund, zero round-ups, unlinking,
-- held tickers, exactly once); corrections (reversal, reinvestment as the next lot); broadcasts.
begin;
\ir _helpers.psql
select plan(44);

-- Merchants: a listed brand, a private one (no ticker: the fallback fund), one whose ticker has no
-- price, one with a stale price, one whose mapping was rejected after its transactions were mapped.
create function tests.merchant(p_key text, p_ticker text, p_status text default 'approved')
returns bigint
language sql
as $$
  with m as (
    insert into public.llm_mappings (merchant_name, merchant_key, ticker, status, admin_approved, category)
    values (upper(p_key), p_key, p_ticker, p_status, p_status = 'approved', 'FOOD_AND_DRINK')
    returning id, created_at)
  insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
  select p_key, p_key, id, created_at from m
  returning mapping_id
$$;
select tests.merchant('zq brew', 'SBUX') as brew_id \gset
select tests.merchant('zq local', null) as local_id \gset
select tests.merchant('zq noprice', 'ZQNP') as noprice_id \gset
select tests.merchant('zq stale', 'ZQST') as stale_id \gset
select tests.merchant('zq gone', 'MCD', 'rejected') as gone_id \gset
select tests.test_price('SBUX', 50) as sbux_price \gset
select tests.test_price('VTI', 250) as vti_price \gset
insert into public.prices (ticker, as_of, price, source) values ('ZQST', now() - interval '2 days', 10, 'test');

insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
values (9100000000001, :'alice', current_date, 'ZQ BREW 1', 'zq brew', 4.50, 0.50, 'mapped'),
       (9100000000002, :'alice', current_date - 40, 'ZQ BREW 2', 'zq brew', 3.75, 0.25, 'mapped'),
       (9100000000003, :'bob', current_date, 'ZQ BREW 3', 'zq brew', 2.25, 0.75, 'mapped'),
       (9100000000004, :'alice', current_date, 'ZQ LOCAL', 'zq local', 9.60, 0.40, 'mapped'),
       (9100000000005, :'alice', current_date, 'ZQ BREW 4', 'zq brew', 5.00, 0, 'mapped'),
       (9100000000006, :'alice', current_date, 'ZQ NOPRICE', 'zq noprice', 1.70, 0.30, 'mapped'),
       (9100000000007, :'bob', current_date, 'ZQ GONE', 'zq gone', 1.80, 0.20, 'mapped'),
       (9100000000008, :'bob', current_date, 'ZQ STALE', 'zq stale', 1.90, 0.10, 'mapped');

create function tests.plan_lines(p_query text)
returns setof text
language plpgsql
as $$
begin
  return query execute 'explain (costs off) ' || p_query;
end;
$$;

-- The engine ----------------------------------------------------------------------------------
select results_eq(
  $$select invested, amount, nothing_to_invest, unlinked, held, unpriced_tickers
    from private.invest_chunk(9100000000000, 100, 'VTI', interval '1 day')$$,
  $$values (4, 1.90::numeric, 1, 1, 2, array['ZQNP', 'ZQST'])$$,
  'a chunk invests what has a fresh price, skips zero round-ups, unlinks the rejected, holds the unpriced');
select results_eq(
  'select id, status, allocation_lot::int from public.transactions where id > 9100000000000 order by id',
  $$values (9100000000001::bigint, 'invested'::text, 1), (9100000000002, 'invested', 1),
           (9100000000003, 'invested', 1), (9100000000004, 'invested', 1), (9100000000005, 'invested', 0),
           (9100000000006, 'mapped', 0), (9100000000007, 'pending', 0), (9100000000008, 'mapped', 0)$$,
  'statuses move in the same statement: invested, nothing to invest, back to pending, still mapped');
select results_eq(
  $$select transaction_id, ticker, amount, shares, price_id, price, kind, lot::int, mapping_id
    from public.allocations where transaction_id > 9100000000000 order by transaction_id$$,
  format($$values (9100000000001::bigint, 'SBUX'::text, 0.50::numeric(12,2), 0.01::numeric(18,8), %1$s::bigint, 50::numeric(18,6), 'buy'::text, 1, %3$s::bigint),
                 (9100000000002, 'SBUX', 0.25, 0.005, %1$s, 50, 'buy', 1, %3$s),
                 (9100000000003, 'SBUX', 0.75, 0.015, %1$s, 50, 'buy', 1, %3$s),
                 (9100000000004, 'VTI', 0.40, 0.0016, %2$s, 250, 'buy', 1, %4$s)$$,
         :sbux_price, :vti_price, :brew_id, :local_id),
  'one buy per round-up: shares = amount / price (8 dp) at the recorded price; no ticker -> the fallback fund');
select results_eq(
  $$select user_id::text, ticker, shares, invested, lots from public.holdings
    where user_id in ('$$ || :'alice' || $$', '$$ || :'bob' || $$') order by user_id = '$$ || :'alice' || $$' desc, ticker$$,
  format($$values (%1$L, 'SBUX'::text, 0.015::numeric(20,8), 0.75::numeric(14,2), 2),
                 (%1$L, 'VTI', 0.0016, 0.40, 1),
                 (%2$L, 'SBUX', 0.015, 0.75, 1)$$, :'alice', :'bob'),
  'holdings are the sums of each user''s allocations per ticker');
select results_eq(
  $$select topic, payload ->> 'count' from realtime.messages
    where event = 'allocation_changed' and topic in ('user:$$ || :'alice' || $$:transactions', 'user:$$ || :'bob' || $$:transactions')
    order by topic = 'user:$$ || :'alice' || $$:transactions' desc$$,
  format($$values ('user:%s:transactions'::text, '3'::text), ('user:%s:transactions', '1')$$, :'alice', :'bob'),
  'one allocation_changed broadcast per user for the statement');
select results_eq(
  $$select invested, unpriced_tickers from private.invest_chunk(9100000000000, 100, 'VTI', interval '1 day')$$,
  $$values (0, array['ZQNP', 'ZQST'])$$, 'running the engine again invests nothing twice');
select results_eq(
  $$select invested from private.invest_chunk(9100000000000, 100, 'VTI', interval '3 days')$$,
  array[1], 'a quote within the allowed age is used (the stale one, once the age allows it)');
select results_eq(
  $$select invested, held from private.invest_chunk(9100000000000, 100, '', interval '1 day')$$,
  $$values (0, 1)$$, 'without a fallback fund nothing more happens to the held transaction');

-- Why round-ups wait, and the dashboard ---------------------------------------------------------
-- The backlog is global: compare what these rows add to it.
create temporary table backlog_before as select * from public.investing_backlog('');
insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
values (9100000000009, :'alice', current_date, 'ZQ LOCAL 2', 'zq local', 9.10, 0.90, 'mapped');
insert into private.price_holds (ticker, reason, retry_at) values ('ZQNP', 'unknown_ticker', now() + interval '1 hour');
grant select on backlog_before to authenticated;
select tests.authenticate_as(:'admin');
select results_eq(
  $$select b.reason, b.transactions - coalesce(a.transactions, 0), b.round_up - coalesce(a.round_up, 0)
    from public.investing_backlog('') as b left join backlog_before as a using (reason)
    where b.reason in ('unknown_ticker', 'no_ticker') order by b.reason$$,
  $$values ('no_ticker'::text, 1::bigint, 0.90::numeric), ('unknown_ticker', 1, 0.30)$$,
  'investing_backlog says why mapped round-ups wait: the ticker''s hold, or no ticker without a fallback');
select is((select count(*)::int from public.investing_backlog('VTI') where reason = 'no_ticker'), 0,
  'with the fallback fund no round-up waits for a ticker');
select ok((public.dashboard_stats() -> 'investing' ->> 'invested')::numeric >= 2.00,
  'the admin dashboard shows the amount invested');
select tests.clear_authentication();

-- Corrections -----------------------------------------------------------------------------------
select tests.authenticate_as(:'admin');
select id as brew_mapping, created_at as brew_at from public.llm_mappings where id = :brew_id \gset
select public.review_mapping(:brew_mapping, :'brew_at', 'rejected');
select tests.clear_authentication();
select ok(exists (select 1 from private.correction_requests where mapping_id = :brew_id)
          and exists (select 1 from private.job_queue where kind = 'allocations.correct' and state = 'queued'),
  'rejecting a mapping that chose lots requests its correction and queues the correction job');
select results_eq(format('select private.correct_allocations_chunk(%s, %L, 100)', :brew_id, 'VTI'),
  array[3], 'the correction reverses each open lot of the mapping');
select results_eq(
  $$select transaction_id, amount, shares, price_id, lot::int from public.allocations
    where kind = 'reversal' and transaction_id > 9100000000000 order by transaction_id$$,
  format($$values (9100000000001::bigint, -0.50::numeric(12,2), -0.01::numeric(18,8), %1$s::bigint, 1),
                 (9100000000002, -0.25, -0.005, %1$s, 1), (9100000000003, -0.75, -0.015, %1$s, 1)$$, :sbux_price),
  'a reversal negates its lot at the buy''s own price');
select is((select count(*)::int from public.allocations where kind = 'buy' and mapping_id = :brew_id), 3,
  'the original buys are kept (history is never rewritten)');
select results_eq(
  $$select status, mapping_id from public.transactions where id in (9100000000001, 9100000000002, 9100000000003)$$,
  $$values ('pending'::text, null::bigint), ('pending', null), ('pending', null)$$,
  'with no approved mapping in force the corrected transactions wait for one again');
select results_eq(
  $$select shares, invested, lots from public.holdings where user_id = '$$ || :'alice' || $$' and ticker = 'SBUX'$$,
  $$values (0::numeric(20,8), 0::numeric(14,2), 0)$$, 'the reversed position is empty in holdings');
select results_eq(format('select private.correct_allocations_chunk(%s, %L, 100)', :brew_id, 'VTI'),
  array[0], 'a second correction run finds nothing left to reverse');
select results_eq(format('select private.correct_allocations_chunk(%s, %L, 100)', :local_id, 'VTI'),
  array[0], 'a mapping still in force keeps its lots');

-- A new approved mapping for the merchant links them again, and the engine buys the next lot.
select tests.test_price('MCD', 200) as mcd_price \gset
with m as (
  insert into public.llm_mappings (merchant_name, merchant_key, ticker, status, admin_approved, category)
  values ('ZQ BREW', 'zq brew', 'MCD', 'approved', true, 'FOOD_AND_DRINK') returning id, created_at)
update public.merchants as mr set mapping_id = m.id, mapping_created_at = m.created_at
from m where mr.merchant_key = 'zq brew';
select is((select count(*)::int from public.transactions where id in (9100000000001, 9100000000002, 9100000000003)
           and status = 'mapped'), 3, 'the approval links the corrected transactions again');
select results_eq($$select invested from private.invest_chunk(9100000000000, 100, 'VTI', interval '1 day')$$,
  array[4], 'the engine invests them again (with the ticker-less one that waited)');
select results_eq(
  $$select transaction_id, ticker, lot::int from public.allocations
    where kind = 'buy' and lot = 2 and transaction_id > 9100000000000 order by transaction_id$$,
  $$values (9100000000001::bigint, 'MCD'::text, 2), (9100000000002, 'MCD', 2), (9100000000003, 'MCD', 2)$$,
  'as the next lot, in the new ticker');
select is((
  select count(*)::int from (
    select transaction_id, sum(case kind when 'buy' then 1 else -1 end) as open_lots
    from public.allocations where transaction_id > 9100000000000 group by transaction_id) as t
  where open_lots <> 1), 0, 'every invested transaction has exactly one open lot');

-- A ticker change on a mapping in force corrects too.
update public.llm_mappings set ticker = 'SBUX' where id = :local_id;
select ok(exists (select 1 from private.correction_requests where mapping_id = :local_id),
  'a ticker change requests a correction');
select is((select count(*)::int from private.job_queue where kind = 'allocations.correct' and state = 'queued'), 1,
  'one correction job is queued for every requested mapping');
select results_eq(format('select private.correct_allocations_chunk(%s, %L, 100)', :local_id, 'VTI'),
  array[2], 'the lots bought in the old ticker are reversed');
select results_eq(
  $$select status, mapping_id from public.transactions where id in (9100000000004, 9100000000009) order by id$$,
  format($$values ('mapped'::text, %1$s::bigint), ('mapped', %1$s)$$, :local_id),
  'the mapping still stands: its transactions are mapped again, ready for the next lot');

-- Who may read and write --------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok('select * from public.prices', '42501', null, 'anon cannot read prices');
select throws_ok('select * from public.holdings', '42501', null, 'anon cannot read holdings');
select throws_ok('select * from public.investing_backlog()', '42501', null, 'anon cannot call investing_backlog');

select tests.authenticate_as(:'alice');
select ok((select count(*) from public.prices where ticker = 'SBUX') > 0, 'a user reads prices');
select throws_ok($$insert into public.prices (ticker, as_of, price, source) values ('SBUX', now(), 1, 'user')$$,
  '42501', null, 'a user cannot insert prices');
select throws_ok('update public.prices set price = 1', '42501', null, 'a user cannot update prices');
select results_eq($$select distinct user_id::text from public.holdings$$, array[:'alice'],
  'a user reads only their own holdings');
select throws_ok($$insert into public.holdings (user_id, ticker, shares, invested, lots)
  values ('$$ || :'alice' || $$', 'AAPL', 1000, 0, 1)$$, '42501', null, 'a user cannot write holdings');
select results_eq($$select distinct user_id::text from public.list_my_allocations()$$, array[:'alice'],
  'list_my_allocations returns only the caller''s allocations');
select results_eq($$select ticker from public.list_my_holdings()$$, array['MCD'],
  'list_my_holdings returns the caller''s open positions only (SBUX and VTI were reversed)');
set local enable_seqscan = off;  -- a test table is tiny: ask whether the key can be sought at all
select ok((select string_agg(p, ' ') from tests.plan_lines(
  'select h.* from public.holdings as h where h.user_id = (select auth.uid()) and h.lots > 0') as p)
  ~ 'Index Cond: \(user_id = ', 'the holdings read seeks the primary key by user');
reset enable_seqscan;
select throws_ok('select * from public.investing_backlog()', '42501', null, 'a user cannot call investing_backlog');
select throws_ok($$select * from private.invest_chunk(0, 10, 'VTI', interval '1 day')$$, '42501', null,
  'a user cannot run the engine');

select tests.authenticate_as(:'bob');
select is_empty($$select * from public.holdings where user_id = '$$ || :'alice' || $$'$$,
  'another user''s holdings are invisible');
select is((select count(*)::int from public.list_my_holdings() where user_id <> :'bob'), 0,
  'list_my_holdings never returns another user''s rows');

select tests.authenticate_as(:'admin');
select throws_ok($$insert into public.prices (ticker, as_of, price, source) values ('SBUX', now(), 1, 'admin')$$,
  '42501', null, 'an admin cannot insert prices either (only the worker records quotes)');
select is_empty($$select * from public.holdings where user_id in ('$$ || :'alice' || $$', '$$ || :'bob' || $$')$$,
  'through the table an admin reads only their own holdings (per-user totals: admin_list_users)');

select tests.clear_authentication();
select * from finish();
rollback;
