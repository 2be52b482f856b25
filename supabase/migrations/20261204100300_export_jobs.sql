/*
 * CSV exports of the admin lists as background report jobs: public.export_jobs, one row per
 * requested export (what, which filters, progress, the file), run by the worker as job kind
 * 'exports.csv' (payload {"export_job_id": id}).
 *
 * The worker walks the list's private page function (20261204100200_admin_lists.sql) in keyset
 * chunks, so an export holds one chunk in memory whatever its size and means exactly what the list
 * means for the same filters. After each chunk is written to the file it commits the chunk's
 * checkpoint (the last row's sort key, rows and bytes written), so a crashed export resumes at the
 * checkpoint: the file is cut back to the committed bytes and the walk continues after the
 * committed key; no row is written twice or skipped.
 *
 * State: the queue row is the source of truth and a trigger mirrors it here (as import_jobs do).
 * Cancelling (private.cancel_export_job) stops a running export after the chunk in flight and
 * deletes its partial file. Every change of state or progress broadcasts `export_progress` on the
 * private topic `admin:exports` (admins only, like `admin:imports`).
 *
 * SQL API (trusted callers: postgres, service_role; the admin API checks the caller is an admin):
 *   private.create_export_job(list, filters, sort, requested_by) -> export_jobs
 *   private.cancel_export_job(id) -> export_jobs
 *   private.record_export_chunk(id, after_key, rows, bytes, expected_rows) -> export_jobs
 *     compare-and-set on the previous rows count: a worker that lost its lease cannot commit.
 */

create table public.export_jobs (
  id bigint generated always as identity primary key,
  list text not null check (list in ('transactions', 'mappings', 'users')),
  filters jsonb not null default '{}' check (jsonb_typeof(filters) = 'object'),
  sort text,
  state text not null default 'queued'
    check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  queue_job_id bigint references private.job_queue (id) on delete set null,
  rows_written bigint not null default 0,
  bytes_written bigint not null default 0,
  after_key jsonb,
  file_name text,
  file_sha256 text,
  download_url text,
  attempts integer not null default 0,
  error text,
  requested_by uuid references auth.users (id) on delete set null,
  cancel_requested boolean not null default false,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now()
);
comment on table public.export_jobs is 'CSV exports of the admin lists: filters, state, progress, the file.';
comment on column public.export_jobs.after_key is 'Sort key of the last exported row (the resume point).';
comment on column public.export_jobs.bytes_written is 'Bytes of the file that hold the committed rows.';

create index export_jobs_created_at_idx on public.export_jobs (created_at desc, id desc);
create index export_jobs_queue_job_idx on public.export_jobs (queue_job_id);

create trigger export_jobs_touch_updated_at
  before update on public.export_jobs
  for each row execute function private.touch_updated_at();

alter table public.export_jobs enable row level security;
create policy "export_jobs: admins read" on public.export_jobs
  for select to authenticated
  using ((select private.is_admin()));
grant select on public.export_jobs to authenticated;
grant select, insert, update, delete on public.export_jobs to service_role;

-- Progress broadcast ------------------------------------------------------------------------------
create or replace function private.broadcast_export_progress()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform realtime.send(
    jsonb_build_object(
      'id', new.id, 'list', new.list, 'state', new.state, 'rows_written', new.rows_written,
      'bytes_written', new.bytes_written, 'cancel_requested', new.cancel_requested,
      'download_url', new.download_url, 'error', new.error, 'updated_at', new.updated_at
    ),
    'export_progress',
    'admin:exports',
    true
  );
  return null;
end;
$$;

create trigger export_jobs_broadcast_insert
  after insert on public.export_jobs
  for each row execute function private.broadcast_export_progress();
create trigger export_jobs_broadcast_progress
  after update on public.export_jobs
  for each row
  when (old.rows_written is distinct from new.rows_written
        or old.state is distinct from new.state
        or old.cancel_requested is distinct from new.cancel_requested
        or old.download_url is distinct from new.download_url)
  execute function private.broadcast_export_progress();

