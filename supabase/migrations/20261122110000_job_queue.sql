/*
 * private.job_queue: the durable background-job queue shared by every worker on every machine.
 *
 * Protocol (each step is one short transaction through the functions below; `python -m jobs worker`
 * is the client, any other client that follows it may share the queue):
 *   enqueue_job        insert a queued job; a trigger NOTIFYs channel `kamioi_jobs` (payload = kind)
 *                      so idle workers wake without polling.
 *   claim_jobs         FOR UPDATE SKIP LOCKED: concurrent claimers never block on or take the same
 *                      job. The claim stamps a fresh lease_token (the fencing token every later call
 *                      must present) and lease_until.
 *   heartbeat_jobs     extends the leases the caller still holds; a job missing from the answer was
 *                      lost (reaped), and its handler must stop.
 *   finish_job         succeeded | cancelled.
 *   fail_job           back to queued with run_at = now() + the caller's backoff, or failed once
 *                      attempts reach max_attempts (or at once when the error is permanent).
 *   release_job        graceful shutdown: back to queued at once, the attempt is not counted.
 *   requeue_expired_jobs  any worker may run it: leases that ran out (a dead worker) go back to
 *                      queued, or to failed when that was the last attempt.
 *   cancel_job         queued -> cancelled; running -> cancel_requested (the handler sees it in its
 *                      heartbeat and stops between units of work).
 *   worker_seen / worker_stopped / live_workers  presence of worker processes (private.job_workers),
 *                      so an operator's CLI can tell whether anyone will pick a job up.
 * Lower priority numbers run first; within a priority, older run_at first.
 */

create table private.job_queue (
  id bigint generated always as identity primary key,
  kind text not null check (kind ~ '^[a-z][a-z0-9_.]*$'),
  payload jsonb not null default '{}'::jsonb,
  state text not null default 'queued'
    check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  priority integer not null default 0,
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null default 5 check (max_attempts >= 1),
  run_at timestamptz not null default now(),
  locked_by text,
  lease_token uuid,
  lease_until timestamptz,
  heartbeat_at timestamptz,
  cancel_requested boolean not null default false,
  last_error text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  check ((state = 'running') = (lease_token is not null))
);
comment on table private.job_queue is
  'Durable job queue: claimed with SKIP LOCKED, leased with heartbeats, retried with backoff.';

-- The claim scans only queued jobs, in claim order.
create index job_queue_claim_idx on private.job_queue (priority, run_at, id) where state = 'queued';
-- The reaper scans only running jobs by lease expiry.
create index job_queue_lease_idx on private.job_queue (lease_until) where state = 'running';

create trigger job_queue_touch_updated_at
  before update on private.job_queue
  for each row execute function private.touch_updated_at();

create or replace function private.notify_job_queued()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Identical payloads are folded into one notification per transaction, so bulk enqueues stay cheap.
  perform pg_notify('kamioi_jobs', new.kind);
  return null;
end;
$$;

create trigger job_queue_notify_insert
  after insert on private.job_queue
  for each row when (new.state = 'queued')
  execute function private.notify_job_queued();

create trigger job_queue_notify_requeue
  after update of state on private.job_queue
  for each row when (new.state = 'queued' and old.state is distinct from 'queued')
  execute function private.notify_job_queued();

create or replace function private.enqueue_job(
  p_kind text,
  p_payload jsonb default '{}'::jsonb,
  p_priority integer default 0,
  p_run_at timestamptz default now(),
  p_max_attempts integer default 5
)
returns bigint
language sql
set search_path = ''
as $$
  insert into private.job_queue (kind, payload, priority, run_at, max_attempts)
  values (p_kind, coalesce(p_payload, '{}'::jsonb), p_priority, p_run_at, p_max_attempts)
  returning id
$$;

-- p_ids narrows the claim to given jobs (an operator running one job in-process).
create or replace function private.claim_jobs(
  p_worker text, p_kinds text[], p_lease_seconds double precision, p_limit integer default 1,
  p_ids bigint[] default null
)
returns setof private.job_queue
language sql
set search_path = ''
as $$
  update private.job_queue as q
     set state = 'running',
         attempts = q.attempts + 1,
         locked_by = p_worker,
         lease_token = gen_random_uuid(),
         lease_until = clock_timestamp() + make_interval(secs => p_lease_seconds),
         heartbeat_at = clock_timestamp(),
         started_at = coalesce(q.started_at, clock_timestamp())
    from (
      select j.id
        from private.job_queue as j
       where j.state = 'queued' and j.run_at <= clock_timestamp() and j.kind = any (p_kinds)
         and (p_ids is null or j.id = any (p_ids))
       order by j.priority, j.run_at, j.id
       limit greatest(p_limit, 0)
       for update skip locked
    ) as next_jobs
   where q.id = next_jobs.id
  returning q.*
$$;

-- Seconds until the next queued job of these kinds is due (<= 0: now; null: none queued). Idle
-- workers sleep until then; measured on the database clock so workers' clocks may differ.
create or replace function private.seconds_until_next_job(p_kinds text[])
returns double precision
language sql
stable
set search_path = ''
as $$
  select extract(epoch from min(run_at) - clock_timestamp())::double precision
    from private.job_queue where state = 'queued' and kind = any (p_kinds)
$$;

create or replace function private.heartbeat_jobs(p_tokens uuid[], p_lease_seconds double precision)
returns table (lease_token uuid, cancel_requested boolean)
language sql
set search_path = ''
as $$
  update private.job_queue as q
     set lease_until = clock_timestamp() + make_interval(secs => p_lease_seconds),
         heartbeat_at = clock_timestamp()
   where q.lease_token = any (p_tokens) and q.state = 'running'
  returning q.lease_token, q.cancel_requested
