/*
 * Mail to the admin who started a job, when it ends: an outbox the worker drains over SMTP.
 *
 * private.enqueue_job_mail(job_kind, job_id, user_id, details) adds one message for the user's
 * auth email (none if the user has no email) and queues job kind `mail.deliver` once. It is one
 * insert in the caller's transaction, so the job that ends never waits on SMTP, and a mail exists
 * exactly when the job's end committed. `details` is what the mail says (counts, state, error, and
 * `link`: a URL, or a path under the admin API's URL); jobs/mail.py renders and sends it.
 *
 * Delivery (private.claim_due_mails / record_mail_sent / record_mail_failure, job `mail.deliver`):
 * a claim counts the attempt and leases the row (next_attempt_at moves past the lease, so a worker
 * killed mid-send leaves it due again, and two workers never send one row at the same time); a
 * failure backs off base * 2^(attempts-1) seconds (at most max); the attempt that reaches
 * max_attempts turns the row `dead` with its last error (the dead letters, kept for an operator).
 * pg_cron queues `mail.deliver` every minute while a pending row is due, so a retry whose job was
 * lost still goes out.
 *
 * Imports: the end of an import job (succeeded, failed, cancelled) started by a user enqueues its
 * mail from a trigger on public.import_jobs.
 */

create table private.mail_outbox (
  id bigint generated always as identity primary key,
  job_kind text not null,
  job_id bigint not null,
  recipient text not null check (recipient like '%_@_%'),
  details jsonb not null default '{}'::jsonb,
  state text not null default 'pending' check (state in ('pending', 'sent', 'dead')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
comment on table private.mail_outbox is
  'Mails about finished jobs: pending until sent over SMTP, dead after the last failed attempt.';
create index mail_outbox_due_idx on private.mail_outbox (next_attempt_at) where state = 'pending';
create index mail_outbox_job_idx on private.mail_outbox (job_kind, job_id);
alter table private.mail_outbox enable row level security;
revoke all on private.mail_outbox from anon, authenticated, service_role;

create or replace function private.enqueue_job_mail(
  p_job_kind text, p_job_id bigint, p_user_id uuid, p_details jsonb default '{}'::jsonb
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  address text;
  mail_id bigint;
begin
  select u.email into address from auth.users as u where u.id = p_user_id;
  if address is null or address not like '%_@_%' then
    return null;
  end if;
  insert into private.mail_outbox (job_kind, job_id, recipient, details)
  values (p_job_kind, p_job_id, address, coalesce(p_details, '{}'::jsonb))
  returning id into mail_id;
  perform private.enqueue_job_once('mail.deliver');
  return mail_id;
end;
$$;
comment on function private.enqueue_job_mail(text, bigint, uuid, jsonb) is
  'Queue a mail to the user about a finished job (details: what it says, link included); null if no email.';

-- p_ids narrows the claim to given mails (a test, an operator resending one).
create or replace function private.claim_due_mails(
  p_limit integer, p_lease_s double precision, p_ids bigint[] default null
)
returns setof private.mail_outbox
language sql
set search_path = ''
as $$
  update private.mail_outbox as m
     set attempts = m.attempts + 1,
         next_attempt_at = clock_timestamp() + make_interval(secs => p_lease_s)
   where m.id in (
     select d.id from private.mail_outbox as d
      where d.state = 'pending' and d.next_attempt_at <= clock_timestamp()
        and (p_ids is null or d.id = any (p_ids))
      order by d.next_attempt_at, d.id
      limit p_limit
      for update skip locked)
  returning m.*
$$;

create or replace function private.record_mail_sent(p_id bigint, p_attempt integer)
returns void
language sql
set search_path = ''
as $$
  update private.mail_outbox
     set state = 'sent', sent_at = clock_timestamp(), last_error = null
   where id = p_id and attempts = p_attempt and state = 'pending'
$$;

-- Returns the row's state afterwards (pending: retried later; dead: given up).
create or replace function private.record_mail_failure(
  p_id bigint, p_attempt integer, p_error text, p_max_attempts integer,
  p_base_s double precision, p_max_s double precision
)
returns text
language sql
set search_path = ''
as $$
  update private.mail_outbox
     set state = case when attempts >= p_max_attempts then 'dead' else 'pending' end,
         last_error = left(p_error, 2000),
         next_attempt_at = clock_timestamp()
           + make_interval(secs => least(p_max_s, p_base_s * 2 ^ greatest(attempts - 1, 0)))
   where id = p_id and attempts = p_attempt and state = 'pending'
  returning state
$$;

-- The next time a pending mail falls due (null: none pending).
create or replace function private.next_mail_due_at()
returns timestamptz
language sql
stable
set search_path = ''
as $$
  select min(next_attempt_at) from private.mail_outbox where state = 'pending'
$$;

create or replace function private.enqueue_due_mails()
returns void
language sql
set search_path = ''
as $$
  select private.enqueue_job_once('mail.deliver')
  where exists (
    select 1 from private.mail_outbox as m where m.state = 'pending' and m.next_attempt_at <= clock_timestamp())
    and not exists (select 1 from private.job_queue as q where q.kind = 'mail.deliver' and q.state = 'running')
$$;

-- Imports ---------------------------------------------------------------------------------------
create or replace function private.mail_finished_import()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.enqueue_job_mail(
    'import',
    new.id,
    new.created_by,
    jsonb_build_object(
      'kind', new.kind, 'state', new.state,
      'processed_rows', new.processed_rows, 'inserted_rows', new.inserted_rows,
      'updated_rows', new.updated_rows, 'rejected_rows', new.rejected_rows,
      'error', new.error,
      'link', case when new.rejected_rows > 0 then format('/v1/imports/%s/rejections', new.id)
                   else format('/v1/imports/%s', new.id) end
    )
  );
  return null;
end;
$$;

create trigger import_jobs_mail_when_finished
  after update of state on public.import_jobs
  for each row
  when (new.state in ('succeeded', 'failed', 'cancelled')
        and old.state is distinct from new.state
        and new.created_by is not null)
  execute function private.mail_finished_import();

revoke execute on function
  private.enqueue_job_mail(text, bigint, uuid, jsonb),
  private.claim_due_mails(integer, double precision, bigint[]),
  private.record_mail_sent(bigint, integer),
  private.record_mail_failure(bigint, integer, text, integer, double precision, double precision),
  private.next_mail_due_at(),
  private.enqueue_due_mails(),
  private.mail_finished_import()
from public, anon, authenticated;

select cron.schedule('kamioi-deliver-mail', '* * * * *', 'select private.enqueue_due_mails()');
