/*
 * Map the merchants of every transactions import as soon as it succeeds.
 *
 * The map_merchants job is enqueued by a trigger in the same transaction that marks the import
 * succeeded, so a crash can never leave an imported file without its mapping job, and no caller
 * (API, CLI, demo) has to remember to enqueue it.
 */

create or replace function private.enqueue_mapping_after_import()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform private.enqueue_job('map_merchants', jsonb_build_object('import_job_id', new.id));
  return null;
end;
$$;

create trigger import_jobs_enqueue_mapping
  after update of state on public.import_jobs
  for each row
  when (new.state = 'succeeded' and old.state is distinct from 'succeeded' and new.kind = 'transactions')
  execute function private.enqueue_mapping_after_import();
