/*
 * Imports name a Supabase Storage object, so the API and the workers need no shared disk.
 *
 * The admin's browser uploads straight to a private bucket (a signed upload URL, resumable over TUS),
 * or the admin API streams a multipart upload into it; the import job records the object
 * (storage_bucket + file_path, the object's path in it) and the version it hashed (storage_etag). A
 * worker on any host streams the object with range reads from the job's checkpoint, after checking
 * that its size and ETag are still those recorded: a resumed job never reads the file again from the
 * start, and an object replaced since registration fails the job instead of importing other rows.
 *
 * Jobs with no bucket keep naming a file on the worker's own disk: `kamioi import --inline` (the CLI
 * runs the job in its own process) and the test and benchmark harnesses, which start their workers
 * on the same machine.
 *
 * private.create_import_job gains the two arguments (defaults keep every caller valid); it is dropped
 * and created again because an argument list cannot change in place.
 */

alter table public.import_jobs
  add column storage_bucket text check (storage_bucket ~ '^[A-Za-z0-9._-]{1,100}$'),
  add column storage_etag text check (length(storage_etag) <= 200);
comment on column public.import_jobs.file_path is
  'The object''s path in storage_bucket; with no bucket, a path on the worker''s own disk (inline imports).';
comment on column public.import_jobs.storage_bucket is 'The Storage bucket holding the imported file, or null.';
comment on column public.import_jobs.storage_etag is
  'The object''s ETag when it was hashed at registration; a worker refuses an object whose ETag differs.';

drop function private.create_import_job(text, text, text, bigint, uuid, boolean, integer);

create function private.create_import_job(
  p_kind text,
  p_file_path text,
  p_sha256 text,
  p_size bigint,
  p_created_by uuid default null,
  p_force boolean default false,
  p_max_attempts integer default 5,
  p_storage_bucket text default null,
  p_storage_etag text default null
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

  insert into public.import_jobs (kind, file_path, file_sha256, file_size, created_by, force, storage_bucket, storage_etag)
  values (p_kind, p_file_path, lower(p_sha256), p_size, p_created_by, coalesce(p_force, false),
          p_storage_bucket, p_storage_etag)
  returning * into created;
  queue_id := private.enqueue_job('import', jsonb_build_object('import_job_id', created.id), 0, now(),
                                  p_max_attempts);
  update public.import_jobs set queue_job_id = queue_id where id = created.id returning * into created;
  return created;
end;
$$;

revoke execute on function
  private.create_import_job(text, text, text, bigint, uuid, boolean, integer, text, text)
from public, anon, authenticated;
grant execute on function
  private.create_import_job(text, text, text, bigint, uuid, boolean, integer, text, text)
to service_role;
