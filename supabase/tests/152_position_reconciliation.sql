-- Position reconciliation (private.record_position_check): the broker's quantity per symbol against the
-- books (the sum of fill_allocations.shares, users + house, buys and reversals) over every symbol either
-- side holds. A matching symbol is no break; a differing one, one only at the broker and one only in the
-- books are, with the missing side null; a position closed in the books and absent at the broker is
-- not compared. The overview shows the latest check; API roles cannot record one.
begin;
\ir _helpers.psql
select plan(9);

-- Fixtures (privileged): one order per ticker and its fills.
insert into private.sweeps (id, min_notional) overriding system value values (900000152, 1);
insert into public.broker_orders (id, sweep_id, client_order_id, ticker, notional)
  overriding system value
  select 900000152 + n, 900000152, 'pgtap-900000152-' || t, t, 10
  from unnest(array['ZRCA', 'ZRCB', 'ZRCD', 'ZRCE']) with ordinality as x (t, n);
insert into public.fill_allocations (broker_order_id, execution_id, event_id, user_id, ticker, amount, shares, price, kind)
values (900000153, 'zrc-a', 'zrc-1', :'alice', 'ZRCA', 1.00, 1.0, 1, 'buy'),
       (900000153, 'zrc-a', 'zrc-1', null, 'ZRCA', 0.50, 0.5, 1, 'buy'),
       (900000154, 'zrc-b', 'zrc-2', :'bob', 'ZRCB', 2.00, 2.0, 1, 'buy'),
       (900000154, 'zrc-b', 'zrc-3', :'bob', 'ZRCB', -0.50, -0.5, 1, 'reversal'),
       (900000155, 'zrc-d', 'zrc-4', null, 'ZRCD', 0.25, 0.25, 1, 'buy'),
       (900000156, 'zrc-e', 'zrc-5', :'alice', 'ZRCE', 1.00, 1.0, 1, 'buy'),
       (900000156, 'zrc-e', 'zrc-6', :'alice', 'ZRCE', -1.00, -1.0, 1, 'reversal');

-- The broker agrees with the books on every other ticker the database holds.
select count(*)::int as others from (
  select ticker from public.fill_allocations where ticker not like 'ZRC_' group by ticker having sum(shares) <> 0
) as o \gset
select private.record_position_check(
  (select coalesce(jsonb_agg(jsonb_build_object('symbol', ticker, 'qty', qty)), '[]')
   from (select ticker, sum(shares) as qty from public.fill_allocations
         where ticker not like 'ZRC_' group by ticker having sum(shares) <> 0) as books)
  || '[{"symbol": "ZRCA", "qty": "1.5"}, {"symbol": "ZRCB", "qty": "2"}, {"symbol": "ZRCC", "qty": "3"}]'
) as check_id \gset

select results_eq($$select tickers, breaks from private.position_checks where id = $$ || :check_id,
  $$values ($$ || :others || $$ + 4, 3)$$,
  'four symbols compared (the closed one is not), three breaks');
select results_eq($$select ticker, broker_qty, book_qty, difference from private.position_breaks
                    where check_id = $$ || :check_id || $$ order by ticker$$,
  $$values ('ZRCB'::text, 2::numeric(20, 9), 1.5::numeric(20, 9), 0.5::numeric(20, 9)),
           ('ZRCC', 3, null, 3),
           ('ZRCD', null, 0.25, -0.25)$$,
  'a reversal counts against its buy; a symbol only one side has is a break with the other side null');
select is_empty($$select 1 from private.position_breaks where check_id = $$ || :check_id || $$ and ticker = 'ZRCA'$$,
  'users'' and the house''s shares together match the broker: no break');
select is((public.investing_overview() -> 'reconciliation' ->> 'breaks')::int, 3,
  'the overview shows the latest check');
select is(jsonb_array_length(public.investing_overview() -> 'reconciliation' -> 'break_rows'), 3,
  'and its break rows');

select ok(not has_function_privilege('anon', 'private.record_position_check(jsonb)', 'execute'),
  'anon may not record a check');
select ok(not has_function_privilege('authenticated', 'private.record_position_check(jsonb)', 'execute'),
  'authenticated may not record a check');
select tests.authenticate_as(:'admin');
select throws_ok($$select private.record_position_check('[]')$$, '42501', null,
  'an admin cannot record a check through the Data API');
select tests.authenticate_as_anon();
select throws_ok($$select private.record_position_check('[]')$$, '42501', null, 'anon cannot record a check');

select * from finish();
rollback;
