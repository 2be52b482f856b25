/*
 * Dashboard stats that never scan the big tables, exact at every commit.
 *
 * The seeds' design (a row trigger recomputing COUNT(*) into one stats row) costs a full count per
 * inserted row and serialises every writer on one hot row. Instead:
 *
 * - Statement-level AFTER triggers with transition tables aggregate each statement's changed rows
 *   (one pass, grouping sets) and append a handful of delta rows to private.stat_deltas: a
 *   1M-row INSERT ... SELECT adds ~25 rows; a single-row insert adds ~5. Appending never updates
 *   a shared row, so concurrent writers never queue on a lock. Deltas commit or roll back with
 *   the statement that caused them, so the stats are exact, not eventually consistent.
 * - private.compact_stats() (pg_cron, every minute) folds committed deltas into
 *   private.stat_totals in one statement; it deletes only the deltas its snapshot sees, so rows of
 *   transactions still in flight are folded on a later run and nothing is counted twice.
 * - public.dashboard_stats() reads totals + pending deltas in one snapshot: its cost depends on the
 *   number of metric buckets (~40) and of deltas written since the last compaction, never on the
 *   size of llm_mappings or transactions.
 *
 * Metrics (metric / bucket: n, total):
 *   mappings / '': row count                    mappings.confidence / '': non-null count, sum
 *   mappings.status / status: count             mappings.admin_approved / 'true'|'false': count
 *   mappings.category / category ('' = none)    transactions.status / status: count, sum(amount)
 *   transactions.round_up / status: count, sum(round_up)
 *
 * TRUNCATE of a parent resets its metrics. Row moves between partitions by partition maintenance
 * act on partitions directly, so they fire no parent triggers and leave the counts unchanged.
 */

create table private.stat_deltas (
  metric text not null,
  bucket text not null,
  n bigint not null,
  total numeric not null default 0,
  created_at timestamptz not null default now()
);
-- Deliberately no index: writers only append and the compactor takes everything it can see.
-- Vacuum often so the table stays a few pages long.
alter table private.stat_deltas set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500);
comment on table private.stat_deltas is 'Append-only stat changes, one row per (statement, metric, bucket).';

create table private.stat_totals (
  metric text not null,
  bucket text not null,
  n bigint not null,
  total numeric not null default 0,
  primary key (metric, bucket)
);
comment on table private.stat_totals is 'Compacted stat totals; add private.stat_deltas for the exact value.';

