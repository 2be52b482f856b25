-- Provider retries: claiming due merchant keys (fenced, leased), backoff and the attempt cap, and the
-- scheduler's job.
begin;
\ir _helpers.psql
select plan(28);

-- Only this file's rows are due, and no re-ask job is waiting (all of it rolled back at the end).
update public.llm_mappings set next_attempt_at = null where next_attempt_at is not null;
delete from private.job_queue where kind = 'mappings.reask' and state in ('queued', 'running');

create function tests.placeholder(
  p_key text, p_state text, p_attempts integer, p_due interval, p_source text default 'llm'
) returns bigint language sql as $$
  insert into public.llm_mappings
    (merchant_name, merchant_key, tier, source, reason, provider_state, provider_attempts, next_attempt_at)
  values (upper(p_key), p_key, 'review', p_source, 'sent to openai_compatible; awaiting its answer', p_state,
          p_attempts, now() + p_due)
  returning id
$$;

select tests.placeholder('zqr due', 'failed', 1, '-1 minute') as due_id \gset
select tests.placeholder('zqr crashed', 'asking', 2, '-2 minutes') as crashed_id \gset
select tests.placeholder('zqr spent', 'asking', 3, '-3 minutes') as spent_id \gset
select tests.placeholder('zqr later', 'failed', 1, '1 hour') as later_id \gset
select tests.placeholder('zqr reviewed', 'failed', 1, '-4 minutes') as reviewed_id \gset
update public.llm_mappings set status = 'rejected', reviewed_at = now() where id = :reviewed_id;
select tests.placeholder('zqr suggested', 'failed', 0, '-5 minutes', 'user') as suggested_id \gset
-- A merchant mapped some other way meanwhile: an approved mapping in force.
select tests.placeholder('zqr mapped', 'failed', 1, '-6 minutes') as mapped_id \gset
insert into public.llm_mappings (merchant_name, merchant_key, company_name, status, source, tier)
values ('ZQR MAPPED', 'zqr mapped', 'Mapped Co', 'approved', 'import', 'approved') returning id, created_at \gset in_force_
insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
values ('zqr mapped', 'Mapped', :in_force_id, :'in_force_created_at');

create temporary table claim1 as select * from private.claim_due_reasks(100, 600, 3);

select set_eq('select merchant_key, attempt from claim1 where claimed',
  $$values ('zqr due', 2), ('zqr crashed', 3)$$,
  'due placeholders are claimed with their attempt counted (a crashed asker''s expired lease included)');
select set_eq('select merchant_key from claim1 where not claimed',
  array['zqr spent', 'zqr reviewed', 'zqr suggested', 'zqr mapped'],
  'due rows that must not be asked are settled on the way, not claimed');
select is((select count(*)::int from claim1 where merchant_key = 'zqr later'), 0, 'a key not yet due is left alone');
select ok((select bool_and(provider_state = 'asking' and next_attempt_at between now() + interval '590 seconds'
                           and clock_timestamp() + interval '600 seconds')
           from public.llm_mappings where id in (:due_id, :crashed_id)),
  'a claim is asking under a lease of the given length');
select is((select (provider_state, next_attempt_at is null, reason)::text from public.llm_mappings where id = :spent_id),
  '(gave_up,t,"asked 3 times without an answer; gave up, left for review")',
  'a claim already at the cap whose lease ran out gives up, with a reason for the review queue');
select ok((select bool_and(next_attempt_at is null) from public.llm_mappings
           where id in (:reviewed_id, :suggested_id, :mapped_id)),
  'reviewed, user-suggested and mapped-in-force rows leave the schedule');
select is((select provider_state from public.llm_mappings where id = :suggested_id), 'failed',
  'a row that is not asked keeps its state');
select is_empty('select * from private.claim_due_reasks(100, 600, 3)',
  'a claimed key is not due again while its lease runs: two askers never ask it at once');
select is((select count(*)::int from private.claim_due_reasks(100, 600, 3)), 0, 'nothing else is due');

