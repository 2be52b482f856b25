/*
 * Users' mapping suggestions (`insert into llm_mappings` through the Data API) carry only what a
 * user may say: merchant_name, merchant_key, company_name, ticker, category and a note. Everything
 * else is the server's.
 *
 * Before this, the insert policy checked source, status, submitted_by and the review columns but
 * left tier, confidence, created_at, model, reason, provider state and import fields to the user: a
 * user inserted merchant_key 'target' -> GME with tier 'catalog', confidence 1.0, created_at 2030;
 * an admin's bulk approval by min_confidence 0.99 put it in force, and the resolver answered it as
 * a catalog hit. A created_at of 'infinity' broke every newest-first list, and 20,000 rows in one
 * statement or a 5 MB merchant name were accepted.
 *
 * - public.llm_mappings.note: the user's free-text note (at most 500 characters).
 * - private.guard_user_suggestion(), BEFORE INSERT for each row, for API callers that are not
 *   admins (private.is_untrusted_non_admin(), as the review-column trigger): every server-owned
 *   column must hold its default (a non-default value is refused, 42501, naming the column; a
 *   refusal rather than an overwrite because created_at is the partition key, which a BEFORE trigger
 *   cannot move); updated_at is the server's clock. Lengths: merchant_name and company_name <= 200
 *   characters, merchant_key <= 500 (as an import's), ticker <= 12, note <= 500 (22001). Rate
 *   (PT429, which PostgREST answers as 429): at most 20 rows per statement and 100 per rolling
 *   hour per user (the trigger's constants); a user's concurrent suggesting
 *   transactions take turns on an advisory lock so the hourly count is exact.
 * - The insert policy's user branch also requires the server-owned columns to be unset, so the rule
 *   holds even if the trigger is ever dropped.
 * - llm_mappings_created_at_finite: no mapping, whoever writes it, has an infinite created_at.
 * - Users' edits of a pending suggestion (update policy) may change the same columns only: the
 *   BEFORE UPDATE trigger refuses changes of the server-owned ones.
 * - Bulk approval by filter (private.bulk_review_mappings_chunk_keys) never approves a user's
 *   suggestion: an admin approves one by id (selection ids, or public.review_mapping). Rejection by
 *   filter still includes them.
 */

alter table public.llm_mappings add column note text;
comment on column public.llm_mappings.note is 'The suggesting user''s note (user suggestions only).';

alter table public.llm_mappings
  add constraint llm_mappings_created_at_finite check (isfinite(created_at));

-- Insert guard ------------------------------------------------------------------------------------
create or replace function private.guard_user_suggestion()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  per_statement constant integer := 20;  -- suggestions a user may send in one statement
  per_hour constant integer := 100;      -- and in a rolling hour
  uid uuid := (select auth.uid());
  statement_key text := statement_timestamp()::text;
  counter text := coalesce(current_setting('kamioi.suggestions', true), '');
  in_statement integer;
  before_statement integer;
  owned text;
