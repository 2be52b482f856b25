/*
 * Job progress for followers without a Realtime server: every progress broadcast is also a NOTIFY.
 *
 * private.publish_job_progress(topic, event, payload) broadcasts on the Realtime topic (what the
 * admin UI and, where a Realtime server runs, `kamioi import` follow) and sends the same message
 * on the LISTEN channel `kamioi_job_progress` as {"topic", "event", "payload"}: locally (no Realtime
 * server) the CLI's progress bar LISTENs instead of polling the job row. NOTIFY is delivered at
 * commit, so a follower sees exactly the chunks that committed. A NOTIFY payload is limited to
 * 8000 bytes: past that the payload's `error` text (the only unbounded field of a progress
 * message) is cut to 1000 characters.
 *
 * The import progress trigger is re-pointed at it; export jobs call it from their own trigger.
 */

create or replace function private.publish_job_progress(p_topic text, p_event text, p_payload jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  message text := jsonb_build_object('topic', p_topic, 'event', p_event, 'payload', p_payload)::text;
begin
  perform realtime.send(p_payload, p_event, p_topic, true);
  if octet_length(message) > 7999 and p_payload ? 'error' then
    message := jsonb_build_object(
      'topic', p_topic, 'event', p_event,
      'payload', p_payload || jsonb_build_object('error', left(p_payload ->> 'error', 1000)))::text;
  end if;
  perform pg_notify('kamioi_job_progress', message);
end;
$$;
comment on function private.publish_job_progress(text, text, jsonb) is
  'Broadcast a job progress message on a Realtime topic and NOTIFY it on kamioi_job_progress.';

create or replace function private.broadcast_import_progress()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.publish_job_progress(
    'admin:imports',
    'import_progress',
    jsonb_build_object(
      'id', new.id, 'kind', new.kind, 'state', new.state,
      'processed_rows', new.processed_rows, 'total_rows', new.total_rows,
      'total_rows_exact', new.total_rows_exact,
      'inserted_rows', new.inserted_rows, 'updated_rows', new.updated_rows,
      'rejected_rows', new.rejected_rows,
      'rows_per_second', new.rows_per_second, 'eta_seconds', new.eta_seconds,
      'cancel_requested', new.cancel_requested, 'error', new.error, 'updated_at', new.updated_at
    )
  );
  return null;
end;
$$;

revoke execute on function private.publish_job_progress(text, text, jsonb) from public, anon, authenticated;
