-- An admin's review links a bounded number of the merchant's pending transactions inline and queues a
-- transactions.link job for the rest; the job's chunk function finishes the backlog.
begin;
\ir _helpers.psql
select plan(9);

insert into public.llm_mappings (merchant_name, merchant_key, company_name, category, confidence)
values ('ZQBL BACKLOG', 'zqbl backlog', 'Backlog Co', 'FOOD_AND_DRINK', 0.4),
       ('ZQBL SMALL', 'zqbl small', 'Small Co', 'FOOD_AND_DRINK', 0.4);
insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, status)
select :'alice'::uuid, current_date - (g % 40), 'ZQBL BACKLOG ' || g, 'zqbl backlog', 10, 'pending' from generate_series(1, 5) as g
union all
select :'alice'::uuid, current_date, 'ZQBL SMALL', 'zqbl small', 10, 'pending';
select id as backlog_id, created_at as backlog_at from public.llm_mappings where merchant_key = 'zqbl backlog' \gset
select id as small_id, created_at as small_at from public.llm_mappings where merchant_key = 'zqbl small' \gset

create function tests.pending_of(p_key text) returns bigint language sql as $$
  select count(*) from public.transactions where merchant_key = p_key and status = 'pending'
$$;
create function tests.link_jobs_for(p_key text) returns bigint language sql as $$
  select count(*) from private.job_queue where kind = 'transactions.link' and payload ->> 'merchant_key' = p_key
$$;

select tests.authenticate_as(:'admin');
select set_config('kamioi.link_inline_rows', '3', true);
select is((select status from public.review_mapping(:backlog_id, :'backlog_at', 'approved')), 'approved',
  'a merchant with a backlog larger than the inline bound is approved');
select tests.clear_authentication();
select is(tests.pending_of('zqbl backlog'), 2::bigint, 'the bound links that many transactions inline');
select is(tests.link_jobs_for('zqbl backlog'), 1::bigint, 'and queues one transactions.link job for the rest');
select is(current_setting('kamioi.link_inline_rows'), '3', 'the caller''s bound is left as it was');

select is(private.link_pending_transactions('zqbl backlog', 1), 1, 'a chunk links at most its limit');
select is(private.link_pending_transactions('zqbl backlog', 100), 1, 'the next chunk links the rest');
select is((select count(*) from public.transactions
           where merchant_key = 'zqbl backlog' and status = 'mapped' and mapping_id = :backlog_id), 5::bigint,
  'every transaction of the merchant took the approved mapping');

select set_config('kamioi.link_inline_rows', '', true);
select tests.authenticate_as(:'admin');
select public.review_mapping(:small_id, :'small_at', 'approved');
select tests.clear_authentication();
select is(tests.pending_of('zqbl small') + tests.link_jobs_for('zqbl small'), 0::bigint,
  'within the default bound everything is linked inline, no job');

select tests.authenticate_as(:'admin');
select throws_ok($$select private.link_pending_transactions('zqbl backlog', 10)$$, '42501', null,
  'API callers, even admins, cannot call the chunk function');

select * from finish();
rollback;
