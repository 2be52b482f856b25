/*
 * Bulk imports: public.import_jobs (one row per uploaded file, the progress the admin UI shows) and
 * public.import_rejections (every rejected line: number, column, reason, raw text).
 *
 * Each import job runs as a private.job_queue job of kind 'import' (payload {"import_job_id": id}).
 * The queue row is the source of truth for the run state; a trigger mirrors it into import_jobs
 * (queued | running | succeeded | failed | cancelled), so lease expiry, retries and cancellation
 * show up here without every code path writing both rows. Lock order is always job_queue, then
 * import_jobs, so the mirror never deadlocks with the worker's per-chunk commits (which lock
 * import_jobs only).
 *
 * The worker commits each chunk together with the job row's checkpoint (byte offset + line) and
 * counters, as a compare-and-set on the previous checkpoint: a worker that lost its lease can
 * never commit a chunk that another worker has committed.
 *
 * Progress: every change of state or counters (one per chunk) broadcasts `import_progress` on the
 * private topic `admin:imports` (authorised for admins by the realtime migration).
 *
 * SQL API shared by the admin API and `kamioi import` (trusted callers: postgres, service_role):
 *   private.create_import_job(kind, file_path, sha256, size, created_by, force) -> import_jobs
 *     raises SQLSTATE PT409 when the same file (sha256, kind) was imported or is being imported,
 *     unless force; PostgREST would answer 409.
 *   private.cancel_import_job(id) -> import_jobs
 *     queued: cancelled at once. running: cancel_requested; the worker stops after the chunk in
 *     flight, chunks already committed stay imported (and counted), the state becomes cancelled.
 * Duplicate detection inside one file uses a scratch table per running job,
 * private.import_seen_<id> (row identity hash -> first line), dropped when the job ends.
 */

create table public.import_jobs (
  id bigint generated always as identity primary key,
  kind text not null check (kind in ('mappings', 'transactions')),
  state text not null default 'queued'
    check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  queue_job_id bigint references private.job_queue (id) on delete set null,
  file_path text not null,
  file_sha256 text not null check (file_sha256 ~ '^[0-9a-f]{64}$'),
  file_size bigint not null check (file_size >= 0),
  total_rows bigint,
  total_rows_exact boolean not null default false,
  processed_rows bigint not null default 0,
  inserted_rows bigint not null default 0,
  updated_rows bigint not null default 0,
  rejected_rows bigint not null default 0,
  rows_per_second numeric(14, 1),
  eta_seconds numeric(14, 1),
  checkpoint_offset bigint not null default 0,
  checkpoint_line bigint not null default 0,
  columns jsonb,
  attempts integer not null default 0,
  error text,
  created_by uuid references auth.users (id) on delete set null,
  force boolean not null default false,
  cancel_requested boolean not null default false,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now()
);
comment on table public.import_jobs is 'Bulk CSV imports: state, progress, checkpoint; one row per uploaded file.';
comment on column public.import_jobs.total_rows is 'Estimated from the bytes read so far until total_rows_exact.';
comment on column public.import_jobs.checkpoint_offset is 'Byte offset of the first line not yet committed.';
comment on column public.import_jobs.checkpoint_line is 'Lines (including the header) before checkpoint_offset.';
comment on column public.import_jobs.updated_rows is
  'mappings: merchants whose mapping in force moved to an imported approved mapping; transactions: 0.';

-- Admin list newest first (keyset); duplicate-file check by content hash.
create index import_jobs_created_at_idx on public.import_jobs (created_at desc, id desc);
create index import_jobs_sha256_idx on public.import_jobs (file_sha256, kind);
create index import_jobs_queue_job_idx on public.import_jobs (queue_job_id);

create table public.import_rejections (
  id bigint generated always as identity primary key,
  import_job_id bigint not null references public.import_jobs (id) on delete cascade,
  line_number bigint not null,
  column_name text,
  reason text not null,
  raw_line text,
  created_at timestamptz not null default now()
);
comment on table public.import_rejections is
  'Rejected import lines: line number (1 = header), column (null = whole line), reason, raw text (truncated).';
create index import_rejections_job_line_idx on public.import_rejections (import_job_id, line_number, id);

create trigger import_jobs_touch_updated_at
  before update on public.import_jobs
  for each row execute function private.touch_updated_at();

-- Admins read; nobody writes through the Data API (the worker and the admin API are trusted roles).
alter table public.import_jobs enable row level security;
alter table public.import_rejections enable row level security;
revoke all on public.import_jobs, public.import_rejections from anon;
revoke insert, update, delete, truncate, references, trigger
  on public.import_jobs, public.import_rejections from authenticated;

create policy "import_jobs: admins read" on public.import_jobs
  for select to authenticated
  using ((select private.is_admin()));
create policy "import_rejections: admins read" on public.import_rejections
  for select to authenticated
  using ((select private.is_admin()));

