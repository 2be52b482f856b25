-- Bulk review chunks name the merchant keys they changed (the job drops them from the mapping cache).
begin;
\ir _helpers.psql
select plan(4);

insert into public.llm_mappings (merchant_name, merchant_key, company_name, category, confidence)
select 'ZQR BULK ' || g, 'zqr bulk ' || (g % 2), 'Bulk Co', 'FOOD_AND_DRINK', 0.3 from generate_series(1, 3) as g;
select jsonb_build_object('ids', jsonb_agg(jsonb_build_array(id, created_at))) as bulk_ids
from public.llm_mappings where merchant_key like 'zqr bulk %' \gset
select is((select (reviewed_count, merchant_keys)::text
           from private.bulk_review_mappings_chunk_keys('rejected', :'admin', :'bulk_ids', 1000)),
  '(3,"{""zqr bulk 0"",""zqr bulk 1""}")', 'a chunk returns its count and distinct merchant keys');
select is((select (reviewed_count, merchant_keys)::text
           from private.bulk_review_mappings_chunk_keys('rejected', :'admin', :'bulk_ids', 1000)),
  '(0,{})', 'the last chunk reviews nothing');
insert into public.llm_mappings (merchant_name, merchant_key) values ('ZQR BULK 2', 'zqr bulk 2');
select is(private.bulk_review_mappings_chunk('rejected', :'admin', '{"filter": {"merchant_key": "zqr bulk 2"}}'), 1,
  'the count-only chunk still answers for its callers');

select tests.authenticate_as(:'admin');
select throws_ok($$select * from private.bulk_review_mappings_chunk_keys('rejected', null, '{"ids": []}')$$, '42501',
  null, 'API callers, even admins, cannot call the chunk function');

select * from finish();
rollback;