begin
  -- Runs as the writer (invoker), like the review-column trigger: trusted callers pass untouched.
  if not private.is_untrusted_non_admin() then
    return new;
  end if;

  owned := case
    when new.created_at is distinct from now() then 'created_at'
    when new.confidence is not null then 'confidence'
    when new.status is distinct from 'pending' then 'status'
    when new.admin_approved then 'admin_approved'
    when new.tier is not null then 'tier'
    when new.model is not null then 'model'
    when new.prompt_version is not null then 'prompt_version'
    when new.reason is not null then 'reason'
    when new.reviewer is not null then 'reviewer'
    when new.reviewed_at is not null then 'reviewed_at'
    when new.import_job_id is not null then 'import_job_id'
    when new.provider_state is not null then 'provider_state'
    when new.provider_attempts <> 0 then 'provider_attempts'
    when new.provider_error is not null then 'provider_error'
    when new.next_attempt_at is not null then 'next_attempt_at'
  end;
  if owned is not null then
    raise exception 'llm_mappings.% is set by the server', owned
      using errcode = '42501',
            hint = 'a suggestion says merchant_name, merchant_key, company_name, ticker, category and note';
  end if;
  new.updated_at := now();

  if char_length(new.merchant_name) > 200 or char_length(new.company_name) > 200
     or char_length(new.merchant_key) > 500 or char_length(new.ticker) > 12 or char_length(new.note) > 500 then
    raise exception 'a suggestion''s text is too long'
      using errcode = '22001',
            hint = 'merchant_name and company_name at most 200 characters, merchant_key 500, ticker 12, note 500';
  end if;

  -- Rows of this statement so far: counted in a transaction-local setting keyed by the statement.
  if uid is null then
    return new;  -- the insert policy refuses a caller without a user
  end if;
  if split_part(counter, '|', 1) = statement_key then
    in_statement := split_part(counter, '|', 2)::integer + 1;
    before_statement := split_part(counter, '|', 3)::integer;
  else
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('kamioi:suggest:' || uid::text, 0));
    in_statement := 1;
    select count(*)::integer into before_statement
    from public.llm_mappings as m
    where m.submitted_by = uid and m.source = 'user' and m.created_at > now() - interval '1 hour';
  end if;
  perform pg_catalog.set_config('kamioi.suggestions', format('%s|%s|%s', statement_key, in_statement, before_statement), true);
  if in_statement > per_statement then
    raise exception 'at most % suggestions per statement', per_statement
      using errcode = 'PT429', hint = 'send fewer suggestions at once';
  end if;
  if before_statement + in_statement > per_hour then
    raise exception 'at most % suggestions per hour', per_hour
      using errcode = 'PT429', hint = 'try again later';
  end if;
  return new;
end;
$$;

create trigger llm_mappings_guard_user_suggestion
  before insert on public.llm_mappings
  for each row execute function private.guard_user_suggestion();

-- Update guard: a user's edit of their pending suggestion touches only what they may say ----------
create or replace function private.protect_mapping_review_columns()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if (new.status is distinct from old.status
      or new.admin_approved is distinct from old.admin_approved
      or new.reviewer is distinct from old.reviewer
      or new.reviewed_at is distinct from old.reviewed_at
      or new.source is distinct from old.source
      or new.tier is distinct from old.tier
      or new.submitted_by is distinct from old.submitted_by
      or new.confidence is distinct from old.confidence
      or new.created_at is distinct from old.created_at
      or new.model is distinct from old.model
      or new.prompt_version is distinct from old.prompt_version
      or new.reason is distinct from old.reason
      or new.import_job_id is distinct from old.import_job_id
      or new.provider_state is distinct from old.provider_state
      or new.provider_attempts is distinct from old.provider_attempts
      or new.provider_error is distinct from old.provider_error
      or new.next_attempt_at is distinct from old.next_attempt_at)
     and private.is_untrusted_non_admin() then
    raise exception 'only admins can change a mapping''s review columns' using errcode = '42501';
  end if;
  if private.is_untrusted_non_admin()
     and (char_length(new.merchant_name) > 200 or char_length(new.company_name) > 200
          or char_length(new.merchant_key) > 500 or char_length(new.ticker) > 12 or char_length(new.note) > 500) then
    raise exception 'a suggestion''s text is too long'
      using errcode = '22001',
            hint = 'merchant_name and company_name at most 200 characters, merchant_key 500, ticker 12, note 500';
  end if;
  return new;
end;
$$;

-- Insert policy -----------------------------------------------------------------------------------
drop policy "llm_mappings: admins insert, users suggest pending mappings" on public.llm_mappings;
create policy "llm_mappings: admins insert, users suggest pending mappings" on public.llm_mappings
  for insert to authenticated
  with check (
    (select private.is_admin())
    or (
      submitted_by = (select auth.uid())
      and source = 'user'
      and status = 'pending'
      and admin_approved = false
      and reviewer is null
      and reviewed_at is null
      and tier is null
      and confidence is null
      and model is null
      and prompt_version is null
      and reason is null
      and import_job_id is null
      and provider_state is null
      and next_attempt_at is null
    )
  );

-- Bulk approval by filter skips users' suggestions ------------------------------------------------
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
      -- A user's suggestion is approved one by one, never by a filter (its confidence is nobody's).
      and not (p_decision = 'approved' and p_selection ? 'filter' and m.source = 'user')
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
