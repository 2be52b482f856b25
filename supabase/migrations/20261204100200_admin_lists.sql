/*
 * The admin lists: every user's transactions, all mappings (the LLM Center) and users, each keyset
 * paged and filtered by any combination of its filters.
 *
 * Each list is a public RPC (admins only: private.require_admin() first, so a user gets 42501, and
 * anon cannot execute it) over a private page function taking the filters as one jsonb object.
 * The RPC caps the page (transactions 100, mappings 50, users 100); the export job
 * (20261204100300_export_jobs.sql) walks the same page function in larger chunks, so a list and
 * its export can never disagree about what a filter means.
 *
 * All three are security definer behind that admin check (admins read every row by policy, so the
 * rows are the same; the tables keep RLS for every other access). Under RLS the planner sees the
 * policy's `user_id = auth.uid() OR is_admin()` on every scan and estimates it very selective: at
 * 20M transactions an amount filter then chose a Seq Scan of every partition and a sort of 860k
 * rows (11 s a page) instead of the date walk. LIKE (prefix, trigram search) and numeric
 * comparisons (the confidence keyset) are not leakproof, so under RLS their indexes could not be
 * used at all (the reason search_mappings is definer too).
 *
 * Plans: a page function builds its WHERE clause from the filters present (EXECUTE ... USING, never
 * string-pasted values) and is planned for those values each call. One generic plan cannot serve
 * "any combination": `($1 is null or status = $1)` hides every index, and which index drives a
 * combination depends on the values (a rare merchant's index range, or the date walk filtered by a
 * common status). Planning with the values also prunes partitions at plan time for the cursor and
 * date range. The indexes and what each filter uses: 20261204100000_admin_list_indexes.sql.
 *
 * - transactions: newest first on (txn_date desc, id desc), cursor = last (txn_date, id). The page
 *   (ids and rows) is the per-call query; each row's merchant display name, the ticker of its
 *   merchant's mapping in force and its allocations (a jsonb array) come from a second, static
 *   statement over the whole page at once (one join over the page's keys, never a query per row),
 *   whose plan is cached: planning its join to the ~40 partitions of llm_mappings on every call
 *   cost 9-14 ms of a page at 20M rows.
 * - mappings: newest first on (created_at desc, id desc), or by confidence (unknown as -1, so last
 *   when descending) on (coalesce(confidence, -1), id) either way.
 * - users: profiles newest first, or ordered by email (C collation, the index's) when searching by
 *   email prefix, each with private.user_totals_of (transactions, round-ups, invested; no counting).
 * Filter values are data: wildcards in a prefix or search are escaped, unknown filter names and
 * impossible values raise 22023 with the reason.
 */

create or replace function private.require_known_filters(p_filters jsonb, p_known text[])
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  unknown text;
begin
  if p_filters is null then
    return '{}'::jsonb;
  end if;
  if jsonb_typeof(p_filters) <> 'object' then
    raise exception 'filters must be a JSON object' using errcode = '22023';
  end if;
  select string_agg(k, ', ' order by k) into unknown
  from jsonb_object_keys(p_filters) as k
  where k <> all (p_known);
  if unknown is not null then
    raise exception 'unknown filter: %', unknown
      using errcode = '22023', hint = 'known filters: ' || array_to_string(p_known, ', ');
  end if;
  return jsonb_strip_nulls(p_filters);
end;
$$;