-- Queue state mirror ------------------------------------------------------------------------------
create or replace function private.mirror_export_queue_state()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  update public.export_jobs as e
     set state = new.state,
         attempts = new.attempts,
         error = case when new.state in ('queued', 'failed') then new.last_error
                      when new.state = 'succeeded' then null else e.error end,
         started_at = case when new.state = 'running' then coalesce(e.started_at, now()) else e.started_at end,
         finished_at = case when new.state in ('succeeded', 'failed', 'cancelled') then now() end
   where e.queue_job_id = new.id;
  return null;
end;
$$;

create trigger job_queue_mirror_export_state
  after update of state on private.job_queue
  for each row
  when (new.kind = 'exports.csv' and old.state is distinct from new.state)
  execute function private.mirror_export_queue_state();

-- SQL API -----------------------------------------------------------------------------------------
create or replace function private.create_export_job(
  p_list text,
  p_filters jsonb,
  p_sort text,
  p_requested_by uuid
)
returns public.export_jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  created public.export_jobs;
  filters jsonb := jsonb_strip_nulls(coalesce(p_filters, '{}'::jsonb));
begin
  -- The list's own page function validates the filters (names and values) before anything is
  -- queued: a bad filter is the caller's error now, not a failed job later.
  case p_list
    when 'transactions' then perform private.admin_transactions_page(p_filters, null, null, 0);
    when 'mappings' then perform private.admin_mappings_page(p_filters, p_sort, null, null, null, 0);
    when 'users' then perform private.admin_users_page(p_filters, null, null, null, 0);
    else
      raise exception 'unknown list: %', coalesce(p_list, 'null')
        using errcode = '22023', hint = 'transactions, mappings or users';
  end case;

  insert into public.export_jobs (list, filters, sort, requested_by)
  values (p_list, filters, case when p_list = 'mappings' then coalesce(p_sort, 'newest') end, p_requested_by)
  returning * into created;
  update public.export_jobs
     set queue_job_id = private.enqueue_job('exports.csv', jsonb_build_object('export_job_id', created.id), 0, now(), 5),
         file_name = format('%s-%s.csv', created.list, created.id)
   where id = created.id
  returning * into created;
  return created;
end;
$$;

create or replace function private.cancel_export_job(p_id bigint)
returns public.export_jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  job public.export_jobs;
begin
  select * into job from public.export_jobs where id = p_id;
  if not found then
    raise exception 'export job % not found', p_id using errcode = 'P0002';
  end if;
  if job.state not in ('queued', 'running') then
    return job;  -- already finished: cancelling is a no-op
  end if;
  -- job_queue first (its trigger updates export_jobs), then export_jobs: the import jobs' lock order.
  perform private.cancel_job(job.queue_job_id);
  update public.export_jobs set cancel_requested = true where id = p_id returning * into job;
  return job;
end;
$$;

create or replace function private.record_export_chunk(
  p_id bigint,
  p_after_key jsonb,
  p_rows bigint,
  p_bytes bigint,
  p_expected_rows bigint
)
returns public.export_jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  job public.export_jobs;
begin
  update public.export_jobs
     set after_key = p_after_key, rows_written = p_rows, bytes_written = p_bytes
   where id = p_id and rows_written = p_expected_rows
  returning * into job;
  if not found then
    raise exception 'export job % moved on without this worker (expected % rows written)', p_id, p_expected_rows
      using errcode = '40001';
  end if;
  return job;
end;
$$;

grant execute on function
  private.create_export_job(text, jsonb, text, uuid),
  private.cancel_export_job(bigint),
  private.record_export_chunk(bigint, jsonb, bigint, bigint, bigint)
to service_role;

-- Admins hear admin:exports as they hear admin:imports --------------------------------------------
drop policy "realtime: admins hear admin topics, users their own topic" on realtime.messages;
create policy "realtime: admins hear admin topics, users their own topic" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    and realtime.messages.topic = (select realtime.topic())
    and (
      ((select realtime.topic()) in ('admin:imports', 'admin:exports', 'admin:review_queue')
        and (select private.is_admin()))
      or (select realtime.topic()) = 'user:' || (select auth.uid())::text || ':transactions'
    )
  );
