-- The database contract: tables, columns, RLS everywhere, indexes, partitions, function hygiene.
begin;
\ir _helpers.psql
select plan(44);

select has_table('public', t, 'table public.' || t || ' exists')
from unnest(array['profiles', 'merchants', 'llm_mappings', 'transactions', 'allocations', 'prices', 'holdings']) as t;
select has_table('private', t, 'chart rollup table private.' || t || ' exists')
from unnest(array['transaction_rollups', 'transaction_rollup_deltas', 'allocation_rollups', 'allocation_rollup_deltas',
                  'mapping_rollups', 'mapping_rollup_deltas', 'rollup_backfills']) as t;

select columns_are('public', 'profiles',
  array['id', 'email', 'display_name', 'role', 'created_at', 'updated_at']);
select columns_are('public', 'merchants',
  array['id', 'merchant_key', 'display_name', 'mapping_id', 'mapping_created_at', 'created_at', 'updated_at']);
select columns_are('public', 'llm_mappings', array[
  'id', 'created_at', 'merchant_name', 'merchant_key', 'company_name', 'ticker', 'category', 'confidence',
  'status', 'admin_approved', 'source', 'tier', 'model', 'prompt_version', 'reason', 'reviewer',
  'reviewed_at', 'updated_at', 'import_job_id', 'submitted_by', 'provider_state', 'provider_attempts',
  'provider_error', 'next_attempt_at', 'note']);
select columns_are('public', 'transactions', array[
  'id', 'user_id', 'txn_date', 'descriptor', 'merchant_key', 'amount', 'round_up', 'status', 'mapping_id',
  'import_job_id', 'import_line', 'created_at', 'updated_at', 'allocation_lot', 'sweep_id']);
select columns_are('public', 'allocations', array[
  'id', 'transaction_id', 'txn_date', 'user_id', 'ticker', 'amount', 'shares', 'created_at', 'kind', 'lot',
  'price_id', 'price', 'mapping_id', 'mapping_created_at']);
select columns_are('public', 'prices', array['id', 'ticker', 'as_of', 'price', 'source', 'fetched_at']);
select columns_are('public', 'holdings', array['user_id', 'ticker', 'shares', 'invested', 'lots', 'updated_at']);
select col_is_unique('public', 'allocations', array['transaction_id', 'txn_date', 'lot', 'kind'],
  'one buy and at most one reversal per lot of a transaction');

select col_type_is('public', 'llm_mappings', 'confidence', 'numeric(5,4)', 'confidence is numeric(5,4)');
select col_type_is('public', 'transactions', 'amount', 'numeric(12,2)', 'amount is numeric(12,2)');
select col_type_is('public', 'allocations', 'shares', 'numeric(18,8)', 'shares is numeric(18,8)');
select col_is_pk('public', 'llm_mappings', array['id', 'created_at'], 'llm_mappings pk is (id, created_at)');
select col_is_pk('public', 'transactions', array['id', 'txn_date'], 'transactions pk is (id, txn_date)');
select col_is_unique('public', 'merchants', array['merchant_key'], 'one merchants row per key');

-- Every table in public, partitioned or not, has RLS on (catches tables added by later migrations too).
select is_empty($$
  select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity
$$, 'every table in public has row-level security enabled');

-- No partition is exposed through the Data API.
select is_empty($$
  select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
  join pg_namespace n on n.oid = c.relnamespace
  where i.inhparent in ('public.llm_mappings'::regclass, 'public.transactions'::regclass)
    and n.nspname <> 'private'
$$, 'partitions live in schema private');

-- Policies follow the performance rules: an explicit role, never PUBLIC; no FOR ALL.
select is_empty($$
  select tablename || '.' || policyname from pg_policies
  where schemaname in ('public', 'realtime') and ('public' = any (roles) or cmd = 'ALL')
$$, 'every policy names its role and one operation');
select is_empty($$
  select tablename || '.' || policyname from pg_policies
  where schemaname in ('public', 'realtime')
    and (coalesce(qual, '') || coalesce(with_check, '')) ~ '(?<!SELECT )(auth\.uid\(\)|private\.is_admin\(\))'
$$, 'auth.uid() and private.is_admin() are always wrapped in a select');

-- Security definer functions of ours pin search_path.
select is_empty($$
  select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname in ('public', 'private') and p.prosecdef
    and not coalesce(p.proconfig, '{}') @> array['search_path=""']
$$, 'every security definer function sets search_path = ''''');

select has_index('public', 'llm_mappings', 'llm_mappings_merchant_name_trgm_idx', 'trigram index on lower(merchant_name)');
select has_index('public', 'llm_mappings', 'llm_mappings_status_admin_approved_idx', 'index on (status, admin_approved)');
select has_index('public', 'llm_mappings', 'llm_mappings_category_created_idx', 'index on (category, created_at desc, id desc)');
select has_index('public', 'llm_mappings', 'llm_mappings_created_at_id_idx', 'index on created_at desc');
select has_index('public', 'llm_mappings', 'llm_mappings_pending_idx', 'partial pending index');
select has_index('public', 'transactions', 'transactions_user_date_idx', 'index on (user_id, txn_date desc)');
select has_index('public', 'transactions', 'transactions_status_date_idx', 'index on (status, txn_date desc, id desc)');

select is((select p.provolatile::text from pg_proc p where p.oid = 'private.is_admin()'::regprocedure), 's',
  'private.is_admin() is stable');
select ok((select p.prosecdef from pg_proc p where p.oid = 'private.is_admin()'::regprocedure),
  'private.is_admin() is security definer');

select is(
  array(select tablename::text from pg_publication_tables
        where pubname = 'supabase_realtime' and schemaname = 'public' order by 1),
  array['merchants', 'profiles'],
  'supabase_realtime publishes exactly merchants and profiles');

select set_eq($$ select jobname || ' ' || schedule from cron.job where jobname like 'kamioi-%' $$,
  array['kamioi-maintain-partitions 15 3 * * *', 'kamioi-compact-stats * * * * *',
        'kamioi-reask-merchants * * * * *', 'kamioi-invest-mapped * * * * *',
        'kamioi-compact-user-totals * * * * *', 'kamioi-compact-rollups * * * * *', 'kamioi-deliver-mail * * * * *'],
  'pg_cron runs partition maintenance daily; stats, user-total and rollup compaction, the merchant re-ask, investing and mail schedulers every minute');

select * from finish();
rollback;