-- A LIKE pattern matching `needle` literally: its own wildcards escaped (backslash is LIKE's escape).
create or replace function private.like_literal(p_needle text)
returns text
language sql
immutable
set search_path = ''
as $$
  select replace(replace(replace(p_needle, '\', '\\'), '%', '\%'), '_', '\_')
$$;

create or replace function private.require_range(p_name text, p_low anycompatible, p_high anycompatible)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_low is not null and p_high is not null and p_low > p_high then
    raise exception '% range is empty: from % is after to %', p_name, p_low, p_high using errcode = '22023';
  end if;
end;
$$;

-- Transactions -------------------------------------------------------------------------------------
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
  conditions text[] := '{}';
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

create or replace function public.admin_list_transactions(
  p_status text default null,
  p_user_id uuid default null,
  p_merchant_key text default null,
  p_mapping_id bigint default null,
  p_import_job_id bigint default null,
  p_date_from date default null,
  p_date_to date default null,
  p_amount_min numeric default null,
  p_amount_max numeric default null,
  p_before_date date default null,
  p_before_id bigint default null,
  p_limit int default 100
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
as $$
begin
  perform private.require_admin();
  return query select * from private.admin_transactions_page(
    jsonb_build_object(
      'status', p_status, 'user_id', p_user_id, 'merchant_key', p_merchant_key,
      'mapping_id', p_mapping_id, 'import_job_id', p_import_job_id, 'date_from', p_date_from,
      'date_to', p_date_to, 'amount_min', p_amount_min, 'amount_max', p_amount_max
    ),
    p_before_date, p_before_id, least(greatest(coalesce(p_limit, 100), 1), 100)
  );
end;
$$;
comment on function public.admin_list_transactions is
  'Admins: every user''s transactions newest first, filtered, keyset-paged (cursor: last txn_date and id), at most 100, each with its merchant, ticker and allocations.';

-- Mappings (the LLM Center) -----------------------------------------------------------------------
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
  conditions text[] := '{}';
  ordering text;
  page_sql text;
  remaining int := p_limit;
  got int;
  window_start timestamptz;
  window_end timestamptz := 'infinity';
  newest_left timestamptz;
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

  page_sql := format(
    'select m.* from public.llm_mappings as m where %s order by %s limit $15',
    coalesce(nullif(array_to_string(conditions || text 'm.created_at >= $16 and m.created_at < $17', ' and '), ''), 'true'),
    ordering
  );
  -- A search or key prefix matches rows in no particular order: walked newest first across all
  -- partitions at once (a Merge Append), every partition must yield a match before the first row
  -- comes out, so a rare term read 200k rows. Newest first, such a page is taken one month at a
  -- time instead (each window planned for its own partition: its trigram or prefix index, or its
  -- date walk), skipping empty stretches, until the page is full. Other pages take one window.
  if sort = 'newest' and (needle is not null or f ? 'merchant_key_prefix') then
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

create or replace function public.admin_list_mappings(
  p_status text default null,
  p_admin_approved boolean default null,
  p_category text default null,
  p_source text default null,
  p_tier text default null,
  p_confidence_min numeric default null,
  p_confidence_max numeric default null,
  p_merchant_key_prefix text default null,
  p_created_from timestamptz default null,
  p_created_to timestamptz default null,
  p_search text default null,
  p_sort text default 'newest',
  p_after_created_at timestamptz default null,
  p_after_confidence numeric default null,
  p_after_id bigint default null,
  p_limit int default 50
)
returns setof public.llm_mappings
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_admin();
  return query select * from private.admin_mappings_page(
    jsonb_build_object(
      'status', p_status, 'admin_approved', p_admin_approved, 'category', p_category,
      'source', p_source, 'tier', p_tier, 'confidence_min', p_confidence_min,
      'confidence_max', p_confidence_max, 'merchant_key_prefix', p_merchant_key_prefix,
      'created_from', p_created_from, 'created_to', p_created_to, 'search', p_search
    ),
    p_sort, p_after_created_at, p_after_confidence, p_after_id,
    least(greatest(coalesce(p_limit, 50), 1), 50)
  );
end;
$$;
comment on function public.admin_list_mappings is
  'Admins (LLM Center): all mappings filtered, newest first or by confidence, keyset-paged, at most 50.';

-- Users --------------------------------------------------------------------------------------------
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
  conditions text[] := '{}';
  ordering text;
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

  return query execute format($query$
    with page as materialized (
      select p.* from public.profiles as p where %1$s order by %2$s limit $6
    )
    select p.id, p.email, p.display_name, p.role, p.created_at, p.updated_at,
           t.transactions, t.round_ups, t.invested
    from page as p
    join private.user_totals_of(array(select page.id from page)) as t on t.user_id = p.id
    order by %2$s
  $query$, coalesce(nullif(array_to_string(conditions, ' and '), ''), 'true'), ordering)
  using private.like_literal(lower(f ->> 'email_prefix')) || '%', f ->> 'role', p_after_created_at,
        lower(p_after_email),
        coalesce(p_after_id, case when f ? 'email_prefix' then '00000000-0000-0000-0000-000000000000'::uuid
                                  else 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid end),
        p_limit;
end;
$$;

create or replace function public.admin_list_users(
  p_email_prefix text default null,
  p_role text default null,
  p_after_created_at timestamptz default null,
  p_after_email text default null,
  p_after_id uuid default null,
  p_limit int default 100
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
begin
  perform private.require_admin();
  return query select * from private.admin_users_page(
    jsonb_build_object('email_prefix', nullif(btrim(p_email_prefix), ''), 'role', p_role),
    p_after_created_at, p_after_email, p_after_id, least(greatest(coalesce(p_limit, 100), 1), 100)
  );
end;
$$;
comment on function public.admin_list_users is
  'Admins: users newest first (or by email for an email prefix) with transaction count, round-ups and amount invested from maintained totals; keyset, at most 100.';

grant execute on function public.admin_list_transactions to authenticated, service_role;
grant execute on function public.admin_list_mappings to authenticated, service_role;
grant execute on function public.admin_list_users to authenticated, service_role;
