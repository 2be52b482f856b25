/*
 * Bulk review of pending mappings, one chunk per call, for the `mappings.bulk_review` job that the
 * admin API enqueues (POST /v1/mappings/bulk-review). A handler calls it until it returns 0,
 * checking for cancellation between chunks; every chunk is its own short transaction, so a review
 * of a million mappings never holds locks for long and resumes where it stopped after a crash.
 *
 * p_selection (the job payload's `selection`):
 *   {"ids": [[id, "created_at"], ...]}                      explicit mappings (full primary keys), or
 *   {"filter": {"category", "source", "tier", "merchant_key", "import_job_id",
 *               "min_confidence", "max_confidence", "created_after", "created_before"}}
 *   (every filter key optional; absent keys do not filter).
 * Only pending mappings are changed, so re-running a chunk is harmless. Approving puts the newest
 * approved mapping of each merchant in force (public.merchants), like public.review_mapping;
 * rejecting clears a merchant's pointer if it pointed at a rejected mapping.
 * Rows are taken with SKIP LOCKED so a concurrent single review never blocks the job.
 */

create or replace function private.bulk_review_mappings_chunk(
  p_decision text, p_reviewer uuid, p_selection jsonb, p_chunk integer default 1000
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  f jsonb := coalesce(p_selection -> 'filter', '{}'::jsonb);
  reviewed_count integer;
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
  select count(*) into reviewed_count from reviewed;
  return reviewed_count;
end;
$$;
comment on function private.bulk_review_mappings_chunk(text, uuid, jsonb, integer) is
  'Review up to p_chunk pending mappings chosen by ids or filter; returns how many (0 = done).';
