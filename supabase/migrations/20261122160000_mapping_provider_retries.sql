/*
 * Provider retries: merchant keys the LLM could not answer are asked again once it is back.
 *
 * The resolver claims a key by writing a pending 'review' placeholder before it calls the provider
 * (kamioi/mapping/resolver.py). Until now a failed call (errors, timeouts, rate limits, unusable
 * replies) left that placeholder pending for good, and since a key with any mapping stops at the
 * resolver's first tier it was never sent again. The placeholder now records the provider's side:
 *
 *   provider_state     null       never sent to a provider (catalog, similarity, imports, admins)
 *                      'asking'   claimed: an asker is waiting for the provider; next_attempt_at
 *                                 is the claim's lease, after which a crashed asker's key is due
 *                      'failed'   the call failed; asked again at next_attempt_at (backoff)
 *                      'gave_up'  failed provider_attempts times (the cap): left for admin review
 *                      'answered' the provider answered (with or without this merchant); the
 *                                 approval policy applies as to any answer
 *   provider_attempts  times the key was sent (counted at the claim, so a crash counts too)
 *   provider_error     the last failure, as the asker saw it
 *   next_attempt_at    when the key is due; null when it is not scheduled
 *
 * A re-ask updates the same placeholder, so a key keeps one provider row and the review queue one
 * entry per key. A pending 'failed' row without next_attempt_at was unscheduled because its
 * merchant got an approved mapping in force some other way (nothing left to ask).
 * Only provider placeholders (source 'llm' or 'catalog', the offline provider's) are ever asked:
 * a user who sets next_attempt_at on their own suggestion only gets it unscheduled.
 *
 * Functions (the resolver and the `mappings.reask` job, jobs/reask_merchants.py, call them):
 * - private.claim_due_reasks(limit, lease_seconds, max_attempts): up to `limit` due rows, oldest
 *   first, taken FOR UPDATE SKIP LOCKED (two askers never take the same key). Provider
 *   placeholders still pending and unreviewed whose merchant has no approved mapping in force are
 *   claimed (claimed = true): 'asking', attempts + 1, a fresh lease. The new attempt number is the
 *   fencing token an answer or failure must present, so a late answer from an asker whose lease
 *   ran out is dropped. The other rows are settled on the way (claimed = false): reviewed,
 *   mapped in force some other way or not a provider placeholder -> unscheduled; a claim already
 *   at the cap (its asker died on the last attempt) -> gave up. Callers repeat until no row comes
 *   back.
 * - private.record_provider_failures(ids, created_ats, attempts, errors, provider, max_attempts,
 *   base_s, max_s): fenced claims become 'failed', due after min(max_s, base_s * 2^(attempt - 1))
 *   with +-20% jitter (keys that failed together do not all come back at once), or 'gave_up' at the
 *   cap; the reason says which, for the review queue.
 * - private.enqueue_due_reasks(): pg_cron, every minute: one `mappings.reask` job when a key is due
 *   and none is queued or running.
 *
 * Placeholders written before failures were recorded (tier 'review', no company, from an LLM,
 * still pending) could be failed calls or crashed askers as well as "no answer": each is made due
 * once, so the merchants stranded by earlier outages get their answer.
 *
 * Index: partial (next_attempt_at, id) where next_attempt_at is not null: the due scan and the
 * scheduler's probe read only scheduled keys, a handful next to the table's tens of millions.
 */

alter table public.llm_mappings
  add column provider_state text check (provider_state in ('asking', 'failed', 'gave_up', 'answered')),
  add column provider_attempts integer not null default 0 check (provider_attempts >= 0),
  add column provider_error text,
  add column next_attempt_at timestamptz;

comment on column public.llm_mappings.provider_state is
  'asking | failed | gave_up | answered; null when the mapping was never sent to a provider.';
comment on column public.llm_mappings.next_attempt_at is
  'When the provider is asked about this merchant again (lease end while asking, backoff end once failed).';

create index llm_mappings_next_attempt_idx on public.llm_mappings (next_attempt_at, id)
  where next_attempt_at is not null;

update public.llm_mappings
set provider_state = 'failed', provider_attempts = 1, next_attempt_at = now(),
    provider_error = 'recorded before provider failures were tracked'
where status = 'pending' and reviewed_at is null and tier = 'review' and company_name is null
  and source = 'llm';

