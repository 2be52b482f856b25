/*
 * `supabase db lint` (plpgsql_check) finds nothing at level warning. What it found, and the fix:
 *
 * - admin_transactions_page, admin_mappings_page, admin_users_page: defaults written as untyped
 *   literals ('{}' for a text[], 'infinity' for a timestamptz) relied on an implicit cast from text;
 *   they are typed now.
 * - admin_users_page: its page came from RETURN QUERY EXECUTE, whose result plpgsql_check cannot
 *   check against the declared columns ("OUT variable maybe unmodified"). Like admin_transactions_page,
 *   the per-call query now only selects the page's profiles (planned for the filters present); the
 *   totals join is a static statement over that page, checked and with a cached plan.
 * - maintain_partitions: declared the FOR loop's variable, which the loop declares itself.
 *
 * Each body is otherwise the one of 20261204100200_admin_lists.sql / 20261122100700_partition_maintenance.sql.
 */

create or replace function private.admin_transactions_page(
  p_filters jsonb,
  p_before_date date,
  p_before_id bigint,
  p_limit int
)
returns table (
  id bigint, user_id uuid, txn_date date, descriptor text, merchant_key text, amount numeric,
  round_up numeric, status text, mapping_id bigint, import_job_id bigint, import_line bigint,
  allocation_lot smallint, created_at timestamptz, updated_at timestamptz,
  merchant_name text, ticker text, allocations jsonb
)
language plpgsql
stable
security definer
set search_path = ''
-- The enrichment below is static: one cached plan per session (only the page query is planned per call).
set plan_cache_mode = force_generic_plan
as $$
declare
  f jsonb := private.require_known_filters(p_filters, array[
    'status', 'user_id', 'merchant_key', 'mapping_id', 'import_job_id',
    'date_from', 'date_to', 'amount_min', 'amount_max'
  ]);
  conditions text[] := '{}'::text[];
  page public.transactions[];
begin
  if f ? 'status' and f ->> 'status' not in ('pending', 'mapped', 'invested', 'failed') then
    raise exception 'unknown transaction status: %', f ->> 'status'
      using errcode = '22023', hint = 'one of pending, mapped, invested, failed';
  end if;
  perform private.require_range('date', (f ->> 'date_from')::date, (f ->> 'date_to')::date);
  perform private.require_range('amount', (f ->> 'amount_min')::numeric, (f ->> 'amount_max')::numeric);

  if f ? 'status' then conditions := conditions || text 't.status = $1'; end if;
  if f ? 'user_id' then conditions := conditions || text 't.user_id = $2'; end if;
  if f ? 'merchant_key' then conditions := conditions || text 't.merchant_key = $3'; end if;
  if f ? 'mapping_id' then conditions := conditions || text 't.mapping_id = $4'; end if;
  if f ? 'import_job_id' then conditions := conditions || text 't.import_job_id = $5'; end if;
  if f ? 'date_from' then conditions := conditions || text 't.txn_date >= $6'; end if;
  if f ? 'date_to' then conditions := conditions || text 't.txn_date <= $7'; end if;
  if f ? 'amount_min' then conditions := conditions || text 't.amount >= $8'; end if;
  if f ? 'amount_max' then conditions := conditions || text 't.amount <= $9'; end if;
  if p_before_date is not null then
    -- The plain bound prunes newer partitions; the row comparison is the keyset.
    conditions := conditions || text 't.txn_date <= $10' || text '(t.txn_date, t.id) < ($10, $11)';
  end if;

  execute format($query$
    select coalesce(array_agg(t order by t.txn_date desc, t.id desc), '{}')
    from (
      select t.* from public.transactions as t
      where %s
      order by t.txn_date desc, t.id desc
      limit $12
    ) as t
  $query$, coalesce(nullif(array_to_string(conditions, ' and '), ''), 'true'))
  into page
  using f ->> 'status', (f ->> 'user_id')::uuid, f ->> 'merchant_key', (f ->> 'mapping_id')::bigint,
        (f ->> 'import_job_id')::bigint, (f ->> 'date_from')::date, (f ->> 'date_to')::date,
        (f ->> 'amount_min')::numeric, (f ->> 'amount_max')::numeric,
        p_before_date, coalesce(p_before_id, 9223372036854775807), p_limit;

  return query
    with page_allocations as (
      select a.transaction_id, a.txn_date,
             jsonb_agg(jsonb_build_object(
               'id', a.id, 'kind', a.kind, 'lot', a.lot, 'ticker', a.ticker, 'amount', a.amount,
               'shares', a.shares, 'price', a.price, 'created_at', a.created_at
             ) order by a.lot, a.id) as allocations
      from public.allocations as a
      join unnest(page) as k on a.transaction_id = k.id and a.txn_date = k.txn_date
      group by a.transaction_id, a.txn_date
    )
    select p.id, p.user_id, p.txn_date, p.descriptor, p.merchant_key, p.amount::numeric,
           p.round_up::numeric, p.status, p.mapping_id, p.import_job_id, p.import_line,
           p.allocation_lot, p.created_at, p.updated_at,
           m.display_name, mm.ticker, coalesce(pa.allocations, '[]'::jsonb)
    from unnest(page) with ordinality as p
    left join public.merchants as m on m.merchant_key = p.merchant_key
    left join public.llm_mappings as mm on mm.id = m.mapping_id and mm.created_at = m.mapping_created_at
    left join page_allocations as pa on pa.transaction_id = p.id and pa.txn_date = p.txn_date
    order by p.ordinality;
