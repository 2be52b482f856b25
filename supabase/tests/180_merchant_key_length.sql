-- One merchant key length limit (500 characters) for every entry point, held by the database.
begin;
\ir _helpers.psql
select plan(5);

select lives_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, company_name, category, source)
    values ('180 fits', repeat('k', 500), 'Fits', 'GENERAL_MERCHANDISE', 'admin')$$,
  'a mapping whose key has 500 characters is stored');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, company_name, category, source)
    values ('180 long', repeat('k', 501), 'Long', 'GENERAL_MERCHANDISE', 'admin')$$,
  '23514', null, 'a mapping whose key has 501 characters is refused');
select throws_ok(
  $$update public.llm_mappings set merchant_key = repeat('k', 10000) where merchant_key = repeat('k', 500)$$,
  '23514', null, 'a key cannot grow past the limit either');
select throws_ok(
  $$insert into public.merchants (merchant_key, display_name) values (repeat('m', 501), 'Long')$$,
  '23514', null, 'a merchant whose key has 501 characters is refused');
select is(
  (select count(*) from pg_inherits as i
    where i.inhparent = 'public.llm_mappings'::regclass
      and not exists (select 1 from pg_constraint as c
                       where c.conrelid = i.inhrelid and c.conname = 'llm_mappings_merchant_key_length')),
  0::bigint, 'every partition holds the check');

select * from finish();
rollback;