create or replace function private.claim_due_reasks(
  p_limit integer, p_lease_seconds double precision, p_max_attempts integer
)
returns table (
  id bigint, created_at timestamptz, merchant_key text, merchant_name text, attempt integer, claimed boolean
)
language plpgsql
set search_path = ''
as $$
begin
  if p_max_attempts is null or p_max_attempts < 1 or p_lease_seconds is null or p_lease_seconds <= 0 then
    raise exception 'max_attempts must be >= 1 and lease_seconds > 0' using errcode = '22023';
  end if;
  return query
  with due as (
    select m.id, m.created_at,
           m.status = 'pending' and m.reviewed_at is null and m.source in ('llm', 'catalog')
             and m.provider_state in ('asking', 'failed')
             and not exists (select 1 from public.merchants as mr
                             where mr.merchant_key = m.merchant_key and mr.mapping_id is not null)
             as askable
    from public.llm_mappings as m
    where m.next_attempt_at <= clock_timestamp()
    order by m.next_attempt_at, m.id
    limit greatest(p_limit, 0)
    for update of m skip locked
  )
  update public.llm_mappings as m
  set provider_state = case when not due.askable then m.provider_state
                            when m.provider_attempts >= p_max_attempts then 'gave_up'
                            else 'asking' end,
      provider_attempts = m.provider_attempts
        + case when due.askable and m.provider_attempts < p_max_attempts then 1 else 0 end,
      next_attempt_at = case when due.askable and m.provider_attempts < p_max_attempts
                             then clock_timestamp() + make_interval(secs => p_lease_seconds) end,
      reason = case when due.askable and m.provider_attempts >= p_max_attempts
                    then format('asked %s times without an answer; gave up, left for review', m.provider_attempts)
                    else m.reason end
  from due
  where m.id = due.id and m.created_at = due.created_at
  returning m.id, m.created_at, m.merchant_key, m.merchant_name, m.provider_attempts,
            due.askable and m.provider_state = 'asking';
end;
$$;
comment on function private.claim_due_reasks(integer, double precision, integer) is
  'Claim up to p_limit merchant keys due to be asked again (SKIP LOCKED, leased); attempt = fencing token.';

create or replace function private.record_provider_failures(
  p_ids bigint[], p_created_ats timestamptz[], p_attempts integer[], p_errors text[], p_provider text,
  p_max_attempts integer, p_base_s double precision, p_max_s double precision
)
returns table (merchant_key text, provider_state text, next_attempt_at timestamptz)
language sql
set search_path = ''
as $$
  update public.llm_mappings as m
  set provider_state = case when u.attempt >= p_max_attempts then 'gave_up' else 'failed' end,
      provider_error = left(u.error, 1000),
      next_attempt_at = case when u.attempt < p_max_attempts then
        clock_timestamp()
        + make_interval(secs => least(p_max_s, p_base_s * power(2, u.attempt - 1)) * (0.8 + random() * 0.4))
      end,
      reason = case when u.attempt >= p_max_attempts
        then format('%s failed %s times; gave up, left for review', p_provider, u.attempt)
        else format('%s failed (attempt %s of %s); will be asked again', p_provider, u.attempt, p_max_attempts)
      end
  from unnest(p_ids, p_created_ats, p_attempts, p_errors) as u(id, created_at, attempt, error)
  where m.id = u.id and m.created_at = u.created_at
    and m.provider_state = 'asking' and m.provider_attempts = u.attempt
    and m.status = 'pending' and m.reviewed_at is null
  returning m.merchant_key, m.provider_state, m.next_attempt_at
$$;
comment on function private.record_provider_failures(
  bigint[], timestamptz[], integer[], text[], text, integer, double precision, double precision
) is 'Fenced claims whose provider call failed: scheduled again with exponential backoff, or given up at the cap.';

create or replace function private.enqueue_due_reasks()
returns bigint
language plpgsql
set search_path = ''
as $$
begin
  -- One scheduler at a time, so two never both see "no job yet" and enqueue twice.
  perform pg_advisory_xact_lock(hashtext('private.enqueue_due_reasks'));
  -- Any due row, reviewed ones included: the job's claim takes those off the schedule.
  if not exists (select 1 from public.llm_mappings as m where m.next_attempt_at <= clock_timestamp())
     or exists (
       select 1 from private.job_queue as q
       where q.kind = 'mappings.reask' and q.state in ('queued', 'running')) then
    return null;
  end if;
  return private.enqueue_job('mappings.reask');
end;
$$;
comment on function private.enqueue_due_reasks() is
  'pg_cron, every minute: queue one mappings.reask job when a merchant key is due and none is pending.';

revoke execute on function
  private.claim_due_reasks(integer, double precision, integer),
  private.record_provider_failures(
    bigint[], timestamptz[], integer[], text[], text, integer, double precision, double precision),
  private.enqueue_due_reasks()
from public, anon, authenticated;

select cron.schedule('kamioi-reask-merchants', '* * * * *', 'select private.enqueue_due_reasks()');