end;
$$;

create or replace function private.admin_mappings_page(
  p_filters jsonb,
  p_sort text,
  p_after_created_at timestamptz,
  p_after_confidence numeric,
  p_after_id bigint,
  p_limit int
)
returns setof public.llm_mappings
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  f jsonb := private.require_known_filters(p_filters, array[
    'status', 'admin_approved', 'category', 'source', 'tier', 'confidence_min', 'confidence_max',
    'merchant_key_prefix', 'created_from', 'created_to', 'search'
  ]);
  sort text := coalesce(p_sort, 'newest');
  needle text := lower(btrim(f ->> 'search'));
  conditions text[] := '{}'::text[];
  ordering text;
  page_sql text;
  remaining int := p_limit;
  got int;
  window_start timestamptz;
  window_end timestamptz := 'infinity'::timestamptz;
  newest_left timestamptz;
  windowed boolean;
begin
  if sort not in ('newest', 'confidence_desc', 'confidence_asc') then
    raise exception 'unknown sort: %', sort using errcode = '22023',
      hint = 'one of newest, confidence_desc, confidence_asc';
  end if;
  if f ? 'status' and f ->> 'status' not in ('pending', 'approved', 'rejected') then
    raise exception 'unknown mapping status: %', f ->> 'status'
      using errcode = '22023', hint = 'one of pending, approved, rejected';
  end if;
  if length(needle) < 3 then
    -- A trigram needs three characters; a shorter term could only scan.
    raise exception 'search needs at least 3 characters' using errcode = '22023';
  end if;
  perform private.require_range('confidence', (f ->> 'confidence_min')::numeric, (f ->> 'confidence_max')::numeric);
  perform private.require_range('created', (f ->> 'created_from')::timestamptz, (f ->> 'created_to')::timestamptz);

  if f ? 'status' then conditions := conditions || text 'm.status = $1'; end if;
  if f ? 'admin_approved' then conditions := conditions || text 'm.admin_approved = $2'; end if;
  if f ? 'category' then conditions := conditions || text 'm.category = $3'; end if;
  if f ? 'source' then conditions := conditions || text 'm.source = $4'; end if;
  if f ? 'tier' then conditions := conditions || text 'm.tier = $5'; end if;
  if f ? 'confidence_min' then conditions := conditions || text 'm.confidence >= $6'; end if;
  if f ? 'confidence_max' then conditions := conditions || text 'm.confidence <= $7'; end if;
  if f ? 'merchant_key_prefix' then conditions := conditions || text 'm.merchant_key like $8'; end if;
  if f ? 'created_from' then conditions := conditions || text 'm.created_at >= $9'; end if;
  if f ? 'created_to' then conditions := conditions || text 'm.created_at <= $10'; end if;
  if needle is not null then conditions := conditions || text 'lower(m.merchant_name) like $11'; end if;

  if sort = 'newest' then
    ordering := 'm.created_at desc, m.id desc';
    if p_after_created_at is not null then
      conditions := conditions || text 'm.created_at <= $12' || text '(m.created_at, m.id) < ($12, $14)';
    end if;
  elsif sort = 'confidence_desc' then
    ordering := 'coalesce(m.confidence, -1) desc, m.id desc';
    if p_after_confidence is not null then
      conditions := conditions || text '(coalesce(m.confidence, -1), m.id) < ($13, $14)';
    end if;
  else
    ordering := 'coalesce(m.confidence, -1), m.id';
    if p_after_confidence is not null then
      conditions := conditions || text '(coalesce(m.confidence, -1), m.id) > ($13, $14)';
    end if;
  end if;

  windowed := sort = 'newest' and (needle is not null or f ? 'merchant_key_prefix');
  if windowed then
    conditions := conditions || text 'm.created_at >= $16 and m.created_at < $17';
  end if;
  page_sql := format(
    'select m.* from public.llm_mappings as m where %s order by %s limit $15',
    coalesce(nullif(array_to_string(conditions, ' and '), ''), 'true'), ordering
  );
  -- A search or key prefix matches rows in no particular order: walked newest first across all
  -- partitions at once (a Merge Append), every partition must yield a match before the first row
  -- comes out, so a rare term read 200k rows. Newest first, such a page is taken one month at a
  -- time instead (each window planned for its own partition: its trigram or prefix index, or its
  -- date walk), skipping empty stretches, until the page is full. Other pages are one query, without
  -- the window's bounds (bounds they do not need cost planning time in every partition).
  if windowed then
    newest_left := coalesce(p_after_created_at, (select max(m.created_at) from public.llm_mappings as m));
    window_start := date_trunc('month', newest_left);
  else
    window_start := '-infinity';
  end if;
  while remaining > 0 and window_start is not null loop
    return query execute page_sql
    using f ->> 'status', (f ->> 'admin_approved')::boolean, f ->> 'category', f ->> 'source',
          f ->> 'tier', (f ->> 'confidence_min')::numeric, (f ->> 'confidence_max')::numeric,
          private.like_literal(f ->> 'merchant_key_prefix') || '%',
          (f ->> 'created_from')::timestamptz, (f ->> 'created_to')::timestamptz,
          '%' || private.like_literal(needle) || '%',
          p_after_created_at, p_after_confidence,
          coalesce(p_after_id, case when sort = 'confidence_asc' then 0 else 9223372036854775807 end),
          remaining, window_start, window_end;
    get diagnostics got = row_count;
    remaining := remaining - got;
    exit when window_start = '-infinity';
    window_end := window_start;
    select date_trunc('month', max(m.created_at)) into window_start
    from public.llm_mappings as m where m.created_at < window_end;
  end loop;
