/*
 * Retry a failed or cancelled import from its checkpoint: private.retry_import_job(id, force).
 *
 * The import's queue job goes back to queued (due now, cancel flags cleared, a fresh budget of
 * p_max_attempts attempts); the state mirror turns the import queued too, and the NOTIFY trigger
 * wakes a worker. The worker resumes at checkpoint_offset/checkpoint_line, so the committed chunks
 * (their rows, counters and rejections) stay and are never written twice. A queue job that was
 * deleted (import_jobs.queue_job_id is then null) is replaced by a new one.
 *
 * Errors (PostgREST would answer 404 / 409 / 409):
 *   P0002  no such import
 *   55000  the import is queued, running or succeeded: only failed and cancelled ones are retried
 *   PT409  another import of the same file and kind is queued, running or succeeded (the rest of
 *          this one would then land twice), unless p_force
 *
 * Duplicate lines are detected across the checkpoint: the job's seen table (dropped when the job
 * ended) is rebuilt by the worker from the committed part of the file before it goes on.
 */

create or replace function private.retry_import_job(
  p_id bigint,
  p_force boolean default false,
  p_max_attempts integer default 5
)
returns public.import_jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  job public.import_jobs;
  other public.import_jobs;
  queue_id bigint;
begin
  select * into job from public.import_jobs where id = p_id;
  if not found then
    raise exception 'import job % not found', p_id using errcode = 'P0002';
  end if;
  -- Serialises with create_import_job for the same file, so the duplicate check below holds.
  perform pg_advisory_xact_lock(hashtextextended('kamioi.import:' || job.kind || ':' || job.file_sha256, 0));
  -- job_queue first, then import_jobs: the global lock order. The state is read again under the lock.
  perform 1 from private.job_queue where id = job.queue_job_id for update;
  select * into job from public.import_jobs where id = p_id for update;
  if job.state not in ('failed', 'cancelled') then
    raise exception 'import job % is %: only a failed or cancelled import can be retried', p_id, job.state
      using errcode = '55000',
            detail = jsonb_build_object('import_job_id', p_id, 'state', job.state)::text;
  end if;
  if not coalesce(p_force, false) then
    select * into other from public.import_jobs as ij
     where ij.file_sha256 = job.file_sha256 and ij.kind = job.kind and ij.id <> p_id
       and ij.state in ('queued', 'running', 'succeeded')
     order by ij.id desc
     limit 1;
    if found then
      raise exception 'import job % of the same file (%) is %: its rows would land twice',
                      other.id, job.kind, other.state
        using errcode = 'PT409',
              detail = jsonb_build_object('import_job_id', other.id, 'state', other.state)::text,
              hint = 'retry with force to import the rest of this one too';
    end if;
  end if;

  update private.job_queue as q
     set state = 'queued', run_at = clock_timestamp(), finished_at = null, cancel_requested = false,
         max_attempts = q.attempts + greatest(p_max_attempts, 1)
   where q.id = job.queue_job_id;
  if not found then
    queue_id := private.enqueue_job('import', jsonb_build_object('import_job_id', p_id), 0, now(),
                                    greatest(p_max_attempts, 1));
    update public.import_jobs
       set queue_job_id = queue_id, state = 'queued', attempts = 0, finished_at = null, eta_seconds = null
     where id = p_id;
  end if;
  update public.import_jobs set cancel_requested = false where id = p_id returning * into job;
  return job;
end;
$$;

revoke execute on function private.retry_import_job(bigint, boolean, integer) from public, anon, authenticated;
grant execute on function private.retry_import_job(bigint, boolean, integer) to service_role;
