/*
 * Bulk review chunks say which merchant keys they changed, so the `mappings.bulk_review` job
 * (jobs/bulk_review.py) can drop those keys from the resolver's Upstash cache after each chunk
 * commits; until now a key's cached pending answer outlived its review by up to its TTL.
 *
 * - private.bulk_review_mappings_chunk_keys(decision, reviewer, selection, chunk): the chunk of
 *   private.bulk_review_mappings_chunk (20261122130200_api_bulk_review.sql, same selection, same
 *   SKIP LOCKED, same merchants pointer moves), returning one row: how many mappings it reviewed
 *   (0 = done) and their distinct merchant keys.
 * - private.bulk_review_mappings_chunk keeps its signature and answer (the count) for existing
 *   callers and is now a wrapper, so the review logic lives in one place.
 */

create or replace function private.bulk_review_mappings_chunk_keys(
  p_decision text, p_reviewer uuid, p_selection jsonb, p_chunk integer default 1000
)
returns table (reviewed_count integer, merchant_keys text[])
language plpgsql
set search_path = ''
as $$
declare
  f jsonb := coalesce(p_selection -> 'filter', '{}'::jsonb);
begin
  if p_decision is null or p_decision not in ('approved', 'rejected') then
    raise exception 'decision must be approved or rejected, got %', coalesce(p_decision, 'null')
      using errcode = '22023';
  end if;
  if (p_selection ? 'ids') = (p_selection ? 'filter') then
    raise exception 'selection needs exactly one of ids or filter' using errcode = '22023';
  end if;

  with wanted as (
    select (e ->> 0)::bigint as id, (e ->> 1)::timestamptz as created_at
    from jsonb_array_elements(coalesce(p_selection -> 'ids', '[]'::jsonb)) as e
  ), picked as (
    select m.id, m.created_at
    from public.llm_mappings as m
    where m.status = 'pending'
      and (not p_selection ? 'ids' or (m.id, m.created_at) in (select w.id, w.created_at from wanted as w))
      and (f ->> 'category' is null or m.category = f ->> 'category')
      and (f ->> 'source' is null or m.source = f ->> 'source')
      and (f ->> 'tier' is null or m.tier = f ->> 'tier')
      and (f ->> 'merchant_key' is null or m.merchant_key = f ->> 'merchant_key')
      and (f ->> 'import_job_id' is null or m.import_job_id = (f ->> 'import_job_id')::bigint)
      and (f ->> 'min_confidence' is null or m.confidence >= (f ->> 'min_confidence')::numeric)
      and (f ->> 'max_confidence' is null or m.confidence <= (f ->> 'max_confidence')::numeric)
      and (f ->> 'created_after' is null or m.created_at >= (f ->> 'created_after')::timestamptz)
      and (f ->> 'created_before' is null or m.created_at < (f ->> 'created_before')::timestamptz)
    order by m.created_at, m.id
    limit greatest(p_chunk, 1)
    for update skip locked
  ), reviewed as (
    update public.llm_mappings as m
    set status = p_decision,
        admin_approved = (p_decision = 'approved'),
        reviewer = p_reviewer,
        reviewed_at = now()
    from picked
    where m.id = picked.id and m.created_at = picked.created_at
    returning m.id, m.created_at, m.merchant_key, m.merchant_name, m.company_name
  ), put_in_force as (
    insert into public.merchants as mr (merchant_key, display_name, mapping_id, mapping_created_at)
    select distinct on (r.merchant_key) r.merchant_key, coalesce(r.company_name, r.merchant_name), r.id, r.created_at
    from reviewed as r
    where p_decision = 'approved'
    order by r.merchant_key, r.created_at desc, r.id desc
    on conflict (merchant_key) do update
      set mapping_id = excluded.mapping_id, mapping_created_at = excluded.mapping_created_at
  ), cleared as (
    update public.merchants as mr
    set mapping_id = null, mapping_created_at = null
    from reviewed as r
    where p_decision = 'rejected' and mr.mapping_id = r.id and mr.mapping_created_at = r.created_at
  )
  select count(*)::integer, coalesce(array_agg(distinct r.merchant_key), '{}')
  into reviewed_count, merchant_keys
  from reviewed as r;
  return next;
end;
$$;
comment on function private.bulk_review_mappings_chunk_keys(text, uuid, jsonb, integer) is
  'Review up to p_chunk pending mappings chosen by ids or filter; returns how many (0 = done) and their merchant keys.';

create or replace function private.bulk_review_mappings_chunk(
  p_decision text, p_reviewer uuid, p_selection jsonb, p_chunk integer default 1000
)
returns integer
language sql
set search_path = ''
as $$
  select c.reviewed_count from private.bulk_review_mappings_chunk_keys(p_decision, p_reviewer, p_selection, p_chunk) as c
$$;

revoke execute on function private.bulk_review_mappings_chunk_keys(text, uuid, jsonb, integer)
from public, anon, authenticated;