end;
$$;

create or replace function private.admin_users_page(
  p_filters jsonb,
  p_after_created_at timestamptz,
  p_after_email text,
  p_after_id uuid,
  p_limit int
)
returns table (
  id uuid, email text, display_name text, role text, created_at timestamptz, updated_at timestamptz,
  transactions bigint, round_ups numeric, invested numeric
)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  f jsonb := private.require_known_filters(p_filters, array['email_prefix', 'role']);
  conditions text[] := '{}'::text[];
  ordering text;
  page public.profiles[];
begin
  if f ? 'role' and f ->> 'role' not in ('admin', 'user') then
    raise exception 'unknown role: %', f ->> 'role' using errcode = '22023', hint = 'admin or user';
  end if;
  if f ? 'role' then conditions := conditions || text 'p.role = $2'; end if;
  if f ? 'email_prefix' then
    conditions := conditions || text 'lower(p.email) collate "C" like $1';
    ordering := 'lower(p.email) collate "C", p.id';
    if p_after_email is not null then
      conditions := conditions || text '(lower(p.email) collate "C", p.id) > ($4, $5)';
    end if;
  else
    ordering := 'p.created_at desc, p.id desc';
    if p_after_created_at is not null then
      conditions := conditions || text 'p.created_at <= $3' || text '(p.created_at, p.id) < ($3, $5)';
    end if;
  end if;

  execute format($query$
    select coalesce(array_agg(p order by %2$s), '{}')
    from (select p.* from public.profiles as p where %1$s order by %2$s limit $6) as p
  $query$, coalesce(nullif(array_to_string(conditions, ' and '), ''), 'true'), ordering)
  into page
  using private.like_literal(lower(f ->> 'email_prefix')) || '%', f ->> 'role', p_after_created_at,
        lower(p_after_email),
        coalesce(p_after_id, case when f ? 'email_prefix' then '00000000-0000-0000-0000-000000000000'::uuid
                                  else 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid end),
        p_limit;

  return query
    select p.id, p.email, p.display_name, p.role, p.created_at, p.updated_at,
           t.transactions, t.round_ups, t.invested
    from unnest(page) with ordinality as p
    join private.user_totals_of(array(select u.id from unnest(page) as u)) as t on t.user_id = p.id
    order by p.ordinality;
end;
$$;

create or replace function private.maintain_partitions(today date default current_date)
returns table (partition_name text, outcome text)
language plpgsql
set search_path = ''
as $$
declare
  plan record;
  month date;
begin
  for plan in
    select * from (values
      ('public.llm_mappings'::regclass, 3, 12),
      ('public.transactions'::regclass, 24, 3)
    ) as p (parent, months_back, months_ahead)
  loop
    for offset_months in -plan.months_back .. plan.months_ahead loop
      month := (date_trunc('month', today) + make_interval(months => offset_months))::date;
      partition_name := format('%s_p%s', (select c.relname from pg_catalog.pg_class as c where c.oid = plan.parent),
                               to_char(month, 'YYYY_MM'));
      outcome := private.create_month_partition(plan.parent, month);
      return next;
    end loop;
  end loop;
end;
$$;