-- Progress broadcast ------------------------------------------------------------------------------
create or replace function private.broadcast_import_progress()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform realtime.send(
    jsonb_build_object(
      'id', new.id, 'kind', new.kind, 'state', new.state,
      'processed_rows', new.processed_rows, 'total_rows', new.total_rows,
      'total_rows_exact', new.total_rows_exact,
      'inserted_rows', new.inserted_rows, 'updated_rows', new.updated_rows,
      'rejected_rows', new.rejected_rows,
      'rows_per_second', new.rows_per_second, 'eta_seconds', new.eta_seconds,
      'cancel_requested', new.cancel_requested, 'error', new.error, 'updated_at', new.updated_at
    ),
    'import_progress',
    'admin:imports',
    true
  );
  return null;
end;
$$;

create trigger import_jobs_broadcast_insert
  after insert on public.import_jobs
  for each row execute function private.broadcast_import_progress();
create trigger import_jobs_broadcast_progress
  after update on public.import_jobs
  for each row
  when (old.processed_rows is distinct from new.processed_rows
        or old.state is distinct from new.state
        or old.cancel_requested is distinct from new.cancel_requested)
  execute function private.broadcast_import_progress();

-- Queue state mirror ------------------------------------------------------------------------------
create or replace function private.import_seen_table(p_import_job_id bigint)
returns text
language sql
immutable
set search_path = ''
as $$
  select format('private.%I', 'import_seen_' || p_import_job_id)
$$;

create or replace function private.mirror_import_queue_state()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  job public.import_jobs;
begin
  update public.import_jobs as ij
     set state = new.state,
         attempts = new.attempts,
         error = case when new.state in ('queued', 'failed') then new.last_error
                      when new.state = 'succeeded' then null else ij.error end,
         started_at = case when new.state = 'running' then coalesce(ij.started_at, now()) else ij.started_at end,
         finished_at = case when new.state in ('succeeded', 'failed', 'cancelled') then now() end,
         eta_seconds = case when new.state = 'running' then ij.eta_seconds end
   where ij.queue_job_id = new.id
  returning ij.* into job;
  if found and new.state in ('succeeded', 'failed', 'cancelled') then
    execute format('drop table if exists %s', private.import_seen_table(job.id));
  end if;
  return null;
end;
$$;

create trigger job_queue_mirror_import_state
  after update of state on private.job_queue
  for each row
  when (new.kind = 'import' and old.state is distinct from new.state)
  execute function private.mirror_import_queue_state();

-- SQL API -----------------------------------------------------------------------------------------
create or replace function private.create_import_job(
  p_kind text,
  p_file_path text,
  p_sha256 text,
  p_size bigint,
  p_created_by uuid default null,
  p_force boolean default false,
  p_max_attempts integer default 5
)
returns public.import_jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  existing public.import_jobs;
  created public.import_jobs;
  queue_id bigint;
begin
  if p_kind is null or p_kind not in ('mappings', 'transactions') then
    raise exception 'import kind must be mappings or transactions, got %', coalesce(p_kind, 'null')
      using errcode = '22023';
  end if;
  -- Two uploads of one file at the same moment: the second waits here, then sees the first.
  perform pg_advisory_xact_lock(hashtextextended('kamioi.import:' || p_kind || ':' || lower(p_sha256), 0));
  if not coalesce(p_force, false) then
    select * into existing from public.import_jobs as ij
     where ij.file_sha256 = lower(p_sha256) and ij.kind = p_kind
       and ij.state in ('queued', 'running', 'succeeded')
     order by ij.id desc
     limit 1;
    if found then
      raise exception 'this file was already imported as %: import job % is %',
                      p_kind, existing.id, existing.state
        using errcode = 'PT409',
              detail = jsonb_build_object('import_job_id', existing.id, 'state', existing.state)::text,
              hint = 'import it again with force';
    end if;
  end if;

  insert into public.import_jobs (kind, file_path, file_sha256, file_size, created_by, force)
  values (p_kind, p_file_path, lower(p_sha256), p_size, p_created_by, coalesce(p_force, false))
  returning * into created;
  queue_id := private.enqueue_job('import', jsonb_build_object('import_job_id', created.id), 0, now(),
                                  p_max_attempts);
  update public.import_jobs set queue_job_id = queue_id where id = created.id returning * into created;
  return created;
end;
$$;

create or replace function private.cancel_import_job(p_id bigint)
returns public.import_jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  job public.import_jobs;
begin
  select * into job from public.import_jobs where id = p_id;
  if not found then
    raise exception 'import job % not found', p_id using errcode = 'P0002';
  end if;
  if job.state not in ('queued', 'running') then
    return job;  -- already finished: cancelling is a no-op
  end if;
  -- job_queue first (its trigger updates import_jobs), then import_jobs: the global lock order.
  perform private.cancel_job(job.queue_job_id);
  update public.import_jobs set cancel_requested = true where id = p_id returning * into job;
  return job;
end;
$$;

revoke execute on function
  private.broadcast_import_progress(),
  private.import_seen_table(bigint),
  private.mirror_import_queue_state(),
  private.create_import_job(text, text, text, bigint, uuid, boolean, integer),
  private.cancel_import_job(bigint)
from public, anon, authenticated;
grant execute on function
  private.create_import_job(text, text, text, bigint, uuid, boolean, integer),
  private.cancel_import_job(bigint)
to service_role;
