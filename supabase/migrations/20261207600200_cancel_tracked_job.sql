/*
 * One cancel for the jobs a user-facing table tracks (public.import_jobs, public.export_jobs).
 *
 * cancel_import_job and cancel_export_job were the same function twice. private.cancel_tracked_job
 * (table, id) is that function once: a queued job is cancelled at once, a running one gets
 * cancel_requested (its worker stops after the unit of work in flight), a finished one is left as it
 * is; an unknown id raises P0002. The queue row is cancelled first (its trigger mirrors the state into
 * the tracking table), then the tracking row: the lock order every path shares. The two named
 * functions stay as the API their callers use, and return their own row type.
 */

create or replace function private.cancel_tracked_job(p_table regclass, p_id bigint)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  job_state text;
  job_queue_id bigint;
  noun text := case p_table
    when 'public.import_jobs'::regclass then 'import'
    when 'public.export_jobs'::regclass then 'export' end;
begin
  if noun is null then
    raise exception 'cancel_tracked_job: % does not track jobs', p_table using errcode = '22023';
  end if;
  execute format('select state, queue_job_id from %s where id = $1', p_table)
    into job_state, job_queue_id using p_id;
  if job_state is null then
    raise exception '% job % not found', noun, p_id using errcode = 'P0002';
  end if;
  if job_state in ('queued', 'running') then
    perform private.cancel_job(job_queue_id);
    execute format('update %s set cancel_requested = true where id = $1', p_table) using p_id;
  end if;
end;
$$;
comment on function private.cancel_tracked_job(regclass, bigint) is
  'Cancel the queue job behind an import_jobs or export_jobs row (no-op once finished).';

-- SQL functions: the second statement sees what the first one changed (each runs on a new snapshot).
create or replace function private.cancel_import_job(p_id bigint)
returns public.import_jobs
language sql
security definer
set search_path = ''
as $$
  select private.cancel_tracked_job('public.import_jobs', p_id);
  select * from public.import_jobs where id = p_id;
$$;

create or replace function private.cancel_export_job(p_id bigint)
returns public.export_jobs
language sql
security definer
set search_path = ''
as $$
  select private.cancel_tracked_job('public.export_jobs', p_id);
  select * from public.export_jobs where id = p_id;
$$;

revoke execute on function private.cancel_tracked_job(regclass, bigint) from public, anon, authenticated;
