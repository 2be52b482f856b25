/*
 * Keyset-paginated RPCs for the frontend (PostgREST has no row-value filters, so keyset pages are
 * functions). Every function is SECURITY INVOKER, so the caller's RLS applies on top of its own
 * checks; admin-only lists also call private.require_admin() first, so a non-admin gets an error
 * instead of a scan filtered down to nothing.
 *
 * One exception: search_mappings is SECURITY DEFINER. Under RLS, PostgreSQL may only use an
 * index for a condition whose operator is leakproof, and LIKE is not, so as `authenticated` the
 * trigram index is unusable (a 1M-row search took 0.7 s instead of 6 ms). The function is
 * admin-only (private.require_admin(), which reads the caller's role and JWT, not current_user)
 * and admins may read every mapping, so skipping RLS there returns exactly the same rows.
 *
 * Rules: hard page caps (transactions 100, mappings 50, users 100) whatever p_limit says; no
 * OFFSET (a deep OFFSET reads and discards every skipped row); no COUNT(*) (totals come from
 * public.dashboard_stats). The cursor is the last row's sort key, passed back by the client.
 * The first page and later pages are separate queries so each has a plan that seeks the index.
 *
 * Plans: the list functions pin plan_cache_mode = force_generic_plan. Their queries differ only in
 * parameter values, so one cached plan per session serves every call (re-planning a query over
 * ~40 partitions costs more than running it); partitions are pruned at executor start. The search
 * pins force_custom_plan instead: whether the trigram index or an id-ordered scan is cheaper depends
 * on the actual pattern, which a generic plan cannot see.
 *
 * - list_pending_mappings: newest first on (created_at desc, id desc), index llm_mappings_pending_idx.
 *   The redundant created_at <= cursor prunes newer partitions at executor start.
 * - search_mappings: merchant-name substring (case-insensitive) via the trigram GIN index on
 *   lower(merchant_name), newest id first, cursor = last id. Fewer than 3 characters return no
 *   rows (a trigram needs 3; shorter input would scan), which suits a debounced search box.
 * - list_my_transactions: the caller's purchases, newest date first, on (user_id, txn_date desc, id desc),
 *   walking date windows newest first and stopping as soon as the page is full.
 * - list_users: profiles newest first (admins).
 */

create or replace function public.list_pending_mappings(
  p_after_created_at timestamptz default null,
  p_after_id bigint default null,
  p_limit int default 50
)
returns setof public.llm_mappings
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  page_size int := least(greatest(coalesce(p_limit, 50), 1), 50);
begin
  perform private.require_admin();
  if p_after_created_at is null then
    return query
      select m.* from public.llm_mappings as m
      where m.status = 'pending'
      order by m.created_at desc, m.id desc
      limit page_size;
  else
    return query
      select m.* from public.llm_mappings as m
      where m.status = 'pending'
        and m.created_at <= p_after_created_at
        and (m.created_at, m.id) < (p_after_created_at, coalesce(p_after_id, 9223372036854775807))
      order by m.created_at desc, m.id desc
      limit page_size;
  end if;
end;
$$;

create or replace function public.search_mappings(
  p_query text,
  p_after_id bigint default null,
  p_limit int default 50
)
returns setof public.llm_mappings
language plpgsql
stable
security definer
set search_path = ''
set plan_cache_mode = force_custom_plan
as $$
declare
  page_size int := least(greatest(coalesce(p_limit, 50), 1), 50);
  needle text := lower(btrim(coalesce(p_query, '')));
  pattern text;
begin
  perform private.require_admin();
  if length(needle) < 3 then
    return;
  end if;
  -- The user's text is matched literally: escape LIKE's wildcards.
  pattern := '%' || replace(replace(replace(needle, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  return query
    select m.* from public.llm_mappings as m
    where lower(m.merchant_name) like pattern
      and m.id < coalesce(p_after_id, 9223372036854775807)
    order by m.id desc
    limit page_size;
end;
$$;

create or replace function public.list_my_transactions(
  p_before_date date default null,
  p_before_id bigint default null,
  p_limit int default 100
)
returns setof public.transactions
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  page_size int := least(greatest(coalesce(p_limit, 100), 1), 100);
  remaining int := page_size;
  this_month date := date_trunc('month', current_date)::date;
  -- Date windows, newest first: the last three months and anything newer (a handful of partitions:
  -- those months, the months prepared ahead, the default), then windows doubling in length, then
  -- everything older. Each query prunes to its window's partitions at executor start (one cached
  -- generic plan per branch), so a typical first page is one query over a few partitions instead
  -- of an index scan started in each of ~30.
  edges date[] := array[
    'infinity', (this_month - interval '2 months')::date, (this_month - interval '6 months')::date,
    (this_month - interval '14 months')::date, (this_month - interval '30 months')::date, '-infinity'
  ]::date[];
  got bigint;
begin
  for i in 1 .. array_length(edges, 1) - 1 loop
    if p_before_date is null then
      return query
        select t.* from public.transactions as t
        where t.user_id = (select auth.uid())
          and t.txn_date >= edges[i + 1] and t.txn_date < edges[i]
        order by t.txn_date desc, t.id desc
        limit remaining;
    else
      continue when edges[i + 1] > p_before_date;  -- the whole window is newer than the cursor
      return query
        select t.* from public.transactions as t
        where t.user_id = (select auth.uid())
          and t.txn_date >= edges[i + 1] and t.txn_date < edges[i]
          and t.txn_date <= p_before_date
          and (t.txn_date, t.id) < (p_before_date, coalesce(p_before_id, 9223372036854775807))
        order by t.txn_date desc, t.id desc
        limit remaining;
    end if;
    get diagnostics got = row_count;
    remaining := remaining - got;
    exit when remaining = 0;
  end loop;
end;
$$;

create or replace function public.list_users(
  p_after_created_at timestamptz default null,
  p_after_id uuid default null,
  p_limit int default 100
)
returns setof public.profiles
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  page_size int := least(greatest(coalesce(p_limit, 100), 1), 100);
begin
  perform private.require_admin();
  if p_after_created_at is null then
    return query
      select p.* from public.profiles as p
      order by p.created_at desc, p.id desc
      limit page_size;
  else
    return query
      select p.* from public.profiles as p
      where p.created_at <= p_after_created_at
        and (p.created_at, p.id) < (p_after_created_at, coalesce(p_after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid))
      order by p.created_at desc, p.id desc
      limit page_size;
  end if;
end;
$$;

revoke execute on function public.list_pending_mappings(timestamptz, bigint, int) from public, anon;
revoke execute on function public.search_mappings(text, bigint, int) from public, anon;
revoke execute on function public.list_my_transactions(date, bigint, int) from public, anon;
revoke execute on function public.list_users(timestamptz, uuid, int) from public, anon;
grant execute on function public.list_pending_mappings(timestamptz, bigint, int) to authenticated, service_role;
grant execute on function public.search_mappings(text, bigint, int) to authenticated, service_role;
grant execute on function public.list_my_transactions(date, bigint, int) to authenticated, service_role;
grant execute on function public.list_users(timestamptz, uuid, int) to authenticated, service_role;
