/*
 * Job lanes: no user-facing job waits behind background work.
 *
 * Every job belongs to a lane, `user` (work a person is waiting for: imports, exports, mails) or
 * `background` (everything else: mapping, linking, investing, corrections, rollups). The lane is
 * looked up by kind in private.job_lanes when the job is inserted, so SQL and Python enqueues alike
 * get it without passing anything. Workers keep separate slots per lane (jobs/worker.py): a running
 * correction never occupies the slot a user's import needs, and within one claim user jobs come first.
 *
 * claim_jobs and seconds_until_next_job gain p_lanes (null: every lane), so a worker asks only for
 * the lanes it has free slots in. Their earlier signatures are dropped: a default-argument overload
 * would make every existing call ambiguous.
 */

create table private.job_lanes (
  kind text primary key check (kind ~ '^[a-z][a-z0-9_.]*$'),
  lane text not null check (lane in ('user', 'background'))
);
comment on table private.job_lanes is
  'The lane of each user-facing job kind; kinds not listed run in the background lane.';

insert into private.job_lanes (kind, lane) values
  ('import', 'user'),
  ('exports.csv', 'user'),
  ('mail.deliver', 'user');

alter table private.job_queue
  add column lane text not null default 'background' check (lane in ('user', 'background'));

update private.job_queue as q set lane = l.lane
  from private.job_lanes as l
 where l.kind = q.kind and q.state in ('queued', 'running');

create or replace function private.set_job_lane()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.lane := coalesce((select l.lane from private.job_lanes as l where l.kind = new.kind), 'background');
  return new;
end;
$$;

create trigger job_queue_set_lane
  before insert on private.job_queue
  for each row execute function private.set_job_lane();

-- Claim order: user lane first, then priority, then older run_at.
drop index private.job_queue_claim_idx;
create index job_queue_claim_idx on private.job_queue ((lane <> 'user'), priority, run_at, id)
  where state = 'queued';

drop function private.claim_jobs(text, text[], double precision, integer, bigint[]);
-- p_ids narrows the claim to given jobs (an operator running one job in-process).
create function private.claim_jobs(
  p_worker text, p_kinds text[], p_lease_seconds double precision, p_limit integer default 1,
  p_ids bigint[] default null, p_lanes text[] default null
)
returns setof private.job_queue
language sql
set search_path = ''
as $$
  update private.job_queue as q
     set state = 'running',
         attempts = q.attempts + 1,
         locked_by = p_worker,
         lease_token = gen_random_uuid(),
         lease_until = clock_timestamp() + make_interval(secs => p_lease_seconds),
         heartbeat_at = clock_timestamp(),
         started_at = coalesce(q.started_at, clock_timestamp())
    from (
      select j.id
        from private.job_queue as j
       where j.state = 'queued' and j.run_at <= clock_timestamp() and j.kind = any (p_kinds)
         and (p_ids is null or j.id = any (p_ids))
         and (p_lanes is null or j.lane = any (p_lanes))
       order by (j.lane <> 'user'), j.priority, j.run_at, j.id
       limit greatest(p_limit, 0)
       for update skip locked
    ) as next_jobs
   where q.id = next_jobs.id
  returning q.*
$$;

drop function private.seconds_until_next_job(text[]);
-- Seconds until the next queued job of these kinds (and lanes) is due (<= 0: now; null: none).
create function private.seconds_until_next_job(p_kinds text[], p_lanes text[] default null)
returns double precision
language sql
stable
set search_path = ''
as $$
  select extract(epoch from min(run_at) - clock_timestamp())::double precision
    from private.job_queue
   where state = 'queued' and kind = any (p_kinds) and (p_lanes is null or lane = any (p_lanes))
$$;

revoke all on table private.job_lanes from public, anon, authenticated;
revoke execute on function
  private.set_job_lane(),
  private.claim_jobs(text, text[], double precision, integer, bigint[], text[]),
  private.seconds_until_next_job(text[], text[])
from public, anon, authenticated;
