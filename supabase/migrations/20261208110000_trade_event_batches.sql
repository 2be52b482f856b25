/*
 * Trade events applied in batches: private.apply_trade_events(stream, events jsonb array) applies
 * each event of the array in order with private.apply_trade_event, all in one transaction, and
 * returns each event's outcome ('applied', 'duplicate', 'unknown_order') in the same order.
 *
 * Why: the job read one event, applied it, committed, read the next; a sweep's 600 events were 600
 * round trips and commits. Whatever the stream has delivered by the time the previous batch commits
 * is now applied together (the job reads the stream on a thread). Exactly once is unchanged: the
 * stream cursor still commits with the allocations of every event it passes, now a batch at a time,
 * and a batch lost to a crash is read again from the cursor (duplicates inside it are no-ops).
 * For the same reason a batch commits without waiting for the WAL flush: events whose commit a crash
 * loses are consumed again from the broker (since_id), never twice.
 */

create or replace function private.apply_trade_events(p_stream text, p_events jsonb)
returns text[]
language plpgsql
set search_path = ''
as $$
declare
  v_outcomes text[] := array[]::text[];
  v_event jsonb;
begin
  perform set_config('synchronous_commit', 'off', true);
  if jsonb_typeof(p_events) is distinct from 'array' then
    raise exception 'trade events must be a JSON array, got %', jsonb_typeof(p_events) using errcode = '22023';
  end if;
  for v_event in select e.value from jsonb_array_elements(p_events) with ordinality as e (value, n) order by e.n
  loop
    v_outcomes := array_append(v_outcomes, private.apply_trade_event(p_stream, v_event));
  end loop;
  return v_outcomes;
end;
$$;
comment on function private.apply_trade_events(text, jsonb) is
  'Apply a batch of broker trade events in order, in one transaction; returns each one''s outcome.';
revoke execute on function private.apply_trade_events(text, jsonb) from public, anon, authenticated;
