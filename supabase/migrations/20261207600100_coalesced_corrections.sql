/*
 * Coalesced corrections: one `allocations.correct` job for a batch of changed mappings, never one per
 * mapping.
 *
 * Before, every mapping that left force queued its own job: a mappings import that moved 340
 * merchants' mappings in force queued about 200 jobs, and the queue ran them one by one. Now the
 * statement-level triggers (unchanged, see 20261203120400_allocation_engine.sql) record the mappings
 * in private.correction_requests and queue a single job unless one is already queued; the job
 * (jobs/correct_allocations.py) works through every request it finds, so requests added while a job
 * waits ride along with it.
 *
 * private.correction_requests: one row per mapping to look at; requested_at moves forward when the
 * mapping is requested again, and the job deletes a request only if it is unchanged since it read it
 * (a request made while its mapping was being corrected is not lost).
 */

create table private.correction_requests (
  mapping_id bigint primary key,
  requested_at timestamptz not null default clock_timestamp()
);
comment on table private.correction_requests is
  'Mappings with lots whose open lots may have to be reversed; drained by the allocations.correct job.';

-- A mapping that chose lots: is there a lot to look at? (One probe of allocations_mapping_buys_idx.)
create or replace function private.enqueue_corrections(p_mapping_ids bigint[])
returns void
language plpgsql
set search_path = ''
as $$
begin
  insert into private.correction_requests as r (mapping_id)
  select ids.mapping_id
    from (select distinct unnest(p_mapping_ids) as mapping_id) as ids
   where exists (select 1 from public.allocations as a where a.mapping_id = ids.mapping_id and a.kind = 'buy')
  on conflict (mapping_id) do update set requested_at = clock_timestamp();
  if found then
    perform private.enqueue_job_once('allocations.correct');
  end if;
end;
$$;

-- Done with a mapping: forget its request unless it was requested again since p_seen.
create or replace function private.finish_correction_request(p_mapping_id bigint, p_seen timestamptz)
returns void
language sql
set search_path = ''
as $$
  delete from private.correction_requests where mapping_id = p_mapping_id and requested_at = p_seen
$$;

-- Jobs queued one per mapping before this migration become requests of one job.
insert into private.correction_requests (mapping_id)
select distinct (q.payload ->> 'mapping_id')::bigint
  from private.job_queue as q
 where q.kind = 'allocations.correct' and q.state = 'queued' and q.payload ? 'mapping_id'
on conflict (mapping_id) do nothing;

update private.job_queue
   set state = 'cancelled', finished_at = clock_timestamp(), last_error = 'folded into one coalesced correction job'
 where kind = 'allocations.correct' and state = 'queued' and payload ? 'mapping_id';

select private.enqueue_job_once('allocations.correct')
 where exists (select 1 from private.correction_requests);

revoke all on table private.correction_requests from public, anon, authenticated;
revoke execute on function
  private.enqueue_corrections(bigint[]),
  private.finish_correction_request(bigint, timestamptz)
from public, anon, authenticated;