$$;

create or replace function private.finish_job(p_id bigint, p_token uuid, p_state text default 'succeeded')
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  if p_state not in ('succeeded', 'cancelled') then
    raise exception 'finish_job: state must be succeeded or cancelled, not %', p_state
      using errcode = '22023';
  end if;
  update private.job_queue
     set state = p_state, finished_at = clock_timestamp(), locked_by = null, lease_token = null,
         lease_until = null
   where id = p_id and lease_token = p_token;
  return found;
end;
$$;

-- Returns the job's new state (queued = will retry at run_at), or null if the caller lost the lease.
create or replace function private.fail_job(
  p_id bigint, p_token uuid, p_error text, p_retry_in_seconds double precision, p_permanent boolean default false
)
returns text
language sql
set search_path = ''
as $$
  update private.job_queue
     set state = case when p_permanent or attempts >= max_attempts then 'failed' else 'queued' end,
         run_at = case when p_permanent or attempts >= max_attempts then run_at
                       else clock_timestamp() + make_interval(secs => greatest(p_retry_in_seconds, 0)) end,
         finished_at = case when p_permanent or attempts >= max_attempts then clock_timestamp() end,
         last_error = left(p_error, 4000),
         locked_by = null, lease_token = null, lease_until = null
   where id = p_id and lease_token = p_token
  returning state
$$;

create or replace function private.release_job(p_id bigint, p_token uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  update private.job_queue
     set state = 'queued', attempts = greatest(attempts - 1, 0), run_at = clock_timestamp(),
         locked_by = null, lease_token = null, lease_until = null
   where id = p_id and lease_token = p_token;
  return found;
end;
$$;

-- One job at a time, each in its own subtransaction with a short lock timeout: a job whose rows
-- are locked by a stalled transaction (kinds may mirror state into their own tables) is retried on
-- the next run instead of holding up the reaping of the others.
create or replace function private.requeue_expired_jobs()
returns integer
language plpgsql
set search_path = ''
set lock_timeout = '1s'
as $$
declare
  n integer := 0;
  expired bigint;
begin
  for expired in
    select id from private.job_queue
     where state = 'running' and lease_until < clock_timestamp()
     order by id
     for update skip locked
  loop
    begin
      update private.job_queue as q
         set state = case when q.attempts >= q.max_attempts then 'failed' else 'queued' end,
             finished_at = case when q.attempts >= q.max_attempts then clock_timestamp() end,
             run_at = clock_timestamp(),
             last_error = format('lease expired (worker %s lost) on attempt %s of %s',
                                 q.locked_by, q.attempts, q.max_attempts),
             locked_by = null, lease_token = null, lease_until = null
       where q.id = expired;
      n := n + 1;
    exception when lock_not_available then
      raise warning 'job %: not requeued yet, its rows are locked; retried on the next run', expired;
    end;
  end loop;
  return n;
end;
$$;

-- Returns the job's state after the call: cancelled at once when queued, still running (with
-- cancel_requested) when a worker holds it, unchanged when already finished.
create or replace function private.cancel_job(p_id bigint)
returns text
language sql
set search_path = ''
as $$
  update private.job_queue
     set state = case when state = 'queued' then 'cancelled' else state end,
         finished_at = case when state = 'queued' then clock_timestamp() else finished_at end,
         cancel_requested = cancel_requested or state in ('queued', 'running')
   where id = p_id
  returning state
$$;

-- Worker presence ---------------------------------------------------------------------------------
create table private.job_workers (
  worker_id text primary key,
  kinds text[] not null,
  concurrency integer not null,
  started_at timestamptz not null default now(),
  seen_at timestamptz not null default now()
);
comment on table private.job_workers is 'Running worker processes, refreshed by their heartbeat.';

create or replace function private.worker_seen(p_worker text, p_kinds text[], p_concurrency integer)
returns void
language sql
set search_path = ''
as $$
  insert into private.job_workers (worker_id, kinds, concurrency)
  values (p_worker, p_kinds, p_concurrency)
  on conflict (worker_id) do update set seen_at = now(), kinds = excluded.kinds,
                                        concurrency = excluded.concurrency;
  -- Workers killed without a goodbye leave a row behind; forget them after a day.
  delete from private.job_workers where seen_at < now() - interval '1 day';
$$;

create or replace function private.worker_stopped(p_worker text)
returns void
language sql
set search_path = ''
as $$
  delete from private.job_workers where worker_id = p_worker
$$;

create or replace function private.live_workers(p_kind text, p_seen_within_seconds double precision)
returns integer
language sql
stable
set search_path = ''
as $$
  select count(*)::integer from private.job_workers
   where p_kind = any (kinds) and seen_at > now() - make_interval(secs => p_seen_within_seconds)
$$;

revoke all on table private.job_queue, private.job_workers from public, anon, authenticated;
revoke execute on function
  private.notify_job_queued(),
  private.enqueue_job(text, jsonb, integer, timestamptz, integer),
  private.claim_jobs(text, text[], double precision, integer, bigint[]),
  private.seconds_until_next_job(text[]),
  private.heartbeat_jobs(uuid[], double precision),
  private.finish_job(bigint, uuid, text),
  private.fail_job(bigint, uuid, text, double precision, boolean),
  private.release_job(bigint, uuid),
  private.requeue_expired_jobs(),
  private.cancel_job(bigint),
  private.worker_seen(text, text[], integer),
  private.worker_stopped(text),
  private.live_workers(text, double precision)
from public, anon, authenticated;
