-- Partition maintenance: months ahead exist, far-past and far-future rows land, rows caught by the
-- default partition move into a month created later, and pinned rows are left alone safely.
begin;
\ir _helpers.psql
set local client_min_messages = error;
select plan(17);

create function tests.partition_of(tableoid oid) returns text language sql as $$ select tableoid::regclass::text $$;

select * from private.maintain_partitions();
select ok(to_regclass('private.llm_mappings_p' || to_char(current_date + interval '1 month', 'YYYY_MM')) is not null,
  'next month''s llm_mappings partition exists after maintenance');
select ok(to_regclass('private.transactions_p' || to_char(current_date + interval '1 month', 'YYYY_MM')) is not null,
  'next month''s transactions partition exists after maintenance');
select ok(to_regclass('private.llm_mappings_p' || to_char(current_date + interval '12 months', 'YYYY_MM')) is not null,
  'llm_mappings partitions reach 12 months ahead');
select ok(to_regclass('private.transactions_p' || to_char(current_date + interval '3 months', 'YYYY_MM')) is not null,
  'transactions partitions reach 3 months ahead');
select ok(to_regclass('private.transactions_p' || to_char(current_date - interval '24 months', 'YYYY_MM')) is not null,
  'transactions partitions reach 24 months back (bank history)');
select is((select count(*)::int from private.maintain_partitions() where outcome <> 'exists'), 0,
  'a second run finds every partition in place');

-- Rows outside the prepared range land in the default partitions.
insert into public.transactions (id, user_id, txn_date, descriptor, amount)
values (9000000000001, :'alice', '1990-01-15', 'OLD', 1), (9000000000002, :'alice', '2999-12-31', 'FUTURE', 1),
       (9000000000003, :'alice', current_date, 'TODAY', 1);
insert into public.llm_mappings (id, created_at, merchant_name, merchant_key)
values (9000000000001, '1970-01-01', 'OLD', 'old'), (9000000000002, '3000-01-01', 'FUTURE', 'future');
select results_eq('select tests.partition_of(tableoid) from public.transactions where id > 9000000000000 order by id',
  array['private.transactions_default', 'private.transactions_default',
        'private.transactions_p' || to_char(current_date, 'YYYY_MM')],
  'far-past and far-future transactions land in the default partition, today''s in its month');
select results_eq('select tests.partition_of(tableoid) from public.llm_mappings where id > 9000000000000 order by id',
  array['private.llm_mappings_default', 'private.llm_mappings_default'],
  'far-past and far-future mappings land in the default partition');

-- A month whose rows sit in the default partition: they move into the new partition.
insert into public.transactions (id, user_id, txn_date, descriptor, amount)
values (9000000000004, :'alice', '2040-03-10', 'EARLY', 5);
insert into public.llm_mappings (id, created_at, merchant_name, merchant_key)
values (9000000000003, '2040-03-10 12:00+00', 'EARLY', 'early');
select public.dashboard_stats() as stats_before \gset
select is(private.create_month_partition('public.transactions', '2040-03-01'), 'moved',
  'creating a month moves its rows out of the default partition');
select is(private.create_month_partition('public.llm_mappings', '2040-03-15'), 'moved',
  'the same for timestamptz-partitioned llm_mappings');
select results_eq('select tests.partition_of(tableoid) from public.transactions where id = 9000000000004',
  array['private.transactions_p2040_03'], 'the transaction now lives in its month');
select results_eq('select tests.partition_of(tableoid) from public.llm_mappings where id = 9000000000003',
  array['private.llm_mappings_p2040_03'], 'the mapping now lives in its month');
select is(public.dashboard_stats(), :'stats_before'::jsonb, 'moving rows between partitions leaves the stats unchanged');
select is(private.create_month_partition('public.transactions', '2040-03-01'), 'exists', 'an existing month is left alone');
select is((select pg_get_expr(c.relpartbound, c.oid) from pg_class c where c.oid = 'private.llm_mappings_p2040_03'::regclass),
  $$FOR VALUES FROM ('2040-03-01 00:00:00+00') TO ('2040-04-01 00:00:00+00')$$, 'month bounds are UTC');

-- Rows that may not be deleted (an invested transaction) stay in the default partition.
insert into public.transactions (id, user_id, txn_date, descriptor, amount, status, allocation_lot)
values (9000000000005, :'alice', '2041-07-04', 'PINNED', 5, 'invested', 1);
insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, price_id, price)
values (9000000000005, '2041-07-04', :'alice', 'SPY', 1, 0.01, tests.test_price('SPY'), 100);
select is(private.create_month_partition('public.transactions', '2041-07-01'), 'skipped',
  'a month whose default-partition rows are referenced is skipped');
select results_eq('select tests.partition_of(tableoid) from public.transactions where id = 9000000000005',
  array['private.transactions_default'], 'the pinned row is still there, in the default partition');

select * from finish();
rollback;