-- Failures: fenced by the attempt number, backed off exponentially, given up at the cap.
select is_empty($$select * from private.record_provider_failures(
    array[$$ || :due_id || $$]::bigint[], array[(select created_at from public.llm_mappings where id = $$ || :due_id || $$)],
    array[1], array['late answer'], 'openai_compatible', 3, 60, 3600)$$,
  'a failure from a superseded attempt is dropped (fencing token)');
create temporary table failed1 as
select * from private.record_provider_failures(
  array[:due_id]::bigint[], array[(select created_at from public.llm_mappings where id = :due_id)],
  array[2], array['HTTP 500: upstream'], 'openai_compatible', 3, 60, 3600);
select is((select merchant_key || ' ' || provider_state from failed1), 'zqr due failed', 'a failed attempt is recorded');
select ok((select next_attempt_at between now() + interval '96 seconds' and clock_timestamp() + interval '144 seconds'
           from failed1), 'the second attempt backs off 2 x 60 s, +-20%');
select is((select (provider_error, reason)::text from public.llm_mappings where id = :due_id),
  '("HTTP 500: upstream","openai_compatible failed (attempt 2 of 3); will be asked again")',
  'the error and a reason are kept for the review queue');
select is((select status from public.llm_mappings where id = :due_id), 'pending',
  'a failed key stays pending: never approved, never lost');

update public.llm_mappings set next_attempt_at = now() - interval '1 second' where id = :due_id;
select is((select attempt from private.claim_due_reasks(100, 600, 3) where claimed), 3, 'the next re-ask is attempt 3');
select is((select provider_state || ' ' || coalesce(next_attempt_at::text, 'unscheduled')
           from private.record_provider_failures(
             array[:due_id]::bigint[], array[(select created_at from public.llm_mappings where id = :due_id)],
             array[3], array['timeout'], 'openai_compatible', 3, 60, 3600)),
  'gave_up unscheduled', 'a failure at the cap gives up');
select is((select reason from public.llm_mappings where id = :due_id),
  'openai_compatible failed 3 times; gave up, left for review', 'a key given up on says so');
select is((select count(*)::int from private.claim_due_reasks(100, 600, 3)), 0, 'a key given up on is never asked again');

select ok((select next_attempt_at between now() + interval '80 seconds' and clock_timestamp() + interval '120 seconds'
           from private.record_provider_failures(
             array[:crashed_id]::bigint[], array[(select created_at from public.llm_mappings where id = :crashed_id)],
             array[3], array['timeout'], 'openai_compatible', 10, 60, 100)),
  'the backoff is capped at max_s (+-20%)');

select throws_ok('select * from private.claim_due_reasks(10, 0, 3)', '22023', null, 'a lease must be positive');
select throws_ok('select * from private.claim_due_reasks(10, 60, 0)', '22023', null, 'the cap must be at least 1');
select is((select count(*)::int from private.claim_due_reasks(0, 600, 3)), 0, 'a zero limit claims nothing');

-- The scheduler: one job while keys are due, none while one is waiting or nothing is due.
select is(private.enqueue_due_reasks(), null, 'nothing due: no job');
update public.llm_mappings set next_attempt_at = now() - interval '1 second' where id = :crashed_id;
select isnt(private.enqueue_due_reasks(), null, 'a due key queues a job');
select is((select count(*)::int from private.job_queue where kind = 'mappings.reask' and state = 'queued'), 1,
  'the job is a queued mappings.reask');
select is(private.enqueue_due_reasks(), null, 'no second job while one is queued');
select ok(exists (select 1 from cron.job where jobname = 'kamioi-reask-merchants'
                  and command = 'select private.enqueue_due_reasks()'), 'pg_cron runs the scheduler');

select tests.authenticate_as(:'admin');
select throws_ok('select * from private.claim_due_reasks(10, 60, 3)', '42501', null,
  'API callers, even admins, cannot claim keys');

select * from finish();
rollback;
