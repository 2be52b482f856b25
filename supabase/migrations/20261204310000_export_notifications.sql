/*
 * Exports tell their admin the way imports do (20261204300000, 20261204300100):
 * - progress goes through private.publish_job_progress, so `export_progress` is both the Realtime
 *   broadcast on `admin:exports` and a NOTIFY on kamioi_job_progress (what `kamioi export` follows
 *   where no Realtime server runs);
 * - an export that ends (succeeded, failed, cancelled) queues one mail to the admin who asked for
 *   it, with its row count and download link, sent by the worker (never inside the export).
 */

create or replace function private.broadcast_export_progress()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.publish_job_progress(
    'admin:exports',
    'export_progress',
    jsonb_build_object(
      'id', new.id, 'list', new.list, 'state', new.state, 'rows_written', new.rows_written,
      'bytes_written', new.bytes_written, 'cancel_requested', new.cancel_requested,
      'download_url', new.download_url, 'error', new.error, 'updated_at', new.updated_at
    )
  );
  return null;
end;
$$;

create or replace function private.mail_finished_export()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.enqueue_job_mail(
    'export',
    new.id,
    new.requested_by,
    jsonb_build_object(
      'list', new.list, 'state', new.state, 'rows_written', new.rows_written, 'error', new.error,
      'link', coalesce(new.download_url, format('/v1/exports/%s', new.id))
    )
  );
  return null;
end;
$$;

create trigger export_jobs_mail_when_finished
  after update of state on public.export_jobs
  for each row
  when (new.state in ('succeeded', 'failed', 'cancelled')
        and old.state is distinct from new.state
        and new.requested_by is not null)
  execute function private.mail_finished_export();
