/*
 * review_mapping: an admin approves or rejects one mapping (identified by its full primary key,
 * id + created_at, so the update touches one partition).
 *
 * - approved: status 'approved', admin_approved true, reviewer = the admin, reviewed_at = now();
 *   public.merchants gets (or is created with) mapping_id / mapping_created_at pointing at it:
 *   that is "the mapping in force" for its merchant_key, one per key by merchants' unique key.
 * - rejected: status 'rejected', admin_approved false; if the merchant pointed at this mapping the
 *   pointer is cleared (no mapping in force until another is approved).
 *
 * SECURITY INVOKER: the admin's own RLS policies allow the writes, and private.require_admin()
 * turns a non-admin call into an error. The statement-level triggers keep the stats exact and
 * broadcast one review_queue_changed message.
 */

create or replace function public.review_mapping(p_id bigint, p_created_at timestamptz, p_decision text)
returns public.llm_mappings
language plpgsql
volatile
set search_path = ''
as $$
declare
  reviewed public.llm_mappings;
begin
  perform private.require_admin();
  if p_decision is null or p_decision not in ('approved', 'rejected') then
    raise exception 'decision must be approved or rejected, got %', coalesce(p_decision, 'null')
      using errcode = '22023';
  end if;

  update public.llm_mappings as m
  set status = p_decision,
      admin_approved = (p_decision = 'approved'),
      reviewer = (select auth.uid()),
      reviewed_at = now()
  where m.id = p_id and m.created_at = p_created_at
  returning m.* into reviewed;

  if not found then
    raise exception 'mapping % at % not found', p_id, p_created_at using errcode = 'P0002';
  end if;

  if p_decision = 'approved' then
    insert into public.merchants as mr (merchant_key, display_name, mapping_id, mapping_created_at)
    values (reviewed.merchant_key, coalesce(reviewed.company_name, reviewed.merchant_name),
            reviewed.id, reviewed.created_at)
    on conflict (merchant_key) do update
      set mapping_id = excluded.mapping_id, mapping_created_at = excluded.mapping_created_at;
  else
    update public.merchants as mr
    set mapping_id = null, mapping_created_at = null
    where mr.merchant_key = reviewed.merchant_key
      and mr.mapping_id = reviewed.id and mr.mapping_created_at = reviewed.created_at;
  end if;

  return reviewed;
end;
$$;
comment on function public.review_mapping(bigint, timestamptz, text) is
  'Admin review: approve (and put in force for its merchant) or reject one mapping.';

revoke execute on function public.review_mapping(bigint, timestamptz, text) from public, anon;
grant execute on function public.review_mapping(bigint, timestamptz, text) to authenticated, service_role;
