-- private.retry_import_job: a failed or cancelled import goes back to the queue at its checkpoint;
-- any other state, an unknown id, or the same file imported again since (unless forced) is refused.
begin;
\ir _helpers.psql
set local client_min_messages = warning;  -- the state mirror drops seen tables that never existed
select plan(19);

select tests.create_user('retry-admin@test.kamioi.local', 'admin') as admin \gset

-- Failed part-way: two chunks committed, then the retries ran out.
select id as failed, queue_job_id as failed_q
  from private.create_import_job('transactions', '/tmp/retry-a.csv', repeat('a', 64), 1000) \gset
update public.import_jobs
   set checkpoint_offset = 600, checkpoint_line = 21, processed_rows = 20, inserted_rows = 19, rejected_rows = 1
 where id = :failed;
update private.job_queue
   set state = 'failed', attempts = 5, max_attempts = 5, last_error = 'connection refused', finished_at = now()
 where id = :failed_q;
select is((select state from public.import_jobs where id = :failed), 'failed', 'the import mirrors its failed queue job');

select is((select state from private.retry_import_job(:failed)), 'queued', 'a failed import is queued again');
select results_eq(
  format('select state, attempts, max_attempts, cancel_requested, finished_at is null, run_at <= clock_timestamp()'
         ' from private.job_queue where id = %s', :failed_q),
  $$values ('queued', 5, 10, false, true, true)$$,
  'its queue job is due now, with a fresh budget of 5 attempts');
select results_eq(
  format('select state, checkpoint_offset, checkpoint_line, processed_rows, inserted_rows, rejected_rows,'
         ' finished_at is null from public.import_jobs where id = %s', :failed),
  $$values ('queued', 600::bigint, 21::bigint, 20::bigint, 19::bigint, 1::bigint, true)$$,
  'the checkpoint and the counters stay: the worker resumes where the import stopped');
select ok(exists (select 1 from realtime.messages where topic = 'admin:imports' and event = 'import_progress'
                   and (payload ->> 'id')::bigint = :failed and payload ->> 'state' = 'queued'),
  'the admins see it queued again (import_progress)');

select throws_ok(format('select private.retry_import_job(%s)', :failed), '55000',
  format('import job %s is queued: only a failed or cancelled import can be retried', :failed),
  'a queued import is refused');
update private.job_queue set state = 'running', lease_token = gen_random_uuid(), attempts = attempts + 1
 where id = :failed_q;
select throws_ok(format('select private.retry_import_job(%s)', :failed), '55000',
  format('import job %s is running: only a failed or cancelled import can be retried', :failed),
  'a running import is refused');
update private.job_queue set state = 'succeeded', lease_token = null where id = :failed_q;
select throws_ok(format('select private.retry_import_job(%s)', :failed), '55000',
  format('import job %s is succeeded: only a failed or cancelled import can be retried', :failed),
  'a succeeded import is refused');
select throws_ok('select private.retry_import_job(-1)', 'P0002', 'import job -1 not found',
  'an unknown import is refused');

-- Cancelled while queued: the cancel flags go, or the worker would stop it at once.
select id as cancelled, queue_job_id as cancelled_q
  from private.create_import_job('mappings', '/tmp/retry-b.csv', repeat('b', 64), 10) \gset
select is((select state from private.cancel_import_job(:cancelled)), 'cancelled', 'an import is cancelled');
select results_eq(format('select state, cancel_requested from private.retry_import_job(%s)', :cancelled),
  $$values ('queued', false)$$, 'a cancelled import is queued again, no longer cancelled');
select results_eq(format('select state, cancel_requested from private.job_queue where id = %s', :cancelled_q),
  $$values ('queued', false)$$, 'its queue job no longer asks the worker to cancel');

-- The same file imported again since: the rest of the first import would land twice.
select id as first, queue_job_id as first_q
  from private.create_import_job('transactions', '/tmp/retry-c.csv', repeat('c', 64), 10) \gset
update private.job_queue set state = 'failed', attempts = 1, finished_at = now() where id = :first_q;
select id as second, queue_job_id as second_q
  from private.create_import_job('transactions', '/tmp/retry-c2.csv', repeat('c', 64), 10) \gset
update private.job_queue set state = 'succeeded', attempts = 1, finished_at = now() where id = :second_q;
select throws_ok(format('select private.retry_import_job(%s)', :first), 'PT409',
  format('import job %s of the same file (transactions) is succeeded: its rows would land twice', :second),
  'a file imported again since is refused');
select is((select state from private.retry_import_job(:first, p_force => true)), 'queued',
  'unless forced');

-- Its queue job deleted (queue_job_id set null): a new one is enqueued.
select id as orphan, queue_job_id as orphan_q
  from private.create_import_job('transactions', '/tmp/retry-d.csv', repeat('d', 64), 10) \gset
update private.job_queue set state = 'failed', attempts = 5, finished_at = now() where id = :orphan_q;
delete from private.job_queue where id = :orphan_q;
select is((select state from private.retry_import_job(:orphan)), 'queued', 'an import without its queue job is queued');
select results_eq(
  format('select q.kind, q.state, q.payload, q.max_attempts from private.job_queue as q'
         ' join public.import_jobs as ij on ij.queue_job_id = q.id where ij.id = %s', :orphan),
  format($$values ('import', 'queued', '{"import_job_id": %s}'::jsonb, 5)$$, :orphan),
  'by a new queue job of kind import');

-- Trusted callers only (the admin API and the CLI), like create and cancel.
select tests.authenticate_as(:'admin');
select throws_ok(format('select private.retry_import_job(%s)', :cancelled), '42501', null,
  'not callable through the Data API, even by an admin');
select tests.clear_authentication();
select ok(has_function_privilege('service_role', 'private.retry_import_job(bigint, boolean, integer)', 'execute'),
  'service_role may call it');
select ok(not has_function_privilege('anon', 'private.retry_import_job(bigint, boolean, integer)', 'execute'),
  'anon may not');

select * from finish();
rollback;