-- The rows a statement changed, signed: +1 for new rows, -1 for old rows. Transition tables exist
-- only for the event that fired, so the query text is chosen per operation (EXECUTE sees them).
create or replace function private.signed_changes(operation text, columns text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case operation
    when 'INSERT' then format('select 1 as sign, %s from new_rows', columns)
    when 'DELETE' then format('select -1 as sign, %s from old_rows', columns)
    else format('select 1 as sign, %1$s from new_rows union all select -1, %1$s from old_rows', columns)
  end
$$;

-- llm_mappings ------------------------------------------------------------------------------------
create or replace function private.record_mapping_stat_deltas()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  execute format($sql$
    insert into private.stat_deltas (metric, bucket, n, total)
    with changes as (%s),
    grouped as (
      select grouping(status, admin_approved, category) as level, status, admin_approved, category,
             sum(sign) as row_delta,
             coalesce(sum(sign) filter (where confidence is not null), 0) as confidence_n,
             coalesce(sum(sign * confidence), 0) as confidence_sum
      from changes
      group by grouping sets ((), (status), (admin_approved), (category))
    )
    select m.metric, m.bucket, m.n, m.total
    from grouped
    cross join lateral (values
      (case level when 7 then 'mappings' when 3 then 'mappings.status'
                  when 5 then 'mappings.admin_approved' else 'mappings.category' end,
       case level when 7 then '' when 3 then status
                  when 5 then admin_approved::text else coalesce(category, '') end,
       row_delta, 0::numeric),
      ('mappings.confidence', '', case when level = 7 then confidence_n end, confidence_sum)
    ) as m (metric, bucket, n, total)
    where m.n is not null and (m.n <> 0 or m.total <> 0)
  $sql$, private.signed_changes(tg_op, 'status, admin_approved, category, confidence'));
  return null;
end;
$$;

create trigger llm_mappings_stats_insert
  after insert on public.llm_mappings
  referencing new table as new_rows
  for each statement execute function private.record_mapping_stat_deltas();
create trigger llm_mappings_stats_update
  after update on public.llm_mappings
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.record_mapping_stat_deltas();
create trigger llm_mappings_stats_delete
  after delete on public.llm_mappings
  referencing old table as old_rows
  for each statement execute function private.record_mapping_stat_deltas();

-- transactions ------------------------------------------------------------------------------------
create or replace function private.record_transaction_stat_deltas()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  execute format($sql$
    insert into private.stat_deltas (metric, bucket, n, total)
    with changes as (%s),
    grouped as (
      select status, sum(sign) as n, sum(sign * amount) as amount, sum(sign * round_up) as round_up
      from changes
      group by status
    )
    select m.metric, grouped.status, grouped.n, m.total
    from grouped
    cross join lateral (values
      ('transactions.status', grouped.amount),
      ('transactions.round_up', grouped.round_up)
    ) as m (metric, total)
    where grouped.n <> 0 or m.total <> 0
  $sql$, private.signed_changes(tg_op, 'status, amount, round_up'));
  return null;
end;
$$;

create trigger transactions_stats_insert
  after insert on public.transactions
  referencing new table as new_rows
  for each statement execute function private.record_transaction_stat_deltas();
create trigger transactions_stats_update
  after update on public.transactions
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.record_transaction_stat_deltas();
create trigger transactions_stats_delete
  after delete on public.transactions
  referencing old table as old_rows
  for each statement execute function private.record_transaction_stat_deltas();

-- TRUNCATE empties a table without row events: forget its metrics.
create or replace function private.reset_stats_on_truncate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  prefix text := case tg_table_name when 'llm_mappings' then 'mappings' else tg_table_name end;
begin
  delete from private.stat_deltas where metric = prefix or metric like prefix || '.%';
  delete from private.stat_totals where metric = prefix or metric like prefix || '.%';
  return null;
end;
$$;

create trigger llm_mappings_stats_truncate
  after truncate on public.llm_mappings
  for each statement execute function private.reset_stats_on_truncate();
create trigger transactions_stats_truncate
  after truncate on public.transactions
  for each statement execute function private.reset_stats_on_truncate();

-- Compaction --------------------------------------------------------------------------------------
create or replace function private.compact_stats()
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  folded bigint;
begin
  with taken as (
    delete from private.stat_deltas returning metric, bucket, n, total
  ), summed as (
    select metric, bucket, sum(n) as n, sum(total) as total, count(*) as deltas
    from taken group by metric, bucket
  ), applied as (
    insert into private.stat_totals as t (metric, bucket, n, total)
    select metric, bucket, n, total from summed
    on conflict (metric, bucket) do update set n = t.n + excluded.n, total = t.total + excluded.total
  )
  select coalesce(sum(deltas), 0) into folded from summed;
  return folded;
end;
$$;
comment on function private.compact_stats() is
  'Fold committed stat deltas into stat_totals (pg_cron, every minute). Returns the number of deltas folded.';

select cron.schedule('kamioi-compact-stats', '* * * * *', 'select private.compact_stats()');

-- The RPC -----------------------------------------------------------------------------------------
-- Admin gate for RPCs: API callers (anon / authenticated) must be admins; service_role and direct
-- connections (the admin API, the worker) are trusted.
create or replace function private.require_admin()
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if current_setting('role', true) in ('anon', 'authenticated') and not (select private.is_admin()) then
    raise exception 'admin role required' using errcode = '42501';
  end if;
end;
$$;
grant execute on function private.require_admin() to authenticated, service_role;

create or replace function public.dashboard_stats()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  result jsonb;
begin
  perform private.require_admin();
  with current_stats as (
    select metric, bucket, sum(n) as n, sum(total) as total
    from (
      select metric, bucket, n, total from private.stat_totals
      union all
      select metric, bucket, n, total from private.stat_deltas
    ) as both_parts
    group by metric, bucket
  ), v as (
    select
      coalesce((select n from current_stats where metric = 'mappings'), 0) as total_mappings,
      coalesce((select n from current_stats where metric = 'mappings.status' and bucket = 'approved'), 0) as approved,
      coalesce((select n from current_stats where metric = 'mappings.status' and bucket = 'pending'), 0) as pending,
      coalesce((select n from current_stats where metric = 'mappings.status' and bucket = 'rejected'), 0) as rejected,
      coalesce((select n from current_stats where metric = 'mappings.admin_approved' and bucket = 'true'), 0)
        as admin_approved,
      (select round(total / nullif(n, 0), 4) from current_stats where metric = 'mappings.confidence')
        as avg_confidence,
      coalesce((select jsonb_object_agg(bucket, n order by bucket) from current_stats
                where metric = 'mappings.category' and bucket <> '' and n > 0), '{}'::jsonb) as categories,
      coalesce((select jsonb_object_agg(s.bucket, jsonb_build_object(
                  'count', s.n, 'amount', s.total,
                  'round_up', coalesce(r.total, 0)) order by s.bucket)
                from current_stats as s
                left join current_stats as r on r.metric = 'transactions.round_up' and r.bucket = s.bucket
                where s.metric = 'transactions.status' and s.n > 0), '{}'::jsonb) as transactions_by_status,
      coalesce((select sum(n) from current_stats where metric = 'transactions.status'), 0) as transactions,
      coalesce((select sum(total) from current_stats where metric = 'transactions.status'), 0) as amount,
      coalesce((select sum(total) from current_stats where metric = 'transactions.round_up'), 0) as round_up
  )
  select jsonb_build_object(
    'mappings', jsonb_build_object(
      'total', total_mappings,
      'approved', approved,
      'pending', pending,
      'rejected', rejected,
      'admin_approved', admin_approved,
      'avg_confidence', avg_confidence,
      'distinct_categories', (select count(*) from jsonb_object_keys(categories)),
      'by_category', categories
    ),
    'transactions', jsonb_build_object(
      'total', transactions,
      'amount', amount,
      'round_up', round_up,
      'by_status', transactions_by_status
    )
  )
  into result
  from v;
  return result;
end;
$$;
comment on function public.dashboard_stats() is
  'Admin dashboard totals, exact and O(1) in table size: compacted totals plus pending deltas.';
revoke execute on function public.dashboard_stats() from public, anon;
grant execute on function public.dashboard_stats() to authenticated, service_role;
