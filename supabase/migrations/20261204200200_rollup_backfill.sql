/*
 * Backfill of the chart rollups for rows older than the rollup triggers (analytics rollups migration).
 *
 * private.backfill_rollups_chunk(source, ids) counts the next `ids` ids above the source's
 * covered_upto (never past its high water) into the rollup deltas and moves covered_upto, in one
 * transaction under the source's exclusive backfill lock: a writer that changed a row in that range
 * either committed before (the chunk sees its result and its trigger skipped the row) or waits for
 * the chunk (and its trigger then counts the change against what the chunk counted). It returns how
 * many ids it covered, `ids` until the last chunk, 0 once the source is done: the job kind
 * `rollups.backfill` (jobs/backfill_rollups.py) repeats it until a chunk comes back short, and a run
 * that died resumes at covered_upto.
 *
 * private.restart_rollup_backfill(source) rebuilds a source's rollups from scratch the same way
 * (after a fix to how a rollup counts, or to check them): it waits for the source's writers (the lock
 * a trigger's creation takes), forgets the rollups, makes every current row the backfill's and
 * queues the job.
 *
 * The job is queued here when a source has rows to backfill (a fresh database has none).
 */

create or replace function private.backfill_rollups_chunk(p_source text, p_ids bigint)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  covered bigint;
  high bigint;
  upto bigint;
begin
  if p_ids < 1 then
    raise exception 'ids must be positive' using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock(private.rollup_lock_key(p_source));
  select b.covered_upto, b.high_water into covered, high
  from private.rollup_backfills as b where b.source = p_source for update;
  if not found then
    raise exception 'no rollup source %', p_source using errcode = '22023';
  end if;
  if covered >= high then
    return 0;
  end if;
  upto := case when p_ids >= high - covered then high else covered + p_ids end;  -- never overflows
  execute private.rollup_insert_sql(p_source, format(
    'select 1 as sign, %s from public.%I where id > $1 and id <= $2', private.rollup_columns(p_source), p_source
  )) using covered, upto;
  update private.rollup_backfills
  set covered_upto = upto, done_at = case when upto >= high then now() end
  where source = p_source;
  return upto - covered;
end;
$$;
comment on function private.backfill_rollups_chunk(text, bigint) is
  'Count the next ids of a rollup source''s backfill (exact under concurrent writes); returns the ids covered.';

create or replace function private.restart_rollup_backfill(p_source text)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  high bigint;
begin
  if p_source not in ('transactions', 'allocations', 'llm_mappings') then
    raise exception 'no rollup source %', p_source using errcode = '22023';
  end if;
  execute format('lock table public.%I in share row exclusive mode', p_source);
  execute format('select coalesce(max(id), 0) from public.%I', p_source) into high;
  perform private.forget_rollups(p_source);
  update private.rollup_backfills
  set high_water = high, covered_upto = 0, done_at = case when high = 0 then now() end
  where source = p_source;
  perform private.enqueue_job_once('rollups.backfill');
  return high;
end;
$$;
comment on function private.restart_rollup_backfill(text) is
  'Forget a source''s rollups and count every current row again by the backfill job; returns the new high water.';

select private.enqueue_job_once('rollups.backfill')
where exists (select 1 from private.rollup_backfills where covered_upto < high_water);
